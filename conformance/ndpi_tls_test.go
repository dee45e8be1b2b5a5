package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

var (
	ndpiFlowRE = regexp.MustCompile(`^\s*\d+\s+(TCP|UDP) \[?([^\s\]]+?)\]?:(\d+) <-> \[?([^\s\]]+?)\]?:(\d+) `)
	ndpiJA3CRE = regexp.MustCompile(`\[JA3C: ([0-9a-f]{32})`)
	ndpiJA3SRE = regexp.MustCompile(`\[JA3S: ([0-9a-f]{32})`)
	ndpiSNIRE  = regexp.MustCompile(`\[Hostname/SNI: ([^\]]+)\]`)
)

// ndpiTLSDeviations are nDPI flows, by "file proto a:p b:p", whose values
// Outflow does not reproduce, with the reason.
var ndpiTLSDeviations = map[string]string{}

// TestNDPITLSConformance: on nDPI's test captures, every flow nDPI gave a
// JA3C or JA3S has a record with the same hash, and the same SNI.
func TestNDPITLSConformance(t *testing.T) {
	dir := shared.Path(t, "ndpi/tests/cfgs/default")
	outs, _ := filepath.Glob(filepath.Join(dir, "result", "*.out"))
	compared := 0
	for _, out := range outs {
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), "[JA3") {
			continue
		}
		pcap := filepath.Join(dir, "pcap", strings.TrimSuffix(filepath.Base(out), ".out"))
		if _, err := os.Stat(pcap); err != nil {
			shared.Missing(t, pcap, err)
		}
		t.Run(filepath.Base(pcap), func(t *testing.T) {
			recs, _ := replay(t, options{files: []string{pcap}, table: inspectConfig(), workers: 1, final: true})
			byPair := map[string]*Flow{}
			for i, r := range recs {
				a, b := r.OrigH+":"+decimal(r.OrigP), r.RespH+":"+decimal(r.RespP)
				byPair[r.Proto+" "+a+" "+b] = &recs[i]
				byPair[r.Proto+" "+b+" "+a] = &recs[i]
			}
			for _, line := range strings.Split(string(raw), "\n") {
				m := ndpiFlowRE.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				c, s := ndpiJA3CRE.FindStringSubmatch(line), ndpiJA3SRE.FindStringSubmatch(line)
				if c == nil && s == nil {
					continue
				}
				key := strings.ToLower(m[1]) + " " + m[2] + ":" + m[3] + " " + m[4] + ":" + m[5]
				if why, ok := ndpiTLSDeviations[filepath.Base(pcap)+" "+key]; ok {
					t.Logf("%s: known deviation: %s", key, why)
					continue
				}
				r := byPair[key]
				if r == nil {
					t.Errorf("%s: no flow record", key)
					continue
				}
				part := "tls"
				if m[1] == "UDP" {
					part = "quic"
				}
				got := hello(*r, part)
				if got == nil {
					t.Errorf("%s: no %s on the record (app_proto %v)", key, part, r.AppProto)
					continue
				}
				if c != nil {
					compared++
					if got.JA3 != c[1] && part == "tls" {
						t.Errorf("%s: ja3 %v, nDPI %s", key, got.JA3, c[1])
					}
				}
				if s != nil && part == "tls" {
					compared++
					if got.JA3S != s[1] {
						t.Errorf("%s: ja3s %v, nDPI %s", key, got.JA3S, s[1])
					}
				}
				if n := ndpiSNIRE.FindStringSubmatch(line); n != nil && got.SNI != n[1] {
					t.Errorf("%s: sni %v, nDPI %s", key, got.SNI, n[1])
				}
			}
		})
	}
	t.Logf("%d nDPI JA3C/JA3S values compared", compared)
	if compared < 20 {
		t.Errorf("only %d values compared", compared)
	}
}
