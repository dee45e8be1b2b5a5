package flows

import (
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// MaxDepth bounds tunnel nesting: the outer packet plus two encapsulations.
// Deeper frames count as ReasonTunnelDepth and keep their outer packets.
const MaxDepth = 3

// LinkType is a pcap LINKTYPE_ value. gopacket v1.1.19's layers.LinkType is
// a byte and cannot name LINKTYPE_LINUX_SLL2 (276), so captures hand the raw
// header value to the decoder.
type LinkType uint16

// Link types the decoder starts from.
const (
	LinkNull      LinkType = 0
	LinkEthernet  LinkType = 1
	LinkRawAlt1   LinkType = 12 // DLT_RAW on some BSDs
	LinkRawAlt2   LinkType = 14
	LinkRaw       LinkType = 101
	LinkLoop      LinkType = 108
	LinkLinuxSLL  LinkType = 113
	LinkIPv4      LinkType = 228
	LinkIPv6      LinkType = 229
	LinkLinuxSLL2 LinkType = 276
)

// Reason says why a frame, or the part of it past the outer packets, could not
// be decoded. Reasons are counted, never logged per packet.
type Reason uint8

// Decode failure reasons, one counter each in DecodeStats.
const (
	ReasonNone Reason = iota
	ReasonEmpty
	ReasonLinkType
	ReasonLink
	ReasonVLAN
	ReasonMPLS
	ReasonPPPoE
	ReasonIPv4
	ReasonIPv6
	ReasonTCP
	ReasonUDP
	ReasonICMP
	ReasonTunnel
	ReasonTunnelDepth
	// ReasonBug is not the decoder's: the sensor counts here a frame whose
	// decoding or accounting panicked (a bug it reached), skipped and kept
	// as a bug report.
	ReasonBug
	NumReasons
)

var reasonNames = [NumReasons]string{"none", "empty", "link_type", "link", "vlan", "mpls", "pppoe", "ipv4", "ipv6", "tcp", "udp", "icmp", "tunnel", "tunnel_depth", "parser_bug"}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Error makes a Reason an error without allocating.
func (r Reason) Error() string { return "decode: " + r.String() }

// DecodeStats counts what the decoder saw; sensor turns it into metrics.
type DecodeStats struct {
	Frames  uint64
	NonIP   uint64 // ARP, LLDP, PPP control and the like: not flows, not errors
	Errors  [NumReasons]uint64
	Tunnels [len(tunnelNames)]uint64
}

// stack is one depth's set of reused layers and the parser over them.
type stack struct {
	parser  *gopacket.DecodingLayerParser
	start   startLayer
	ipany   ipAnyLayer
	eth     layers.Ethernet
	sll     layers.LinuxSLL
	sll2    sll2Layer
	loop    layers.Loopback
	vlan    vlanLayer
	mpls    mplsLayer
	pppoe   pppoeLayer
	ip4     ipv4Layer
	ip6     ipv6Layer
	tcp     layers.TCP
	udp     udpLayer
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	nsh     nshLayer
	cmd     cmdLayer
	erspan  erspanLayer
	decoded []gopacket.LayerType
}

func newStack() *stack {
	s := &stack{decoded: make([]gopacket.LayerType, 0, 16)}
	// A sparse container finds a layer's decoder by indexing, where
	// gopacket's default map costs a lookup per layer.
	var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, l := range []gopacket.DecodingLayer{&s.start, &s.ipany, &s.eth, &s.sll, &s.sll2, &s.loop, &s.vlan,
		&s.mpls, &s.pppoe, &s.ip4, &s.ip6, &s.tcp, &s.udp, &s.icmp4, &s.icmp6, &s.nsh, &s.cmd, &s.erspan} {
		dlc = dlc.Put(l)
	}
	s.parser = gopacket.NewDecodingLayerParser(layerTypeStart)
	s.parser.SetDecodingLayerContainer(dlc)
	s.parser.IgnoreUnsupported = true
	return s
}

// Decoder fills reused Packets from frames. One per worker; not safe for
// concurrent use.
type Decoder struct {
	stacks [MaxDepth]*stack
	pkts   [MaxDepth]Packet
	Stats  DecodeStats
}

// NewDecoder returns a Decoder with every layer allocated up front.
func NewDecoder() *Decoder {
	d := &Decoder{}
	for i := range d.stacks {
		d.stacks[i] = newStack()
	}
	return d
}

func linkStart(lt LinkType) gopacket.LayerType {
	switch lt {
	case LinkEthernet:
		return layers.LayerTypeEthernet
	case LinkNull, LinkLoop:
		return layers.LayerTypeLoopback
	case LinkRaw, LinkRawAlt1, LinkRawAlt2, LinkIPv4, LinkIPv6:
		return layerTypeIPAny
	case LinkLinuxSLL:
		return layers.LayerTypeLinuxSLL
	case LinkLinuxSLL2:
		return layerTypeSLL2
	}
	return gopacket.LayerTypeZero
}

// Decode decodes one frame of link type lt captured at ts (Unix nanoseconds)
// into the Packets it carries, outermost first. The slice and the payloads it
// points to are valid until the next call. A non-nil error is a Reason; the
// packets decoded before the failure are still returned. It takes the frame
// as complete on the wire; DecodeWire is for snap-length-truncated frames.
func (d *Decoder) Decode(data []byte, lt LinkType, ts int64) ([]Packet, error) {
	return d.DecodeWire(data, len(data), lt, ts)
}

// DecodeWire is Decode for a frame that was wireLen bytes on the wire (the
// capture's original length). An IP header that claims more than the wire
// carried is lying and the frame is refused, as Zeek refuses it
// (truncated_IP_len); one cut short by the snap length is accounted as its
// header says.
func (d *Decoder) DecodeWire(data []byte, wireLen int, lt LinkType, ts int64) ([]Packet, error) {
	d.Stats.Frames++
	if len(data) == 0 {
		return d.fail(0, ReasonEmpty)
	}
	first := linkStart(lt)
	if first == gopacket.LayerTypeZero {
		return d.fail(0, ReasonLinkType)
	}
	tunnel := TunnelNone
	frameLen := uint32(len(data))
	var tunnelVLAN, outer uint16
	for depth := 0; ; depth++ {
		if depth == MaxDepth {
			return d.fail(depth, ReasonTunnelDepth)
		}
		p := &d.pkts[depth]
		s := d.stacks[depth]
		t, reason := s.decode(data, first, p)
		if reason != ReasonNone {
			return d.fail(depth, reason)
		}
		if depth == 0 && p.IPLen != 0 && wireLen >= len(data) && s.ipOffset(data)+int(p.IPLen) > wireLen {
			return d.fail(depth, s.ipReason(p))
		}
		if p.IPLen == 0 {
			if depth == 0 {
				d.Stats.NonIP++
			}
			return d.pkts[:depth], nil
		}
		p.TS = ts
		p.Tunnel = tunnel
		p.Depth = uint8(depth)
		p.FrameLen = frameLen
		p.Outer = outer
		if p.VLAN == 0 {
			p.VLAN = tunnelVLAN
		}
		if t.kind == TunnelNone {
			return d.pkts[:depth+1], nil
		}
		d.Stats.Tunnels[t.kind]++
		tunnel, data, first, frameLen, tunnelVLAN = t.kind, t.inner, t.first, t.frameLen, t.vlan
		outer = p.outerTag()
	}
}

func (d *Decoder) fail(depth int, r Reason) ([]Packet, error) {
	d.Stats.Errors[r]++
	return d.pkts[:depth], r
}
