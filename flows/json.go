package flows

import (
	"net/netip"
	"strconv"

	"github.com/outflow-sensor/outflow/flows/communityid"
)

// Direction of a flow relative to the home networks.
const (
	DirOutbound = "outbound"
	DirInbound  = "inbound"
	DirInternal = "internal"
	DirExternal = "external"
)

// DefaultHomeNets are the RFC 1918 and ULA ranges, used when none are set.
var DefaultHomeNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// Encoder writes flow records as JSON objects, one per line, with Zeek's
// conn.log names where one exists. It allocates nothing per record once its
// caller's buffer has grown. One per goroutine.
type Encoder struct {
	HomeNets []netip.Prefix
	cid      *communityid.Hasher
	// cidAt and cidEnd locate the Community ID in the line Append last
	// wrote, from the line's start, for callers that want it as well.
	cidAt, cidEnd int
}

// CommunityID returns the Community ID within line, the record Append
// last wrote (line starting where that record starts).
func (e *Encoder) CommunityID(line []byte) []byte {
	if e.cidEnd > len(line) || e.cidAt > e.cidEnd {
		return nil
	}
	return line[e.cidAt:e.cidEnd]
}

// NewEncoder returns an Encoder hashing Community IDs with seed.
func NewEncoder(homeNets []netip.Prefix, seed uint16) *Encoder {
	if homeNets == nil {
		homeNets = DefaultHomeNets
	}
	return &Encoder{HomeNets: homeNets, cid: communityid.New(seed)}
}

func addrOf(b [16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

func (e *Encoder) home(a netip.Addr) bool {
	for _, p := range e.HomeNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Direction classifies r against the home networks.
func (e *Encoder) Direction(r *Record) string {
	oh, rh := e.home(addrOf(r.OrigH, r.V6)), e.home(addrOf(r.RespH, r.V6))
	switch {
	case oh && rh:
		return DirInternal
	case oh:
		return DirOutbound
	case rh:
		return DirInbound
	}
	return DirExternal
}

const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

func protoName(dst []byte, p uint8) []byte {
	switch p {
	case 6:
		return append(dst, "tcp"...)
	case 17:
		return append(dst, "udp"...)
	case 1:
		return append(dst, "icmp"...)
	case 58:
		return append(dst, "icmp6"...)
	}
	return strconv.AppendUint(dst, uint64(p), 10)
}

// AppendCommunityID appends r's Community ID ("1:" and base64).
func (e *Encoder) AppendCommunityID(dst []byte, r *Record) []byte {
	return e.cid.Append(dst, r.OrigAddr(), r.RespAddr(), r.Proto, r.OrigP, r.RespP)
}

// Append appends r as one JSON object and a newline to dst, with what
// inspection learned when s is not nil.
func (e *Encoder) Append(dst []byte, r *Record, s *Inspection) []byte {
	start := len(dst)
	oa, ra := addrOf(r.OrigH, r.V6), addrOf(r.RespH, r.V6)
	ob, rb := r.OrigBytes(), r.RespBytes()

	dst = append(dst, `{"ts":"`...)
	dst = appendTimestamp(dst, r.First)
	dst = append(dst, `","end_ts":"`...)
	dst = appendTimestamp(dst, r.Last)
	dst = append(dst, `","duration":`...)
	dst = appendSeconds(dst, r.Last-r.First)
	dst = append(dst, `,"proto":"`...)
	dst = protoName(dst, r.Proto)
	dst = append(dst, `","orig_h":"`...)
	dst = oa.AppendTo(dst)
	dst = append(dst, `","orig_p":`...)
	dst = strconv.AppendUint(dst, uint64(r.OrigP), 10)
	dst = append(dst, `,"resp_h":"`...)
	dst = ra.AppendTo(dst)
	dst = append(dst, `","resp_p":`...)
	dst = strconv.AppendUint(dst, uint64(r.RespP), 10)
	dst = appendUintKey(dst, "orig_pkts", r.Orig.Pkts)
	dst = appendUintKey(dst, "resp_pkts", r.Resp.Pkts)
	dst = appendUintKey(dst, "orig_ip_bytes", r.Orig.IPBytes)
	dst = appendUintKey(dst, "resp_ip_bytes", r.Resp.IPBytes)
	dst = appendUintKey(dst, "orig_frame_bytes", r.FrameBytes(true))
	dst = appendUintKey(dst, "resp_frame_bytes", r.FrameBytes(false))
	dst = appendUintKey(dst, "orig_bytes", ob)
	dst = appendUintKey(dst, "resp_bytes", rb)
	dst = appendUintKey(dst, "missed_bytes", r.Orig.Missed+r.Resp.Missed)
	dst = append(dst, `,"history":"`...)
	dst = append(dst, r.History()...)
	dst = append(dst, `","state":"`...)
	dst = append(dst, r.ConnState()...)
	dst = append(dst, `","final":`...)
	dst = strconv.AppendBool(dst, r.Final())
	if r.Evicted() {
		dst = append(dst, `,"evicted":true`...)
	}
	dst = append(dst, `,"community_id":"`...)
	e.cidAt = len(dst) - start
	dst = e.cid.Append(dst, r.OrigAddr(), r.RespAddr(), r.Proto, r.OrigP, r.RespP)
	e.cidEnd = len(dst) - start
	dst = append(dst, '"')
	if r.VLAN != 0 {
		dst = appendUintKey(dst, "vlan", uint64(r.VLAN))
	}
	if r.InnerVLAN != 0 {
		dst = appendUintKey(dst, "inner_vlan", uint64(r.InnerVLAN))
	}
	if r.Tunnel != TunnelNone {
		dst = append(dst, `,"tunnel":"`...)
		dst = append(dst, r.Tunnel.String()...)
		dst = append(dst, '"')
	}
	dir := e.Direction(r)
	dst = append(dst, `,"direction":"`...)
	dst = append(dst, dir...)
	dst = append(dst, '"')
	// Seen from the home side; for internal and external flows, from the
	// originator, the side that chose to open the connection.
	out, in := ob, rb
	if dir == DirInbound {
		out, in = rb, ob
	}
	dst = appendUintKey(dst, "out_bytes", out)
	dst = appendUintKey(dst, "in_bytes", in)
	dst = append(dst, `,"out_in_ratio":`...)
	if in == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendFloat(dst, float64(out)/float64(in), 'g', 6, 64)
	}
	dst = append(dst, `,"upload_ratio":`...)
	if ob+rb == 0 {
		dst = append(dst, '0')
	} else {
		dst = strconv.AppendFloat(dst, (float64(ob)-float64(rb))/float64(ob+rb), 'g', 6, 64)
	}
	if s != nil {
		dst = appendInspection(dst, r, s)
	}
	return append(dst, "}\n"...)
}

func appendUintKey(dst []byte, key string, v uint64) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return strconv.AppendUint(dst, v, 10)
}
