package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"testing"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
)

// demo is the bundled recording.
const demo = "../pcaps/outflow-demo.pcap"

func replayLines(t *testing.T, files []string, workers int, table flows.Config) []string {
	t.Helper()
	var out bytes.Buffer
	if _, err := Replay(context.Background(), ReplayConfig{Files: files, Workers: workers, Table: table, Flows: &out}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if !json.Valid(l) {
			t.Fatalf("invalid JSON line %q", l)
		}
		lines = append(lines, string(l))
	}
	sort.Strings(lines)
	return lines
}

// TestWorkersAgree: replay with one, two and three workers writes the same
// records, with inspection off and on: the spread over workers and the
// payload handling between reader and workers change nothing. (A worker once
// got no payload at all with inspection off, and counted every segment as a
// content gap.)
func TestWorkersAgree(t *testing.T) {
	files := []string{demo, shared.Path(t, "zeek/testing/btest/Traces/tls/imap-starttls.pcap")}
	for _, inspect := range []bool{false, true} {
		cfg := flows.DefaultConfig()
		if inspect {
			cfg.Inspect = flows.DefaultInspectConfig()
		}
		for _, f := range files {
			one := replayLines(t, []string{f}, 1, cfg)
			for _, n := range []int{2, 3} {
				other := replayLines(t, []string{f}, n, cfg)
				if len(one) != len(other) {
					t.Fatalf("%s inspect=%v: %d records with one worker, %d with %d", f, inspect, len(one), len(other), n)
				}
				for i := range one {
					if one[i] != other[i] {
						t.Errorf("%s inspect=%v workers=%d:\n  %s\nvs\n  %s", f, inspect, n, one[i], other[i])
					}
				}
			}
		}
	}
}
