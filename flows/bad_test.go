package flows

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// TestBadFramesAreCountedByReason: malformed frames produce a Reason, are
// counted under it, and leave the decoder able to decode the next frame.
func TestBadFramesAreCountedByReason(t *testing.T) {
	good := innerEth(t)
	lying := append([]byte(nil), good...)
	lying[14+2], lying[14+3] = 0xff, 0xff // IPv4 total length far beyond the frame
	shortIHL := append([]byte(nil), good...)
	shortIHL[14] = 0x44 // IHL 4 words: shorter than the fixed header
	tcpOff := append([]byte(nil), good...)
	tcpOff[14+20+12] = 0xf0 // data offset 60 bytes, frame has 20
	cases := []struct {
		name   string
		frame  []byte
		lt     LinkType
		reason Reason
	}{
		{"empty", nil, LinkEthernet, ReasonEmpty},
		{"unknown link type", good, LinkType(147), ReasonLinkType},
		{"short ethernet", good[:10], LinkEthernet, ReasonLink},
		{"ipv4 header length below 20", shortIHL, LinkEthernet, ReasonIPv4},
		{"tcp data offset past the end", tcpOff, LinkEthernet, ReasonTCP},
		{"truncated tcp header", good[:14+20+8], LinkEthernet, ReasonTCP},
		{"short pppoe", append(ethHdr(layers.EthernetTypePPPoESession), 0x11, 0), LinkEthernet, ReasonPPPoE},
		{"gre header cut short", greCarrier(t, []byte{0xb0, 0}, nil), LinkEthernet, ReasonTunnel},
	}
	d := NewDecoder()
	for _, c := range cases {
		before := d.Stats.Errors[c.reason]
		_, err := d.Decode(c.frame, c.lt, 1)
		if err != c.reason {
			t.Errorf("%s: error %v, want %v", c.name, err, c.reason)
		}
		if d.Stats.Errors[c.reason] != before+1 {
			t.Errorf("%s: %v not counted", c.name, c.reason)
		}
		if pkts, err := d.Decode(good, LinkEthernet, 2); err != nil || len(pkts) != 1 {
			t.Fatalf("after %s: good frame gives %d packets, %v", c.name, len(pkts), err)
		}
	}
	// A header that claims more than the wire carried is refused; the same
	// frame cut by a snap length (the wire had it all) is accounted as the
	// header says, as Zeek does.
	if _, err := d.Decode(lying, LinkEthernet, 3); err != ReasonIPv4 {
		t.Errorf("lying total length: %v, want %v", err, ReasonIPv4)
	}
	pkts, err := d.DecodeWire(lying, 14+0xffff, LinkEthernet, 3)
	if err != nil || len(pkts) != 1 || pkts[0].IPLen != 0xffff {
		t.Errorf("snap-length truncated frame: %v %+v", err, pkts)
	}
	v6 := append(ethHdr(layers.EthernetTypeIPv6), encapCases(t)[14].frame...)
	v6[14+4], v6[14+5] = 0x10, 0
	if _, err := d.Decode(v6, LinkEthernet, 4); err != ReasonIPv6 {
		t.Errorf("lying IPv6 payload length: %v, want %v", err, ReasonIPv6)
	}
}
