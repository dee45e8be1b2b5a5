package flows

import (
	"errors"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Layer types of our own, for what gopacket v1.1.19 does not decode as a
// DecodingLayer (SLL2, MPLS, PPPoE) or where we need more than it records
// (VLAN stacks, IPv6 fragments), plus markers that stop a parser at a tunnel.
var (
	layerTypeStart  = gopacket.RegisterLayerType(1901, gopacket.LayerTypeMetadata{Name: "OutflowStart"})
	layerTypeSLL2   = gopacket.RegisterLayerType(1902, gopacket.LayerTypeMetadata{Name: "LinuxSLL2"})
	layerTypeTunnel = gopacket.RegisterLayerType(1903, gopacket.LayerTypeMetadata{Name: "OutflowTunnel"})
	layerTypeIPAny  = gopacket.RegisterLayerType(1904, gopacket.LayerTypeMetadata{Name: "OutflowIPAny"})
	layerTypeFrag   = gopacket.RegisterLayerType(1905, gopacket.LayerTypeMetadata{Name: "OutflowFragment"})
	layerTypeNSH    = gopacket.RegisterLayerType(1906, gopacket.LayerTypeMetadata{Name: "NSH"})
	layerTypeCMD    = gopacket.RegisterLayerType(1907, gopacket.LayerTypeMetadata{Name: "CiscoMetaData"})
)

// EtherTypes of service-chaining headers that sit between Ethernet and IP.
const (
	etherTypeNSH = 0x894f
	etherTypeCMD = 0x8909
)

func init() {
	// Let gopacket's Ethernet and VLAN layers name these as next layers.
	layers.EthernetTypeMetadata[etherTypeNSH] = layers.EnumMetadata{Name: "NSH", LayerType: layerTypeNSH}
	layers.EthernetTypeMetadata[etherTypeCMD] = layers.EnumMetadata{Name: "CiscoMetaData", LayerType: layerTypeCMD}
}

// nshLayer is the Network Service Header (RFC 8300) of service chains.
type nshLayer struct {
	next gopacket.LayerType
	data []byte
}

func (l *nshLayer) CanDecode() gopacket.LayerClass    { return layerTypeNSH }
func (l *nshLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *nshLayer) LayerPayload() []byte              { return l.data }
func (l *nshLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errShort
	}
	n := int(data[1]&0x3f) * 4
	if n < 8 || len(data) < n {
		return errBadHeader
	}
	switch data[3] {
	case 1, 2:
		l.next = layerTypeIPAny
	case 3:
		l.next = layers.LayerTypeEthernet
	default:
		l.next = gopacket.LayerTypeZero
	}
	l.data = data[n:]
	return nil
}

// cmdLayer is Cisco MetaData (TrustSec security group tag) before the real
// EtherType.
type cmdLayer struct {
	proto layers.EthernetType
	data  []byte
}

func (l *cmdLayer) CanDecode() gopacket.LayerClass    { return layerTypeCMD }
func (l *cmdLayer) NextLayerType() gopacket.LayerType { return l.proto.LayerType() }
func (l *cmdLayer) LayerPayload() []byte              { return l.data }
func (l *cmdLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errShort
	}
	l.proto = layers.EthernetType(be16(data[6:8]))
	l.data = data[8:]
	return nil
}

var (
	errShort      = errors.New("header truncated")
	errBadHeader  = errors.New("malformed header")
	errLabelDepth = errors.New("too many MPLS labels")
)

// startLayer lets one DecodingLayerParser begin at any link type: it decodes
// nothing and hands the whole frame to the layer the caller chose.
type startLayer struct {
	next gopacket.LayerType
	data []byte
}

func (s *startLayer) CanDecode() gopacket.LayerClass    { return layerTypeStart }
func (s *startLayer) NextLayerType() gopacket.LayerType { return s.next }
func (s *startLayer) LayerPayload() []byte              { return s.data }
func (s *startLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	s.data = data
	return nil
}

// ipAnyLayer picks IPv4 or IPv6 from the version nibble, for raw-IP link
// types and tunnels that carry bare IP.
type ipAnyLayer struct {
	next gopacket.LayerType
	data []byte
}

