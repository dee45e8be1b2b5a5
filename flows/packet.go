package flows

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
)

// Tunnel names the encapsulation a packet was found inside.
type Tunnel uint8

// Encapsulations the decoder opens. The outer packet of each is a flow of its
// own, as in Zeek, so tunnel overhead is accounted where it travelled.
const (
	TunnelNone Tunnel = iota
	TunnelVXLAN
	TunnelGeneve
	TunnelGRE
	TunnelERSPAN2
	TunnelERSPAN3
	TunnelTeredo
	TunnelIPIP
	TunnelVXLANGPE
	TunnelGTP
)

var tunnelNames = [...]string{"", "vxlan", "geneve", "gre", "erspan2", "erspan3", "teredo", "ip-in-ip", "vxlan-gpe", "gtp"}

func (t Tunnel) String() string {
	if int(t) < len(tunnelNames) {
		return tunnelNames[t]
	}
	return "unknown"
}

// TCP flag bits as they sit in the header's flags byte.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
)

// Packet is one flow-level view of a frame: the outer packet of a tunnel and
// each packet inside it are separate Packets. Payload is borrowed.
type Packet struct {
	TS int64 // nanoseconds since the Unix epoch

	Src, Dst [16]byte // IPv4 in the first 4 bytes
	V6       bool
	Proto    uint8
	SrcPort  uint16 // ICMP: type
	DstPort  uint16 // ICMP: code

	// IPLen is the IP total length the header declares (IPv6: 40 + payload
	// length), what Zeek sums as ip_bytes, whatever the snap length kept.
	IPLen uint32
	// L4Len is the transport payload length the headers declare (TCP: IP
	// payload minus the TCP header; UDP: length field minus 8; ICMP: minus 8).
	L4Len uint32
	// FrameLen is the captured frame length for the outermost packet and, for
	// a packet inside a tunnel, the tunnel payload that carried it (tunnel
	// header and inner frame), as Suricata counts them.
	FrameLen uint32
	// Payload is the transport payload as captured; it may be shorter than
	// L4Len when the capture was truncated.
	Payload []byte

	Flags  uint8 // TCP flags
	Seq    uint32
	Ack    uint32
	Window uint16
	// WScale is the shift of a SYN's window-scale option; HasWScale says
	// the option was there. Read on SYNs only: scaling is agreed there.
	WScale    uint8
	HasWScale bool

	VLAN      uint16 // outermost 802.1Q tag, 0 when untagged
	InnerVLAN uint16 // second tag (QinQ)
	Tunnel    Tunnel
	Depth     uint8 // 0 for the outermost packet
	// Outer identifies the flow that carried this packet (a 16-bit hash of
	// its addresses, ports and protocol, either direction), 0 at depth 0.
	Outer uint16

	// Fragment handling: a non-first fragment has no transport header.
	Fragment  bool // part of a fragmented datagram
	FragFirst bool // offset 0 (carries the transport header)
	FragID    uint32
}

func (p *Packet) srcAddr() []byte {
	if p.V6 {
		return p.Src[:]
	}
	return p.Src[:4]
}

func (p *Packet) dstAddr() []byte {
	if p.V6 {
		return p.Dst[:]
	}
	return p.Dst[:4]
}

// portless reports protocols whose flows are keyed by addresses alone.
func portless(proto uint8) bool {
	switch proto {
	case 6, 17, 132, 1, 58:
		return false
	}
	return true
}

// outerTag is a cheap symmetric 16-bit identity of p's flow, for noticing
// when a tunnelled flow moves to another carrier flow.
func (p *Packet) outerTag() uint16 {
	var h uint32 = 2166136261
	for i := range p.Src {
		h += uint32(p.Src[i]^p.Dst[i]) * 16777619
		h ^= uint32(p.Src[i]) + uint32(p.Dst[i])
	}
	h = h*31 + uint32(p.SrcPort^p.DstPort) + uint32(p.SrcPort) + uint32(p.DstPort) + uint32(p.Proto)<<16
	t := uint16(h ^ h>>16)
	if t == 0 {
		t = 1
	}
	return t
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// FlowHash is a symmetric hash of the packet's address pair and protocol, for
// spreading packets over workers. Ports are left out on purpose: a fragment
// without a transport header must land on the worker that owns its flow.
func (p *Packet) FlowHash(seed maphash.Seed) uint64 {
	a, b := p.srcAddr(), p.dstAddr()
	if lessEndpoint(b, 0, a, 0) {
		a, b = b, a
	}
	var h maphash.Hash
	h.SetSeed(seed)
	h.Write(a)
	h.Write(b)
	h.WriteByte(p.Proto)
	return h.Sum64()
}

// SrcAddrPort is the sender's address and port (ICMP: type).
func (p *Packet) SrcAddrPort() netip.AddrPort {
	a, _ := netip.AddrFromSlice(p.srcAddr())
	return netip.AddrPortFrom(a, p.SrcPort)
}

// DstAddrPort is the receiver's address and port (ICMP: code).
func (p *Packet) DstAddrPort() netip.AddrPort {
	a, _ := netip.AddrFromSlice(p.dstAddr())
	return netip.AddrPortFrom(a, p.DstPort)
}
