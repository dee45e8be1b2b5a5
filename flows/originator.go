package flows

// ServerEvidence says how ServerSide told which end of a session is the
// server. The values are ordered: a larger one is a stronger reason.
type ServerEvidence uint8

const (
	// NoServerEvidence: the ports cannot tell. They are equal, or the
	// protocol has none (ICMP's types are handled by type, elsewhere).
	NoServerEvidence ServerEvidence = iota
	// ServerByLowerPort: neither port is a likely server port, and the
	// lower one is taken for the server's. Services listen on fixed,
	// usually lower ports; clients send from ephemeral ones (Linux
	// 32768-60999, Windows and the IANA range 49152-65535), or from a
	// port they were told to bind. Zeek has no such step: without a SYN
	// it keeps the first packet's sender as originator, and so does a
	// capture here.
	ServerByLowerPort
	// ServerByBothLikely: both ports are likely server ports, and the
	// lower is taken, as Zeek does for TCP.
	ServerByBothLikely
	// ServerByLikelyPort: exactly one port is one of Zeek's likely server
	// ports.
	ServerByLikelyPort
)

// ServerSide is the one rule by which Outflow names the server of a
// session from its ports when no handshake says who called whom: Zeek's
// likely server ports (likely_server_ports with all base scripts loaded,
// per protocol), then the lower port. It reports whether portA is the
// server's, and the evidence; with NoServerEvidence aIsServer is false and
// means nothing. ICMP and ICMPv6 always give NoServerEvidence: their
// request and reply types say more than ports can.
//
// A capture applies the rule only where Zeek flips a flow's first packet
// (see shouldFlip): a SYN without ACK always decides there, and a flow
// whose ports are both ordinary keeps its first sender as originator. Flow
// exports have neither a handshake in order nor a first packet, so
// sensor/collect applies all of it to biflows, to paired one-way records
// and to lone ones.
func ServerSide(proto uint8, portA, portB uint16) (aIsServer bool, ev ServerEvidence) {
	var likely *ports
	switch proto {
	case 1, 58:
		return false, NoServerEvidence
	case 6:
		likely = likelyTCP
	case 17:
		likely = likelyUDP
	case 33, 132, 136: // DCCP, SCTP, UDP-Lite: ports, but no likely set
	default:
		return false, NoServerEvidence
	}
	if portA == portB {
		return false, NoServerEvidence
	}
	if likely != nil {
		la, lb := likely.has(portA), likely.has(portB)
		switch {
		case la && lb:
			return portA < portB, ServerByBothLikely
		case la || lb:
			return la, ServerByLikelyPort
		}
	}
	if portA == 0 || portB == 0 {
		return false, NoServerEvidence // reserved: no service listens there
	}
	return portA < portB, ServerByLowerPort
}

// Zeek's likely_server_ports with all base scripts loaded, per protocol: the
// responder when a flow is first seen mid-stream.
var (
	likelyTCP = portSet(21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 465, 502, 514, 563, 585,
		587, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222, 5223,
		5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000)
	likelyUDP = portSet(53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389, 3544, 4011, 4754,
		4789, 5060, 5072, 5353, 5355, 6081, 20000)
)

type ports [1 << 16 / 64]uint64

func portSet(ps ...uint16) *ports {
	var s ports
	for _, p := range ps {
		s[p/64] |= 1 << (p % 64)
	}
	return &s
}

func (s *ports) has(p uint16) bool { return s[p/64]&(1<<(p%64)) != 0 }