func (l *ipAnyLayer) CanDecode() gopacket.LayerClass    { return layerTypeIPAny }
func (l *ipAnyLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *ipAnyLayer) LayerPayload() []byte              { return l.data }
func (l *ipAnyLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 1 {
		return errShort
	}
	switch data[0] >> 4 {
	case 4:
		l.next = layers.LayerTypeIPv4
	case 6:
		l.next = layers.LayerTypeIPv6
	default:
		return errBadHeader
	}
	l.data = data
	return nil
}

// sll2Layer is the Linux cooked v2 header (DLT_LINUX_SLL2), what
// `tcpdump -i any` writes since libpcap 1.10.
type sll2Layer struct {
	proto layers.EthernetType
	data  []byte
}

func (l *sll2Layer) CanDecode() gopacket.LayerClass    { return layerTypeSLL2 }
func (l *sll2Layer) NextLayerType() gopacket.LayerType { return l.proto.LayerType() }
func (l *sll2Layer) LayerPayload() []byte              { return l.data }
func (l *sll2Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return errShort
	}
	l.proto = layers.EthernetType(be16(data[0:2]))
	l.data = data[20:]
	return nil
}

// vlanLayer decodes 802.1Q and 802.1ad tags. One instance sees every tag of a
// frame, so it keeps the first two (Zeek's vlan and inner_vlan) instead of
// letting the inner tag overwrite the outer one.
type vlanLayer struct {
	tags  [2]uint16
	n     int
	proto layers.EthernetType
	data  []byte
}

func (l *vlanLayer) reset()                            { l.n = 0; l.tags = [2]uint16{} }
func (l *vlanLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeDot1Q }
func (l *vlanLayer) NextLayerType() gopacket.LayerType { return l.proto.LayerType() }
func (l *vlanLayer) LayerPayload() []byte              { return l.data }
func (l *vlanLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		return errShort
	}
	if l.n < len(l.tags) {
		l.tags[l.n] = be16(data[0:2]) & 0x0fff
	}
	l.n++
	l.proto = layers.EthernetType(be16(data[2:4]))
	l.data = data[4:]
	return nil
}

// mplsLayer walks a whole label stack in one step. What follows the stack is
// not named on the wire: the first nibble tells IPv4 from IPv6, and a zero
// nibble is the pseudowire control word before an Ethernet frame.
type mplsLayer struct {
	next gopacket.LayerType
	data []byte
}

func (l *mplsLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeMPLS }
func (l *mplsLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *mplsLayer) LayerPayload() []byte              { return l.data }
func (l *mplsLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	for i := 0; ; i++ {
		if i == 16 {
			return errLabelDepth
		}
		if len(data) < 4 {
			return errShort
		}
		bottom := data[2]&1 == 1
		data = data[4:]
		if bottom {
			break
		}
	}
	if len(data) < 1 {
		return errShort
	}
	switch data[0] >> 4 {
	case 4:
		l.next = layers.LayerTypeIPv4
	case 6:
		l.next = layers.LayerTypeIPv6
	case 0:
		if len(data) < 4 {
			return errShort
		}
		data = data[4:]
		l.next = layers.LayerTypeEthernet
	default:
		return errBadHeader
	}
	l.data = data
	return nil
}

// pppoeLayer is a PPPoE session header with the PPP protocol field after it.
type pppoeLayer struct {
	next gopacket.LayerType
	data []byte
}

func (l *pppoeLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypePPPoE }
func (l *pppoeLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *pppoeLayer) LayerPayload() []byte              { return l.data }
func (l *pppoeLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errShort
	}
	n := int(be16(data[4:6])) // covers the PPP protocol field and its payload
	if n < 2 {
		return errBadHeader
	}
	switch be16(data[6:8]) {
	case 0x0021:
		l.next = layers.LayerTypeIPv4
	case 0x0057:
		l.next = layers.LayerTypeIPv6
	default:
		l.next = gopacket.LayerTypeZero // LCP, IPCP and the like: not a flow
	}
	data = data[8:]
	if n-2 < len(data) {
		data = data[:n-2]
	}
	l.data = data
	return nil
}

// ipv4Layer is gopacket's IPv4 with the next-layer choice made here: a
// non-first fragment has no transport header, and IP-in-IP or GRE must stop
// the parser so the inner packet gets layers of its own.
type ipv4Layer struct {
	layers.IPv4
}

