package flows

import (
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// UDP ports of the encapsulations opened by default.
const (
	portVXLAN  = 4789
	portGeneve = 6081
	portTeredo = 3544
	portGPE    = 4790 // VXLAN-GPE
	portGTPU   = 2152
)

// GRE protocol numbers for mirrored traffic (ERSPAN).
const (
	greERSPAN2 = 0x88be
	greERSPAN3 = 0x22eb
)

// tunnelOpen describes the inner packet found at the end of one depth.
type tunnelOpen struct {
	kind     Tunnel
	inner    []byte
	first    gopacket.LayerType
	frameLen uint32 // what the encapsulation carried: its header and the inner packet
	vlan     uint16 // a VLAN the encapsulation names (ERSPAN), for an untagged inner frame
}

// decode runs the parser over one depth and fills p. p.IPLen stays 0 for
// frames that carry no IP packet.
func (s *stack) decode(data []byte, first gopacket.LayerType, p *Packet) (tunnelOpen, Reason) {
	*p = Packet{}
	s.vlan.reset()
	s.start.next = first
	err := s.parser.DecodeLayers(data, &s.decoded)
	if err != nil {
		return tunnelOpen{}, s.failedAt()
	}
	var (
		ipPayload int
		l3        gopacket.LayerType
		l4        bool
	)
	for _, lt := range s.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			ip := &s.ip4
			copy(p.Src[:4], ip.SrcIP)
			copy(p.Dst[:4], ip.DstIP)
			p.Proto = uint8(ip.Protocol)
			p.IPLen = uint32(ip.Length)
			ipPayload = int(ip.Length) - int(ip.IHL)*4
			if ip.fragmented() {
				p.Fragment, p.FragFirst, p.FragID = true, ip.FragOffset == 0, uint32(ip.Id)
			}
			l3 = lt
		case layers.LayerTypeIPv6:
			ip := &s.ip6
			copy(p.Src[:], ip.Src)
			copy(p.Dst[:], ip.Dst)
			p.V6 = true
			p.Proto = uint8(ip.Proto)
			p.IPLen = 40 + uint32(ip.PayloadLen)
			ipPayload = max(int(ip.PayloadLen)-ip.ExtLen, 0)
			if ip.Frag {
				p.Fragment, p.FragFirst, p.FragID = true, ip.FragOffset == 0, ip.FragID
			}
			l3 = lt
		case layers.LayerTypeTCP:
			t := &s.tcp
			p.SrcPort, p.DstPort = uint16(t.SrcPort), uint16(t.DstPort)
			p.Flags = tcpFlags(t)
			p.Seq, p.Ack, p.Window = t.Seq, t.Ack, t.Window
			p.WScale, p.HasWScale = 0, false
			if t.SYN {
				p.WScale, p.HasWScale = windowScale(t.Options)
			}
			p.L4Len = uint32(max(ipPayload-int(t.DataOffset)*4, 0))
			p.Payload = t.Payload
			l4 = true
		case layers.LayerTypeUDP:
			u := &s.udp
			if !p.V6 && be16(u.Contents[4:6]) < 8 {
				// gopacket reads a zero length as an IPv6 jumbogram; in IPv4
				// a length below the header's own is a broken packet.
				return tunnelOpen{}, ReasonUDP
			}
			p.SrcPort, p.DstPort = uint16(u.SrcPort), uint16(u.DstPort)
			n := ipPayload
			if !p.Fragment && u.Length >= 8 && int(u.Length) < n {
				n = int(u.Length)
			}
			p.L4Len = uint32(max(n-8, 0))
			p.Payload = u.Payload
			l4 = true
		case layers.LayerTypeICMPv4:
			p.SrcPort, p.DstPort = uint16(s.icmp4.TypeCode.Type()), uint16(s.icmp4.TypeCode.Code())
			p.L4Len = uint32(max(ipPayload-8, 0))
			p.Payload = s.icmp4.Payload
			l4 = true
		case layers.LayerTypeICMPv6:
			p.SrcPort, p.DstPort = uint16(s.icmp6.TypeCode.Type()), uint16(s.icmp6.TypeCode.Code())
			p.L4Len = uint32(max(ipPayload-8, 0))
			if pl := s.icmp6.Payload; len(pl) >= 4 {
				p.Payload = pl[4:]
			}
			l4 = true
		case layers.LayerTypeDot1Q:
			p.VLAN, p.InnerVLAN = s.vlan.tags[0], s.vlan.tags[1]
		}
	}
	if l3 == gopacket.LayerTypeZero {
		return tunnelOpen{}, ReasonNone
	}
	ipData := s.ip4.Payload
	if l3 == layers.LayerTypeIPv6 {
		ipData = s.ip6.payload
	}
	if l4 {
		if p.Fragment {
			// The transport header rode in this first fragment; the rest of
			// the datagram's payload arrives with the fragments that follow.
			p.L4Len = uint32(max(ipPayload-(len(ipData)-len(p.Payload)), 0))
		}
		if p.Proto == 17 && !p.Fragment {
			return s.udpTunnel(p), ReasonNone
		}
		return tunnelOpen{}, ReasonNone
	}
	// No transport layer decoded: a non-first fragment, a protocol we key by
	// addresses alone, a tunnel, or a transport header cut by the snap length.
	p.L4Len = uint32(ipPayload)
	if p.Fragment && !p.FragFirst {
		return tunnelOpen{}, ReasonNone
	}
	switch p.Proto {
	case 6:
		return tunnelOpen{}, ReasonTCP
	case 17:
		return tunnelOpen{}, ReasonUDP
	case 1, 58:
		return tunnelOpen{}, ReasonICMP
	case 132: // SCTP: ports lead the common header
		if len(ipData) >= 12 {
			p.SrcPort, p.DstPort = be16(ipData[0:2]), be16(ipData[2:4])
			p.L4Len = uint32(max(ipPayload-12, 0))
		}
	case 4, 41:
		if !p.Fragment {
			return tunnelOpen{TunnelIPIP, ipData, layerTypeIPAny, uint32(len(ipData)), 0}, ReasonNone
		}
	case 47:
		if !p.Fragment {
			return s.greTunnel(ipData)
		}
	}
	return tunnelOpen{}, ReasonNone
}

