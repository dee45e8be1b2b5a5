package conformance

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
			recs, _ := replay(t, options{files: []string{pcap}, table: inspectConfig(), workers: 1, final: true})
			byKey := map[string]*Flow{}
			for i, r := range recs {
				byKey[r.OrigH+" "+decimal(r.OrigP)+" "+r.RespH+" "+decimal(r.RespP)] = &recs[i]
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
				m := hello(*r, part)
				domain, _ := s["domain"].(string)
				if m == nil || m.JA4 != ja4 || m.SNI != domain {
					t.Errorf("stream %v (%s): %s %+v; FoxIO ja4 %s sni %q", s["stream"], k, part, m, ja4, domain)
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

// helloFields are the fingerprints and SNI of a ClientHello (and
// ServerHello) as a record's tls or quic object gives them; a quic object
// has no JA3 or JA3S.
type helloFields struct {
	JA3, JA3String, JA3S, JA3SString, JA4, SNI string
}

// hello returns the record's part ("tls" or "quic"), nil if it has none.
func hello(r Flow, part string) *helloFields {
	switch {
	case part == "tls" && r.TLS != nil:
		return &helloFields{JA3: r.TLS.JA3, JA3String: r.TLS.JA3String, JA3S: r.TLS.JA3S, JA3SString: r.TLS.JA3SString, JA4: r.TLS.JA4, SNI: r.TLS.SNI}
	case part == "quic" && r.QUIC != nil:
		return &helloFields{JA4: r.QUIC.JA4, SNI: r.QUIC.SNI}
	}
	return nil
}