func (l *ipv4Layer) fragmented() bool {
	return l.Flags&layers.IPv4MoreFragments != 0 || l.FragOffset != 0
}

func (l *ipv4Layer) NextLayerType() gopacket.LayerType {
	if l.FragOffset != 0 {
		return layerTypeFrag
	}
	switch l.Protocol {
	case layers.IPProtocolIPv4, layers.IPProtocolIPv6, layers.IPProtocolGRE:
		return layerTypeTunnel
	}
	return l.Protocol.LayerType()
}

// ipv6Layer decodes the fixed header and walks the extension headers itself,
// so that a fragment header's offset and id are kept (gopacket's skipper
// would hand a non-first fragment to the TCP decoder).
type ipv6Layer struct {
	Src, Dst    []byte
	PayloadLen  uint16
	Proto       layers.IPProtocol // after the extension headers
	ExtLen      int
	Frag        bool
	FragOffset  uint16
	FragMore    bool
	FragID      uint32
	payload     []byte
	next        gopacket.LayerType
	jumboOrZero bool
}

func (l *ipv6Layer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeIPv6 }
func (l *ipv6Layer) NextLayerType() gopacket.LayerType { return l.next }
func (l *ipv6Layer) LayerPayload() []byte              { return l.payload }
func (l *ipv6Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 40 {
		return errShort
	}
	if data[0]>>4 != 6 {
		return errBadHeader
	}
	l.Src, l.Dst = data[8:24], data[24:40]
	l.PayloadLen = be16(data[4:6])
	l.jumboOrZero = l.PayloadLen == 0
	if l.jumboOrZero {
		l.PayloadLen = uint16(min(len(data)-40, 0xffff))
	}
	rest := data[40:]
	if int(l.PayloadLen) < len(rest) {
		rest = rest[:l.PayloadLen]
	}
	l.Frag, l.FragOffset, l.FragMore, l.FragID = false, 0, false, 0
	l.ExtLen = 0
	nh := layers.IPProtocol(data[6])
	for hops := 0; ; hops++ {
		if hops == 8 {
			return errBadHeader
		}
		var n int
		switch nh {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination, 135:
			if len(rest) < 8 {
				return errShort
			}
			n = (int(rest[1]) + 1) * 8
		case layers.IPProtocolIPv6Fragment:
			if len(rest) < 8 {
				return errShort
			}
			n = 8
			fo := be16(rest[2:4])
			l.Frag, l.FragOffset, l.FragMore, l.FragID = true, fo>>3, fo&1 == 1, be32(rest[4:8])
		case layers.IPProtocolAH:
			if len(rest) < 8 {
				return errShort
			}
			n = (int(rest[1]) + 2) * 4
		default:
			l.Proto = nh
			l.payload = rest
			switch {
			case l.Frag && l.FragOffset != 0:
				l.next = layerTypeFrag
			case nh == layers.IPProtocolIPv4 || nh == layers.IPProtocolIPv6 || nh == layers.IPProtocolGRE:
				l.next = layerTypeTunnel
			default:
				l.next = nh.LayerType()
			}
			return nil
		}
		if len(rest) < n {
			return errShort
		}
		nh = layers.IPProtocol(rest[0])
		rest = rest[n:]
		l.ExtLen += n
	}
}

// udpLayer is gopacket's UDP, stopping at the ports of the tunnels we open
// rather than at gopacket's guess of the application.
type udpLayer struct {
	layers.UDP
}

func (l *udpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// erspanLayer is an ERSPAN type II header carried straight over Ethernet
// (EtherType 0x88be, no IP or GRE), as some mirroring switches send it. There
// is no outer IP flow, so it is a link header, not a tunnel. gopacket's
// ERSPANII decoder reads its 8 bytes without checking they are there.
type erspanLayer struct {
	data []byte
}

func (l *erspanLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeERSPANII }
func (l *erspanLayer) NextLayerType() gopacket.LayerType { return layers.LayerTypeEthernet }
func (l *erspanLayer) LayerPayload() []byte              { return l.data }
func (l *erspanLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errShort
	}
	l.data = data[8:]
	return nil
}