func (s *stack) udpTunnel(p *Packet) tunnelOpen {
	pl := p.Payload
	switch {
	case p.DstPort == portVXLAN || p.SrcPort == portVXLAN:
		if len(pl) >= 8 && pl[0]&0x08 != 0 {
			return tunnelOpen{TunnelVXLAN, pl[8:], layers.LayerTypeEthernet, uint32(len(pl)), 0}
		}
	case p.DstPort == portGeneve || p.SrcPort == portGeneve:
		if len(pl) >= 8 && pl[0]>>6 == 0 {
			n := 8 + int(pl[0]&0x3f)*4
			if len(pl) >= n {
				if first := etherStart(be16(pl[2:4])); first != gopacket.LayerTypeZero {
					return tunnelOpen{TunnelGeneve, pl[n:], first, uint32(len(pl)), 0}
				}
			}
		}
	case p.DstPort == portTeredo || p.SrcPort == portTeredo:
		if in := teredoInner(pl); in != nil {
			return tunnelOpen{TunnelTeredo, in, layerTypeIPAny, uint32(len(pl)), 0}
		}
	case p.DstPort == portGPE:
		// VXLAN-GPE names its payload: 1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH.
		// Some senders leave the P flag clear; Wireshark and Arkime read the
		// protocol byte all the same.
		if len(pl) >= 8 && pl[0]&0x08 != 0 {
			if first := gpeStart(pl[3]); first != gopacket.LayerTypeZero {
				return tunnelOpen{TunnelVXLANGPE, pl[8:], first, uint32(len(pl)), 0}
			}
		}
	case p.DstPort == portGTPU || p.SrcPort == portGTPU:
		if in := gtpInner(pl); in != nil {
			return tunnelOpen{TunnelGTP, in, layerTypeIPAny, uint32(len(pl)), 0}
		}
	}
	return tunnelOpen{}
}

