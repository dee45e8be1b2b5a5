package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// arkimeTLSDeviations are Arkime TLS values Outflow does not reproduce, by
// value, with the reason.
var arkimeTLSDeviations = map[string]string{
	"openvpn":                              "OpenVPN carries its TLS handshake inside P_CONTROL packets of its own framing; Arkime unwraps them, Outflow reads TLS records on the wire only",
	"t13d1615H2_46e7e9700bed_45f260be83e2": "Arkime's copy of badcurveball.pcap gives an upper-case ALPN 'H2'; FoxIO's copy and outputs (the JA4 reference) give h2, as Outflow does",
}

// TestArkimeTLSConformance: every TLS session of Arkime's test captures has a
// flow record (same Community ID) with the same JA3 and JA3S hashes and
// strings, the same JA4 and the same SNI (Arkime's http.host). Arkime's JA4
// for TLS 1.3 drafts (t00) is its own convention and is not compared.
func TestArkimeTLSConformance(t *testing.T) {
	dir := shared.Path(t, "arkime/tests/pcap")
	tests, _ := filepath.Glob(filepath.Join(dir, "*.test"))
	compared := 0
	for _, tf := range tests {
		pcap := strings.TrimSuffix(tf, ".test") + ".pcap"
		raw, err := os.ReadFile(tf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(pcap); err != nil || !strings.Contains(string(raw), `"ja3"`) {
			continue
		}
		t.Run(filepath.Base(pcap), func(t *testing.T) {
			var doc struct {
				Sessions []struct {
					Body map[string]any `json:"body"`
				} `json:"sessions3"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			recs, _ := replay(t, options{files: []string{pcap}, table: inspectConfig(), workers: 1, final: true})
			byCID := map[string]*Flow{}
			for i, r := range recs {
				byCID[r.CommunityID] = &recs[i]
			}
			for _, s := range doc.Sessions {
				b := s.Body
				tl, _ := b["tls"].(map[string]any)
				net, _ := b["network"].(map[string]any)
				if tl == nil || tl["ja3"] == nil || net == nil {
					continue
				}
				cid, _ := net["community_id"].(string)
				if strings.Contains(strings.ToLower(fmtAny(b["protocol"])), "openvpn") {
					t.Logf("%s: known deviation: %s", cid, arkimeTLSDeviations["openvpn"])
					continue
				}
				r := byCID[cid]
				if r == nil {
					t.Errorf("%s: no flow record", cid)
					continue
				}
				got := hello(*r, "tls")
				quic := false
				if got == nil {
					// QUIC: the hello sits in the record's quic part, which
					// carries JA4 and SNI but no JA3.
					got = hello(*r, "quic")
					quic = got != nil
				}
				if got == nil {
					t.Errorf("%s: no tls on the record (app_proto %v)", cid, r.AppProto)
					continue
				}
				for ak, ok := range map[string]string{"ja3": "ja3", "ja3string": "ja3_string", "ja3s": "ja3s", "ja3sstring": "ja3s_string", "ja4": "ja4"} {
					want := first(tl[ak])
					if want == "" {
						continue
					}
					if why, dev := arkimeTLSDeviations[want]; dev {
						t.Logf("%s: known deviation: %s", cid, why)
						continue
					}
					if ak == "ja4" && strings.HasPrefix(want, "t00") || quic && ak != "ja4" {
						continue
					}
					compared++
					if helloKey(got, ok) != want {
						t.Errorf("%s: %s %v, Arkime %s", cid, ok, helloKey(got, ok), want)
					}
				}
				if h, _ := b["http"].(map[string]any); h != nil {
					if want := first(h["host"]); want != "" && got.SNI != want {
						t.Errorf("%s: sni %v, Arkime http.host %s", cid, got.SNI, want)
					}
				}
			}
		})
	}
	t.Logf("%d Arkime TLS values compared", compared)
	if compared < 50 {
		t.Errorf("only %d values compared", compared)
	}
}

func first(v any) string {
	if l, ok := v.([]any); ok && len(l) > 0 {
		s, _ := l[0].(string)
		return s
	}
	return ""
}
