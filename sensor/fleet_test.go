package sensor

import (
	"context"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/fleet"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestFleetWiring: two sensors replay the detection lab one after the
// other, each with Detection.Fleet on one Kafka (kfake): the first
// publishes what its analytics learnt before it stops, the second reads it
// while it starts and folds it in as another sensor's. The sharing itself
// (rarity across three sensors, restarts, outages) is fleet's tests'.
func TestFleetWiring(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(id string) *fleet.Stats {
		cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
		if err != nil {
			t.Fatal(err)
		}
		table := flows.DefaultConfig()
		table.Inspect = flows.DefaultInspectConfig()
		st, err := Replay(context.Background(), ReplayConfig{
			Files: []string{"../pcaps/outflow-detect.pcap"}, HostEvents: []string{"../pcaps/outflow-detect.events.jsonl"},
			Table: table, HomeNets: cfg.HomePrefixes(),
			Detect: &Detection{Config: cfg, Fleet: &fleet.Config{Brokers: c.ListenAddrs(), SensorID: id, CatchUp: 10 * time.Second}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Detect == nil || st.Detect.Fleet == nil {
			t.Fatalf("%s: no fleet counts: %+v", id, st.Detect)
		}
		return st.Detect.Fleet
	}
	a := run("sensor-a")
	if a.Produced == 0 || a.Dropped != 0 {
		t.Fatalf("sensor-a published %d observations, dropped %d", a.Produced, a.Dropped)
	}
	b := run("sensor-b")
	t.Logf("sensor-a %+v\nsensor-b %+v", a, b)
	if !b.CaughtUp || b.Merged == 0 || b.Merged > a.Produced {
		t.Fatalf("sensor-b: caught up %v, merged %d of sensor-a's %d", b.CaughtUp, b.Merged, a.Produced)
	}
}