func gpeStart(next byte) gopacket.LayerType {
	switch next {
	case 1, 2:
		return layerTypeIPAny
	case 3:
		return layers.LayerTypeEthernet
	case 4:
		return layerTypeNSH
	}
	return gopacket.LayerTypeZero
}

// gtpInner returns the user packet of a GTPv1-U G-PDU (message type 255),
// after the optional sequence, N-PDU and extension header fields.
func gtpInner(b []byte) []byte {
	if len(b) < 8 || b[0]>>5 != 1 || b[0]&0x10 == 0 || b[1] != 0xff {
		return nil
	}
	n := 8
	if b[0]&0x07 != 0 {
		n = 12
		if len(b) < n {
			return nil
		}
		for next := b[11]; next != 0; {
			if len(b) < n+1 || b[n] == 0 {
				return nil
			}
			l := int(b[n]) * 4
			if len(b) < n+l {
				return nil
			}
			next = b[n+l-1]
			n += l
		}
	}
	if len(b) <= n || (b[n]>>4 != 4 && b[n]>>4 != 6) {
		return nil
	}
	return b[n:]
}

// teredoInner skips Teredo's optional authentication and origin indication
// headers and accepts what follows only if it looks like an IPv6 header whose
// payload length fits, because port 3544 alone is weak evidence.
func teredoInner(b []byte) []byte {
	if len(b) >= 4 && b[0] == 0 && b[1] == 1 {
		n := 4 + int(b[2]) + int(b[3]) + 9
		if len(b) < n {
			return nil
		}
		b = b[n:]
	}
	if len(b) >= 8 && b[0] == 0 && b[1] == 0 {
		b = b[8:]
	}
	if len(b) < 40 || b[0]>>4 != 6 || 40+int(be16(b[4:6])) != len(b) {
		return nil
	}
	return b
}

// greHeader returns a GRE packet's protocol, whether it carries a sequence
// number, and its payload. Written here, bounds-checked, because gopacket
// v1.1.19's GRE decoder indexes past the end of short headers (found by
// FuzzDecode, seed regression-gre-short-header).
func greHeader(b []byte) (proto uint16, seq bool, payload []byte, ok bool) {
	if len(b) < 4 {
		return 0, false, nil, false
	}
	flags, version := b[0], b[1]&0x07
	if flags&0x40 != 0 || version > 1 { // source routing, or an unknown version
		return 0, false, nil, false
	}
	n := 4
	if flags&0x80 != 0 { // checksum and offset
		n += 4
	}
	if flags&0x20 != 0 { // key
		n += 4
	}
	if flags&0x10 != 0 { // sequence number
		n += 4
		seq = true
	}
	if version == 1 && b[1]&0x80 != 0 { // enhanced GRE (PPTP) acknowledgment
		n += 4
	}
	if len(b) < n {
		return 0, false, nil, false
	}
	return be16(b[2:4]), seq, b[n:], true
}

func (s *stack) greTunnel(b []byte) (tunnelOpen, Reason) {
	proto, seq, pl, ok := greHeader(b)
	if !ok {
		return tunnelOpen{}, ReasonTunnel
	}
	switch proto {
	case greERSPAN2:
		if seq { // type II has an 8-byte header; type I has none
			if len(pl) < 8 {
				return tunnelOpen{}, ReasonTunnel
			}
			return tunnelOpen{TunnelERSPAN2, pl[8:], layers.LayerTypeEthernet, uint32(len(pl)), be16(pl[0:2]) & 0x0fff}, ReasonNone
		}
		return tunnelOpen{TunnelERSPAN2, pl, layers.LayerTypeEthernet, uint32(len(pl)), 0}, ReasonNone
	case greERSPAN3:
		if len(pl) < 12 {
			return tunnelOpen{}, ReasonTunnel
		}
		n := 12
		if pl[11]&1 != 0 { // O bit: platform-specific subheader follows
			n += 8
		}
		if len(pl) < n {
			return tunnelOpen{}, ReasonTunnel
		}
		return tunnelOpen{TunnelERSPAN3, pl[n:], layers.LayerTypeEthernet, uint32(len(pl)), be16(pl[0:2]) & 0x0fff}, ReasonNone
	}
	if first := etherStart(proto); first != gopacket.LayerTypeZero {
		return tunnelOpen{TunnelGRE, pl, first, uint32(len(pl)), 0}, ReasonNone
	}
	return tunnelOpen{}, ReasonNone
}

