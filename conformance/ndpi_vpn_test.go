package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestNDPIVPNConformance: every OpenVPN and WireGuard session of nDPI's
// captures that nDPI saw both ways (its "<->") is recognised as such.
// T1573.001 counts on it: a VPN's payload reads as encrypted, and its own
// handshake is what explains it.
func TestNDPIVPNConformance(t *testing.T) {
	dir := shared.Path(t, "ndpi/tests/cfgs/default")
	for _, c := range []struct{ pcap, label, app string }{
		{"openvpn.pcap", "/OpenVPN", "openvpn"},
		{"wireguard.pcap", "/WireGuard", "wireguard"},
	} {
		t.Run(c.pcap, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "result", c.pcap+".out"))
			if err != nil {
				shared.Missing(t, c.pcap+".out", err)
			}
			recs, _ := replay(t, options{files: []string{filepath.Join(dir, "pcap", c.pcap)}, table: inspectConfig(), workers: 1, final: true})
			byPair := map[string]*Flow{}
			for i, r := range recs {
				a, b := r.OrigH+":"+decimal(r.OrigP), r.RespH+":"+decimal(r.RespP)
				byPair[r.Proto+" "+a+" "+b] = &recs[i]
				byPair[r.Proto+" "+b+" "+a] = &recs[i]
			}
			n := 0
			for _, line := range strings.Split(string(raw), "\n") {
				m := ndpiFlowRE.FindStringSubmatch(line)
				if m == nil || !strings.Contains(line, c.label) {
					continue
				}
				n++
				key := strings.ToLower(m[1]) + " " + m[2] + ":" + m[3] + " " + m[4] + ":" + m[5]
				r := byPair[key]
				if r == nil {
					t.Errorf("%s: no flow record", key)
				} else if r.AppProto != c.app {
					t.Errorf("%s: app_proto %v, nDPI says %s", key, r.AppProto, c.app)
				}
			}
			if n == 0 {
				t.Fatalf("no two-way %s flows in nDPI's output", c.label)
			}
			t.Logf("%d sessions", n)
		})
	}
}
