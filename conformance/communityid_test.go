package conformance

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestCommunityIDBaselines replays the Community ID spec's own captures and
// finds every ID of its baselines (seed 0 and seed 1) on a flow record: the
// whole path from frame to record, ICMP keying and one-way messages included.
func TestCommunityIDBaselines(t *testing.T) {
	pcap := shared.Path(t, "community-id/pcaps/combined.pcap.gz")
	for _, c := range []struct {
		file string
		seed uint16
	}{{"community-id/baseline_deflt.json", 0}, {"community-id/baseline_seed1.json", 1}} {
		raw, err := os.ReadFile(shared.Path(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		var rows []struct {
			CommunityID string `json:"communityid"`
		}
		if err := json.Unmarshal(raw, &rows); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		recs, _ := replay(t, options{files: []string{pcap}, table: flows.DefaultConfig(), seed: c.seed, workers: 1, final: true})
		for _, r := range recs {
			have[r.CommunityID] = true
		}
		for _, r := range rows {
			if !have[r.CommunityID] {
				t.Errorf("%s (seed %d): no flow record with %s", c.file, c.seed, r.CommunityID)
			}
		}
		if len(rows) < 20 {
			t.Fatalf("%s: only %d rows", c.file, len(rows))
		}
	}
}
