package entropy_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/outflow-sensor/outflow/entropy"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/sensor/capture"
)

// payloads returns every transport payload of a capture, decoded by the
// sensor's own decoder.
func payloads(t *testing.T, path string) [][]byte {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d := flows.NewDecoder()
	var out [][]byte
	var p capture.Packet
	for src.Next(&p) == nil {
		pkts, _ := d.Decode(p.Data, p.LinkType, 0)
		for _, k := range pkts {
			out = append(out, append([]byte(nil), k.Payload...))
		}
	}
	return out
}

// TestNDPISpotChecks: nDPI reports "Entropy: x.xxx" for one packet's L4
// payload of some flows (see the shared MANIFEST); a payload of that length
// in the same capture has that entropy.
func TestNDPISpotChecks(t *testing.T) {
	for _, c := range []struct {
		pcap string
		n    int
		want float64
	}{
		{"ndpi/tests/cfgs/default/pcap/443-chrome.pcap", 1440, 7.855},
		{"ndpi/tests/cfgs/default/pcap/dns-exf.pcap", 121, 5.224},
		{"ndpi/tests/cfgs/default/pcap/malware.pcap", 56, 5.298},
		{"ndpi/tests/cfgs/default/pcap/openvpn.pcap", 86, 5.932},
	} {
		var seen []string
		found := false
		for _, pl := range payloads(t, shared.Path(t, c.pcap)) {
			if len(pl) != c.n {
				continue
			}
			var ctr entropy.Counter
			ctr.Reset(len(pl))
			ctr.Add(pl)
			h := ctr.Shannon()
			seen = append(seen, fmt.Sprintf("%.3f", h))
			found = found || math.Abs(h-c.want) < 0.0005
		}
		if !found {
			t.Errorf("%s: no %d-byte payload with entropy %.3f (have %v)", c.pcap, c.n, c.want, seen)
		}
	}
}

// TestRecordedPayloadClasses: in the bundled recording, the openssl enc
// stream reads as encrypted and the gzip upload's body as compressed, though
// both are high-entropy, and the text upload as text.
func TestRecordedPayloadClasses(t *testing.T) {
	pls := payloads(t, "../pcaps/outflow-demo.pcap")
	if len(pls) == 0 {
		t.Fatal("no payloads")
	}
	classOf := func(start func([]byte) (int, bool)) entropy.Class {
		var c entropy.Counter
		c.Reset(4096)
		on := false
		for _, pl := range pls {
			if !on {
				off, ok := start(pl)
				if !ok {
					continue
				}
				on, pl = true, pl[off:]
			}
			if c.Add(pl) {
				break
			}
		}
		return c.Classify()
	}
	body := func(ctype string) func([]byte) (int, bool) {
		return func(pl []byte) (int, bool) {
			i := indexOf(pl, "Content-Type: "+ctype)
			if i < 0 {
				return 0, false
			}
			j := indexOf(pl[i:], "\r\n\r\n")
			return i + j + 4, j >= 0
		}
	}
	enc := func(pl []byte) (int, bool) { return 0, len(pl) > 8 && string(pl[:8]) == "Salted__" }
	for _, c := range []struct {
		name  string
		start func([]byte) (int, bool)
		want  entropy.Class
	}{
		{"openssl enc stream", enc, entropy.Encrypted},
		{"gzip upload body", body("application/gzip"), entropy.Compressed},
		{"text upload body", body("text/plain"), entropy.Text},
	} {
		if got := classOf(c.start); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}
