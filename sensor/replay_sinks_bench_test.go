package sensor

import (
	"context"
	"io"
	"testing"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/synth"
	"github.com/outflow-sensor/outflow/sensor/destination"
	"github.com/outflow-sensor/outflow/sensor/encode"
	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/twmb/franz-go/pkg/kfake"
)

// BenchmarkReplayKafka: what sending every flow record to Kafka adds to a
// replay of ~150k short flows, beside the same replay writing JSON to
// io.Discard. The broker is kfake in this process, so the figure is the
// sensor's side (encoding, queueing, producing) and kfake's share of the
// two cores.
func BenchmarkReplayKafka(b *testing.B) {
	path := writePcap(b, synth.Frames(1<<20/7, 6))
	b.Run("discard", func(b *testing.B) { benchReplay(b, path, 1) })
	b.Run("kafka", func(b *testing.B) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		var records, delivered uint64
		for b.Loop() {
			s, err := destination.New(destination.Config{Target: "kafka://" + c.ListenAddrs()[0] + "/flows"})
			if err != nil {
				b.Fatal(err)
			}
			s.Start()
			st, err := Replay(context.Background(), ReplayConfig{Files: []string{path}, Workers: 1, Table: flows.DefaultConfig(),
				Flows: io.Discard, FlowOutputs: []Output{{Format: encode.JSON, Sinks: []sink.Sink{s}}}})
			if err != nil {
				b.Fatal(err)
			}
			// The replay is done when Kafka has every record: Stop sends
			// what waits.
			if err := s.Stop(); err != nil {
				b.Fatal(err)
			}
			records, delivered = st.Records, s.Stats().Lines
		}
		if delivered != records {
			b.Fatalf("Kafka took %d of %d records", delivered, records)
		}
		b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
