package conformance

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/outflow-sensor/outflow/detect"
)

// TestForgedConnectBeforeTheReal is issue 16's row 4: a connect event
// for the lab's tar | curl upload (10.77.0.2:44312 to 443, pcaps/
// record-detect.sh), naming another process, posted before the real
// recording and dated 30 s earlier. The alert still names curl, says
// which other process claimed the flow, and is one step less confident
// than the same replay without the forgery.
func TestForgedConnectBeforeTheReal(t *testing.T) {
	cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "forged.jsonl")
	line := `{"outflow_event":"connect","time":"2026-12-01T10:58:49.253Z","host":"vm","feed":"procfs","pid":31337,` +
		`"image":"/usr/bin/innocent","proto":6,"src":"10.77.0.2","src_port":44312,"dst":"198.51.100.10","dst_port":443,` +
		`"initiated":true,"has_src_port":true}` + "\n"
	if err := os.WriteFile(forged, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	upload := func(alerts []*detect.Alert) *detect.Alert {
		for _, a := range alerts {
			if a.Analytic == "AN1512" && a.Process != nil && a.Process.Name == "curl" {
				return a
			}
		}
		return nil
	}
	clean, _ := replayAlerts(t, options{files: []string{"../pcaps/outflow-detect.pcap"},
		hostEvents: []string{"../pcaps/outflow-detect.events.jsonl"}, table: inspectConfig(), detect: cfg})
	alerts, _ := replayAlerts(t, options{files: []string{"../pcaps/outflow-detect.pcap"},
		hostEvents: []string{forged, "../pcaps/outflow-detect.events.jsonl"}, table: inspectConfig(), detect: cfg})
	want, got := upload(clean), upload(alerts)
	if want == nil || got == nil {
		t.Fatalf("AN1512 naming curl: without the forgery %v, with it %v", want, got)
	}
	if len(want.Process.Conflict) != 0 {
		t.Errorf("conflict without a forgery: %+v", want.Process.Conflict)
	}
	if len(got.Process.Conflict) != 1 || got.Process.Conflict[0].PID != 31337 || got.Process.Conflict[0].Name != "innocent" {
		t.Errorf("conflict = %+v, want the forged pid 31337", got.Process.Conflict)
	}
	lowered := map[string]string{"high": "medium", "medium": "low", "low": "low"}[want.Confidence]
	if got.Confidence != lowered {
		t.Errorf("confidence %q with the forgery, %q without", got.Confidence, want.Confidence)
	}
	matchExpected(t, alerts, "../pcaps/detect-expected.tsv")
}