func etherStart(proto uint16) gopacket.LayerType {
	switch proto {
	case 0x6558:
		return layers.LayerTypeEthernet
	case 0x0800, 0x86dd:
		return layerTypeIPAny
	}
	return gopacket.LayerTypeZero
}

// windowScale returns the shift a SYN's window-scale option asks for
// (RFC 7323 caps it at 14) and whether the option is there.
func windowScale(opts []layers.TCPOption) (uint8, bool) {
	for i := range opts {
		o := &opts[i]
		if o.OptionType == layers.TCPOptionKindWindowScale && len(o.OptionData) == 1 {
			return min(o.OptionData[0], maxWScale), true
		}
	}
	return 0, false
}

func tcpFlags(t *layers.TCP) uint8 {
	var f uint8
	if t.FIN {
		f |= FlagFIN
	}
	if t.SYN {
		f |= FlagSYN
	}
	if t.RST {
		f |= FlagRST
	}
	if t.PSH {
		f |= FlagPSH
	}
	if t.ACK {
		f |= FlagACK
	}
	if t.URG {
		f |= FlagURG
	}
	return f
}

// ipOffset is where the IP header starts in data (the link headers' length):
// the IP layer's contents are a slice of data, so their capacities tell.
func (s *stack) ipOffset(data []byte) int {
	if len(s.decoded) == 0 {
		return 0
	}
	for _, lt := range s.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			return cap(data) - cap(s.ip4.Contents)
		case layers.LayerTypeIPv6:
			return cap(data) - cap(s.ip6.Src) - 8
		}
	}
	return 0
}

func (s *stack) ipReason(p *Packet) Reason {
	if p.V6 {
		return ReasonIPv6
	}
	return ReasonIPv4
}

// failedAt names the layer that refused its bytes: the one the last decoded
// layer pointed to.
func (s *stack) failedAt() Reason {
	next := s.start.next
	if n := len(s.decoded); n > 0 {
		next = s.nextOf(s.decoded[n-1])
	}
	switch next {
	case layers.LayerTypeDot1Q:
		return ReasonVLAN
	case layers.LayerTypeMPLS:
		return ReasonMPLS
	case layers.LayerTypePPPoE:
		return ReasonPPPoE
	case layers.LayerTypeIPv4:
		return ReasonIPv4
	case layers.LayerTypeIPv6:
		return ReasonIPv6
	case layers.LayerTypeTCP:
		return ReasonTCP
	case layers.LayerTypeUDP:
		return ReasonUDP
	case layers.LayerTypeICMPv4, layers.LayerTypeICMPv6:
		return ReasonICMP
	}
	return ReasonLink
}

func (s *stack) nextOf(lt gopacket.LayerType) gopacket.LayerType {
	switch lt {
	case layerTypeStart:
		return s.start.NextLayerType()
	case layerTypeIPAny:
		return s.ipany.NextLayerType()
	case layers.LayerTypeEthernet:
		return s.eth.NextLayerType()
	case layers.LayerTypeLinuxSLL:
		return s.sll.NextLayerType()
	case layerTypeSLL2:
		return s.sll2.NextLayerType()
	case layers.LayerTypeLoopback:
		return s.loop.NextLayerType()
	case layers.LayerTypeDot1Q:
		return s.vlan.NextLayerType()
	case layers.LayerTypeMPLS:
		return s.mpls.NextLayerType()
	case layers.LayerTypePPPoE:
		return s.pppoe.NextLayerType()
	case layers.LayerTypeIPv4:
		return s.ip4.NextLayerType()
	case layers.LayerTypeIPv6:
		return s.ip6.NextLayerType()
	}
	return gopacket.LayerTypeZero
}
