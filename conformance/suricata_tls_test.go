package conformance

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// suricataTLSCases are the suricata-verify tests that check JA3, JA3S, JA4
// or SNI (MANIFEST S01-S12), each with its capture.
var suricataTLSCases = [][2]string{
	{"tls/tls13-draft28/tls13_draft28.pcap", "tls/tls13-draft28/test.yaml"},
	{"tls/tls13-draft19/tls13_draft19.pcap", "tls/tls13-draft19/test.yaml"},
	{"tls/tls13-draft22/tls13_draft22.pcap", "tls/tls13-draft22/test.yaml"},
	{"tls/tls13-draft14/tls13_draft14.pcap", "tls/tls13-draft14/test.yaml"},
	{"tls/tls-certs-alert/input.pcap", "tls/tls-ja3s/test.yaml"},
	{"tls-duplicate-hello/input.pcap", "tls-duplicate-hello/test.yaml"},
	{"ja4-tls/input.pcap", "ja4-tls/test.yaml"},
	{"ja4-tls-quic/input.pcap", "ja4-tls-quic/test.yaml"},
	{"bug-5713-01/TLSv1-Extracted-MaliciousC2.pcap", "bug-5713-02-ja4/test.yaml"},
	{"community-id-ipv6/input.pcap", "community-id-ipv6/test.yaml"},
	{"bug-2646-01/input.pcap", "bug-2646-01/test.yaml"},
	{"tls/tls-client-hello-frag-01/dump_mtu300.pcap", "tls/tls-client-hello-frag-01/test.yaml"},
}

// suricataTLSKeys maps EVE keys to where a flow record keeps the same value:
// the part (tls or quic) and its key.
var suricataTLSKeys = map[string][2]string{
	"tls.sni":         {"tls", "sni"},
	"tls.ja3.hash":    {"tls", "ja3"},
	"tls.ja3.string":  {"tls", "ja3_string"},
	"tls.ja3s.hash":   {"tls", "ja3s"},
	"tls.ja3s.string": {"tls", "ja3s_string"},
	"tls.ja4":         {"tls", "ja4"},
	"quic.ja4":        {"quic", "ja4"},
	"quic.sni":        {"quic", "sni"},
}

// helloKey is the value of a key of suricataTLSKeys in a hello part.
func helloKey(h *helloFields, key string) string {
	switch key {
	case "sni":
		return h.SNI
	case "ja3":
		return h.JA3
	case "ja3_string":
		return h.JA3String
	case "ja3s":
		return h.JA3S
	case "ja3s_string":
		return h.JA3SString
	case "ja4":
		return h.JA4
	}
	panic("no key " + key)
}

// suricataTLSDeviations are expected values Outflow does not reproduce, by
// value, with the reason.
var suricataTLSDeviations = map[string]string{
	"t10i070600_c50f5591e341_ce66f3b797c1": "this ClientHello has no signature_algorithms; Suricata hashes the extension list " +
		"with a trailing '_', FoxIO's JA4 specification (the reference) ends the string without one: Outflow gives t10i070600_c50f5591e341_c39ab67fec8e",
}

type suricataTLSTest struct {
	Checks []struct {
		Filter struct {
			Count *int           `yaml:"count"`
			Match map[string]any `yaml:"match"`
		} `yaml:"filter"`
	} `yaml:"checks"`
}

// TestSuricataTLSConformance: every suricata-verify check on JA3, JA3S, JA4
// and SNI finds as many flow records with those values as Suricata emitted
// events. Other keys of a filter (certificate fields, tls.version in
// Suricata's own wording) are not part of the comparison.
func TestSuricataTLSConformance(t *testing.T) {
	checked := 0
	for _, c := range suricataTLSCases {
		t.Run(c[1], func(t *testing.T) {
			raw, err := os.ReadFile(shared.Path(t, "suricata-verify/tests/"+c[1]))
			if err != nil {
				t.Fatal(err)
			}
			var st suricataTLSTest
			if err := yaml.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			recs, _ := replay(t, options{files: []string{shared.Path(t, "suricata-verify/tests/"+c[0])}, table: inspectConfig(), workers: 1, final: true})
			for _, ch := range st.Checks {
				f := ch.Filter
				want := map[[2]string]string{}
				for k, v := range f.Match {
					if loc, ok := suricataTLSKeys[k]; ok {
						want[loc] = v.(string)
					}
				}
				if len(want) == 0 || f.Count == nil {
					continue
				}
				skip := false
				for _, v := range want {
					if why, ok := suricataTLSDeviations[v]; ok {
						t.Logf("known deviation: %s", why)
						skip = true
					}
				}
				if skip {
					continue
				}
				n := 0
				for _, r := range recs {
					ok := true
					for loc, v := range want {
						m := hello(r, loc[0])
						if m == nil || helloKey(m, loc[1]) != v {
							ok = false
						}
					}
					if ok {
						n++
					}
				}
				checked++
				if n != *f.Count {
					t.Errorf("%v: %d records match, Suricata had %d events; records: %v", want, n, *f.Count, tlsParts(recs))
				}
			}
		})
	}
	t.Logf("%d suricata-verify checks compared", checked)
	if checked < 14 {
		t.Fatalf("only %d checks compared", checked)
	}
}

func tlsParts(recs []Flow) string {
	var b strings.Builder
	for _, r := range recs {
		for _, p := range []struct {
			k  string
			v  any
			ok bool
		}{{"tls", r.TLS, r.TLS != nil}, {"quic", r.QUIC, r.QUIC != nil}} {
			if k, v, ok := p.k, p.v, p.ok; ok {
				b.WriteString(k)
				b.WriteString("=")
				b.WriteString(strings.ReplaceAll(strings.TrimSpace(fmtAny(v)), "\n", " "))
				b.WriteString("; ")
			}
		}
	}
	return b.String()
}

func fmtAny(v any) string {
	out, _ := yaml.Marshal(v)
	return string(out)
}
