package flows

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var update = flag.Bool("update", false, "rewrite the FuzzDecode seed corpus from the encapsulation cases")

func ser(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	for _, l := range ls {
		if n, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, m := range ls {
				if ip, ok := m.(gopacket.NetworkLayer); ok {
					n.SetNetworkLayerForChecksum(ip)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	macA, macB = net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	outerA     = net.IP{192, 0, 2, 1}
	outerB     = net.IP{192, 0, 2, 2}
	innerA     = net.IP{10, 1, 0, 1}
	innerB     = net.IP{198, 51, 100, 7}
)

// ethHdr is a bare Ethernet header: gopacket pads a serialized Ethernet layer
// to 60 bytes, which would land between the header and what we append.
func ethHdr(typ layers.EthernetType) []byte {
	h := append(append([]byte{}, macB...), macA...)
	return binary.BigEndian.AppendUint16(h, uint16(typ))
}

func ip4(src, dst net.IP, p layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: src, DstIP: dst}
}

// innerTCP is an IPv4 TCP SYN from innerA:40000 to innerB:443.
func innerTCP(t *testing.T) []byte {
	return ser(t, ip4(innerA, innerB, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, Seq: 1000, Window: 1024})
}

func innerEth(t *testing.T) []byte {
	return append(ethHdr(layers.EthernetTypeIPv4), innerTCP(t)...)
}

func udpCarrier(t *testing.T, dport layers.UDPPort, payload []byte) []byte {
	return append(ethHdr(layers.EthernetTypeIPv4), ser(t, ip4(outerA, outerB, layers.IPProtocolUDP),
		&layers.UDP{SrcPort: 50000, DstPort: dport}, gopacket.Payload(payload))...)
}

func ipCarrier(t *testing.T, proto layers.IPProtocol, payload []byte) []byte {
	return append(ethHdr(layers.EthernetTypeIPv4), ser(t, ip4(outerA, outerB, proto), gopacket.Payload(payload))...)
}

func greCarrier(t *testing.T, gre []byte, inner []byte) []byte {
	return ipCarrier(t, layers.IPProtocolGRE, append(gre, inner...))
}

type encapCase struct {
	name   string
	lt     LinkType
	frame  []byte
	tunnel Tunnel // of the innermost packet
	n      int    // packets out
	vlan   [2]uint16
}

func encapCases(t *testing.T) []encapCase {
	vx := append([]byte{0x08, 0, 0, 0, 0, 0, 0x2a, 0}, innerEth(t)...)
	gen := append([]byte{0, 0, 0x65, 0x58, 0, 0, 0x2a, 0}, innerEth(t)...)
	erspan2 := append([]byte{0x10, 23, 0, 1, 0, 0, 0, 0}, innerEth(t)...)
	erspan3 := append([]byte{0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, innerEth(t)...)
	v6 := ser(t, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")},
		&layers.UDP{SrcPort: 5000, DstPort: 53}, gopacket.Payload([]byte("q")))
	mpls := []byte{0, 0x01, 0x01, 0x40} // label 16, bottom of stack, TTL 64
	pppoe := []byte{0x11, 0, 0, 1, 0, 0, 0, 0x21}
	binary.BigEndian.PutUint16(pppoe[4:], uint16(2+len(innerTCP(t))))
	qinq := append(ethHdr(layers.EthernetTypeQinQ), 0, 13, 0x81, 0x00, 0, 10, 0x08, 0x00)
	sll2 := make([]byte, 20)
	binary.BigEndian.PutUint16(sll2, 0x0800)
	frag := ser(t, ip4(innerA, innerB, layers.IPProtocolUDP), gopacket.Payload(make([]byte, 16)))
	frag[6] = 0x00
	frag[7] = 0x02 // offset 16 bytes, last fragment
	frag[10], frag[11] = 0, 0
	return []encapCase{
		{"ethernet-tcp", LinkEthernet, innerEth(t), TunnelNone, 1, [2]uint16{}},
		{"vxlan", LinkEthernet, udpCarrier(t, 4789, vx), TunnelVXLAN, 2, [2]uint16{}},
		{"geneve", LinkEthernet, udpCarrier(t, 6081, gen), TunnelGeneve, 2, [2]uint16{}},
		{"teredo", LinkEthernet, udpCarrier(t, 3544, v6), TunnelTeredo, 2, [2]uint16{}},
		{"gre-ip", LinkEthernet, greCarrier(t, []byte{0, 0, 8, 0}, innerTCP(t)), TunnelGRE, 2, [2]uint16{}},
		{"gre-teb", LinkEthernet, greCarrier(t, []byte{0, 0, 0x65, 0x58}, innerEth(t)), TunnelGRE, 2, [2]uint16{}},
		{"erspan2", LinkEthernet, greCarrier(t, []byte{0x10, 0, 0x88, 0xbe, 0, 0, 0, 1}, erspan2), TunnelERSPAN2, 2, [2]uint16{23}},
		{"erspan3", LinkEthernet, greCarrier(t, []byte{0x10, 0, 0x22, 0xeb, 0, 0, 0, 1}, erspan3), TunnelERSPAN3, 2, [2]uint16{}},
		{"ip-in-ip", LinkEthernet, ipCarrier(t, layers.IPProtocolIPv4, innerTCP(t)), TunnelIPIP, 2, [2]uint16{}},
		{"mpls", LinkEthernet, append(append(ethHdr(layers.EthernetTypeMPLSUnicast), mpls...), innerTCP(t)...), TunnelNone, 1, [2]uint16{}},
		{"pppoe", LinkEthernet, append(append(ethHdr(layers.EthernetTypePPPoESession), pppoe...), innerTCP(t)...), TunnelNone, 1, [2]uint16{}},
		{"qinq", LinkEthernet, append(qinq, innerTCP(t)...), TunnelNone, 1, [2]uint16{13, 10}},
		{"sll2", LinkLinuxSLL2, append(sll2, innerTCP(t)...), TunnelNone, 1, [2]uint16{}},
		{"null-loopback", LinkNull, append([]byte{2, 0, 0, 0}, innerTCP(t)...), TunnelNone, 1, [2]uint16{}},
		{"raw-ipv6", LinkRaw, v6, TunnelNone, 1, [2]uint16{}},
		{"ipv4-later-fragment", LinkRaw, frag, TunnelNone, 1, [2]uint16{}},
		{"gtp-u", LinkEthernet, udpCarrier(t, 2152, append([]byte{0x30, 0xff, 0, byte(len(innerTCP(t))), 0, 0, 0, 1}, innerTCP(t)...)), TunnelGTP, 2, [2]uint16{}},
		{"vxlan-gpe", LinkEthernet, udpCarrier(t, 4790, append([]byte{0x0c, 0, 0, 1, 0, 0, 0x2a, 0}, innerTCP(t)...)), TunnelVXLANGPE, 2, [2]uint16{}},
		{"nsh", LinkEthernet, append(append(ethHdr(etherTypeNSH), 0, 2, 0, 1, 0, 0, 1, 0xff), innerTCP(t)...), TunnelNone, 1, [2]uint16{}},
		{"cisco-metadata", LinkEthernet, append(append(ethHdr(etherTypeCMD), 1, 1, 0, 1, 0, 5, 8, 0), innerTCP(t)...), TunnelNone, 1, [2]uint16{}},
		{"erspan-over-ethernet", LinkEthernet, append(append(ethHdr(0x88be), 0x10, 0, 0, 1, 0, 0, 0, 0), innerEth(t)...), TunnelNone, 1, [2]uint16{}},
	}
}

// TestEncapsulations decodes one frame of every encapsulation and link type:
// the innermost packet is the TCP or UDP packet put in, marked with its
// tunnel, and every outer layer that is a flow comes out first.
func TestEncapsulations(t *testing.T) {
	d := NewDecoder()
	for _, c := range encapCases(t) {
		t.Run(c.name, func(t *testing.T) {
			pkts, err := d.Decode(c.frame, c.lt, 1)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(pkts) != c.n {
				t.Fatalf("%d packets, want %d", len(pkts), c.n)
			}
			in := pkts[len(pkts)-1]
			if in.Tunnel != c.tunnel {
				t.Errorf("tunnel %v, want %v", in.Tunnel, c.tunnel)
			}
			if [2]uint16{in.VLAN, in.InnerVLAN} != c.vlan {
				t.Errorf("vlan %d/%d, want %v", in.VLAN, in.InnerVLAN, c.vlan)
			}
			switch c.name {
			case "teredo", "raw-ipv6":
				if !in.V6 || in.SrcPort != 5000 || in.DstPort != 53 || in.L4Len != 1 {
					t.Errorf("inner %+v", in)
				}
			case "ipv4-later-fragment":
				if !in.Fragment || in.FragFirst || in.L4Len != 16 {
					t.Errorf("fragment %+v", in)
				}
			default:
				if in.V6 || [4]byte(in.Src[:4]) != [4]byte(innerA) || in.SrcPort != 40000 || in.DstPort != 443 || in.Flags != FlagSYN || in.Seq != 1000 {
					t.Errorf("inner %+v", in)
				}
			}
			if c.n == 2 && pkts[0].FrameLen != uint32(len(c.frame)) {
				t.Errorf("outer frame length %d, want %d", pkts[0].FrameLen, len(c.frame))
			}
			if *update {
				dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
				s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", c.frame, c.lt)
				if err := os.WriteFile(filepath.Join(dir, "encap-"+c.name), []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
