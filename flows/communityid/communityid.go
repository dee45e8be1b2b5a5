package communityid

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
)

// IP protocol numbers whose tuples carry ports (or ICMP port equivalents).
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// maxInput is the longest hash input: seed, two IPv6 addresses, protocol,
// padding, two ports. It is a single SHA-1 block after padding.
const maxInput = 2 + 16 + 16 + 1 + 1 + 2 + 2

// Hasher holds a seed; it is safe for one goroutine; zero allocations per
// call.
//
// The hash input and SHA-1 state live on the stack of each call, so a Hasher
// is never written after New; sharing one between goroutines is harmless,
// though not promised.
type Hasher struct {
	seed uint16
}

// New returns a Hasher for seed. Tools only produce matching IDs when they
// are configured with the same seed; 0 is everybody's default.
func New(seed uint16) *Hasher {
	return &Hasher{seed: seed}
}

// Append appends "1:" + base64(sha1(...)) for the flow to dst and returns it.
//
// src and dstAddr are raw 4-byte (IPv4) or 16-byte (IPv6) addresses. For ICMP
// and ICMPv6 pass the raw message type as sport and the raw code as dport;
// the mapping to port equivalents and the one-way rule are applied here. For
// protocols without ports (anything but TCP, UDP, SCTP, ICMP, ICMPv6) sport
// and dport are ignored.
//
// If the addresses are not both 4 or both 16 bytes long, dst is returned
// unchanged: the spec leaves such tuples undefined and allows an empty ID, and
// an empty ID cannot be mistaken for another flow's.
func (h *Hasher) Append(dst []byte, src, dstAddr []byte, proto uint8, sport, dport uint16) []byte {
	sport, dport, oneWay := portEquivalents(proto, sport, dport)
	return h.appendMapped(dst, src, dstAddr, proto, sport, dport, oneWay, false)
}

// AppendHex is Append with the digest in lowercase hex ("1:" + 40 hex
// digits), the spec's no-base64 option, for consumers configured that way.
func (h *Hasher) AppendHex(dst []byte, src, dstAddr []byte, proto uint8, sport, dport uint16) []byte {
	sport, dport, oneWay := portEquivalents(proto, sport, dport)
	return h.appendMapped(dst, src, dstAddr, proto, sport, dport, oneWay, true)
}

// appendMapped hashes a tuple whose ICMP ports are already port equivalents.
// It is separate from Append because published reference data (the spec's
// JSON baselines) is given in that already-mapped form.
func (h *Hasher) appendMapped(dst, src, dstAddr []byte, proto uint8, sport, dport uint16, oneWay, hexForm bool) []byte {
	n := len(src)
	if n != len(dstAddr) || (n != 4 && n != 16) {
		return dst
	}
	ports := hasPorts(proto)
	if !ports {
		// Zeroed so that ordering falls to the addresses alone.
		sport, dport = 0, 0
	}
	if !oneWay {
		c := bytes.Compare(src, dstAddr)
		if c > 0 || (c == 0 && sport > dport) {
			src, dstAddr = dstAddr, src
			sport, dport = dport, sport
		}
	}

	var in [maxInput]byte
	binary.BigEndian.PutUint16(in[0:2], h.seed)
	i := 2
	i += copy(in[i:], src)
	i += copy(in[i:], dstAddr)
	in[i] = proto
	in[i+1] = 0
	i += 2
	if ports {
		binary.BigEndian.PutUint16(in[i:], sport)
		binary.BigEndian.PutUint16(in[i+2:], dport)
		i += 4
	}
	sum := sha1.Sum(in[:i])

	dst = append(dst, '1', ':')
	if hexForm {
		return hex.AppendEncode(dst, sum[:])
	}
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

func hasPorts(proto uint8) bool {
	switch proto {
	case protoTCP, protoUDP, protoSCTP, protoICMP, protoICMPv6:
		return true
	}
	return false
}

// portEquivalents follows Zeek's ICMP4_counterpart/ICMP6_counterpart, which
// the spec adopts: a request/reply type pair becomes (type, counterpart type)
// so both directions order into one flow; any other message becomes
// (type, code) and is one-way, because e.g. an error has no reply to pair
// with and must not be merged with traffic in the other direction.
func portEquivalents(proto uint8, sport, dport uint16) (uint16, uint16, bool) {
	if proto != protoICMP && proto != protoICMPv6 {
		return sport, dport, false
	}
	if c, ok := counterpart(proto, sport); ok {
		return sport, c, false
	}
	return sport, dport, true
}

// counterpart reports the message type that answers typ, for the pairs the
// spec treats as two-way.
func counterpart(proto uint8, typ uint16) (uint16, bool) {
	if proto == protoICMP {
		switch typ {
		case 8: // echo request
			return 0, true
		case 0: // echo reply
			return 8, true
		case 13: // timestamp
			return 14, true
		case 14:
			return 13, true
		case 15: // information request
			return 16, true
		case 16:
			return 15, true
		case 10: // router solicitation
			return 9, true
		case 9: // router advertisement
			return 10, true
		case 17: // address mask
			return 18, true
		case 18:
			return 17, true
		}
		return 0, false
	}
	switch typ {
	case 128: // echo request
		return 129, true
	case 129:
		return 128, true
	case 130: // MLD listener query
		return 131, true
	case 131: // MLD listener report
		return 130, true
	case 133: // router solicitation
		return 134, true
	case 134:
		return 133, true
	case 135: // neighbor solicitation
		return 136, true
	case 136:
		return 135, true
	case 139: // node information query ("who are you")
		return 140, true
	case 140:
		return 139, true
	case 144: // home agent address discovery
		return 145, true
	case 145:
		return 144, true
	}
	return 0, false
}
