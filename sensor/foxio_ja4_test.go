package sensor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestFoxIOJA4Conformance: on every capture of FoxIO's JA4 repository, each
// stream FoxIO's python reference fingerprinted has a flow record with the
// same JA4 (TLS or QUIC) and the same SNI.
func TestFoxIOJA4Conformance(t *testing.T) {
	pcaps, _ := filepath.Glob(filepath.Join(shared.Path(t, "foxio-ja4/pcap"), "*.pcap*"))
	checked := 0
	for _, pcap := range pcaps {
		t.Run(filepath.Base(pcap), func(t *testing.T) {
			raw, err := os.ReadFile(shared.Path(t, "foxio-ja4/python/test/testdata/"+filepath.Base(pcap)+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var streams []map[string]any
			if err := json.Unmarshal(raw, &streams); err != nil {
				t.Fatal(err)
			}
			recs := replayWith(t, []string{pcap}, inspectConfig(), 0)
			byKey := map[string]map[string]any{}
			for _, r := range recs {
				byKey[r["orig_h"].(string)+" "+jsonNum(r, "orig_p")+" "+r["resp_h"].(string)+" "+jsonNum(r, "resp_p")] = r
			}
			for _, s := range streams {
				ja4, _ := s["JA4"].(string)
				if v, ok := s["JA4.1"].(string); ok {
					ja4 = v
				}
				if ja4 == "" {
					continue
				}
				k := s["src"].(string) + " " + s["srcport"].(string) + " " + s["dst"].(string) + " " + s["dstport"].(string)
				r := byKey[k]
				if r == nil {
					t.Errorf("stream %v (%s): no flow record", s["stream"], k)
					continue
				}
				part := "tls"
				if strings.HasPrefix(ja4, "q") {
					part = "quic"
				}
				m, _ := r[part].(map[string]any)
				domain, _ := s["domain"].(string)
				if m == nil || m["ja4"] != ja4 || str(m["sni"]) != domain {
					t.Errorf("stream %v (%s): %s %v; FoxIO ja4 %s sni %q", s["stream"], k, part, m, ja4, domain)
				}
				checked++
			}
		})
	}
	t.Logf("%d JA4 fingerprints compared", checked)
	if checked < 100 {
		t.Errorf("only %d JA4 fingerprints compared", checked)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
