package collect

import (
	"net/netip"
	"strconv"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/flows/communityid"
)

// Encoder writes stitched flows with the flow record's keys. What only
// payload shows (payload bytes, TCP history, state) is null: routers export
// layer-3 counters, so out_bytes, in_bytes and the ratios are computed from
// those, and observed_payload says so to later stages.
type Encoder struct {
	HomeNets []netip.Prefix
	cid      *communityid.Hasher
	// cid locates the Community ID in the line Append last wrote.
	cidAt, cidEnd int
}

// CommunityID returns the Community ID within line, the record Append
// last wrote.
func (e *Encoder) CommunityID(line []byte) []byte {
	if e.cidEnd > len(line) || e.cidAt > e.cidEnd {
		return nil
	}
	return line[e.cidAt:e.cidEnd]
}

// NewEncoder returns an Encoder for the home networks (nil: RFC 1918 and
// ULA) hashing Community IDs with seed.
func NewEncoder(home []netip.Prefix, seed uint16) *Encoder {
	if home == nil {
		home = flows.DefaultHomeNets
	}
	return &Encoder{HomeNets: home, cid: communityid.New(seed)}
}

func (e *Encoder) home(a netip.Addr) bool {
	for _, p := range e.HomeNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
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

func appendKey(dst []byte, k string, v uint64) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, k...)
	dst = append(dst, `":`...)
	return strconv.AppendUint(dst, v, 10)
}

// Append appends f as one JSON line.
func (e *Encoder) Append(dst []byte, f *Flow) []byte {
	start := len(dst)
	dst = append(dst, `{"ts":"`...)
	dst = f.Start.UTC().AppendFormat(dst, tsLayout)
	dst = append(dst, `","end_ts":"`...)
	dst = f.End.UTC().AppendFormat(dst, tsLayout)
	dst = append(dst, `","duration":`...)
	dst = strconv.AppendFloat(dst, f.End.Sub(f.Start).Seconds(), 'f', 3, 64)
	dst = append(dst, `,"proto":"`...)
	dst = protoName(dst, f.Proto)
	sport, dport := f.OrigP, f.RespP
	typ, code := uint16(0), uint16(0)
	icmp := f.Proto == 1 || f.Proto == 58
	if icmp {
		// Exporters put ICMP type and code in the destination port; the
		// record gives the ports Zeek gives (type, and the counterpart
		// type or the code), as replay does.
		typ, code = f.RespP>>8, f.RespP&0xff
		sport, dport, _ = flows.ICMPPorts(f.Proto, uint8(typ), uint8(code))
	}
	dst = append(dst, `","orig_h":"`...)
	dst = f.Orig.AppendTo(dst)
	dst = append(dst, '"')
	dst = appendKey(dst, "orig_p", uint64(sport))
	dst = append(dst, `,"resp_h":"`...)
	dst = f.Resp.AppendTo(dst)
	dst = append(dst, '"')
	dst = appendKey(dst, "resp_p", uint64(dport))
	dst = appendKey(dst, "orig_pkts", f.OrigPkts)
	dst = appendKey(dst, "resp_pkts", f.RespPkts)
	dst = appendKey(dst, "orig_ip_bytes", f.OrigBytes)
	dst = appendKey(dst, "resp_ip_bytes", f.RespBytes)
	dst = append(dst, `,"orig_bytes":null,"resp_bytes":null,"missed_bytes":null,"history":null,"state":null,"final":true`...)
	dst = append(dst, `,"community_id":"`...)
	if icmp {
		sport, dport = typ, code
	}
	e.cidAt = len(dst) - start
	dst = e.cid.Append(dst, f.Orig.AsSlice(), f.Resp.AsSlice(), f.Proto, sport, dport)
	e.cidEnd = len(dst) - start
	dst = append(dst, '"')
	dir := flows.DirExternal
	oh, rh := e.home(f.Orig), e.home(f.Resp)
	switch {
	case oh && rh:
		dir = flows.DirInternal
	case oh:
		dir = flows.DirOutbound
	case rh:
		dir = flows.DirInbound
	}
	dst = append(dst, `,"direction":"`...)
	dst = append(dst, dir...)
	dst = append(dst, '"')
	out, in := f.OrigBytes, f.RespBytes
	if dir == flows.DirInbound {
		out, in = in, out
	}
	dst = appendKey(dst, "out_bytes", out)
	dst = appendKey(dst, "in_bytes", in)
	dst = append(dst, `,"out_in_ratio":`...)
	if in == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendFloat(dst, float64(out)/float64(in), 'g', 6, 64)
	}
	dst = append(dst, `,"upload_ratio":`...)
	if f.OrigBytes+f.RespBytes == 0 {
		dst = append(dst, '0')
	} else {
		dst = strconv.AppendFloat(dst, (float64(f.OrigBytes)-float64(f.RespBytes))/float64(f.OrigBytes+f.RespBytes), 'g', 6, 64)
	}
	dst = append(dst, `,"observed_payload":false,"exporter":"`...)
	dst = f.Exporter.AppendTo(dst)
	dst = append(dst, `","export_version":`...)
	dst = strconv.AppendUint(dst, uint64(f.Version), 10)
	dst = append(dst, `,"stitch":"`...)
	dst = append(dst, f.Stitch...)
	dst = append(dst, '"')
	if f.SamplingRate > 1 {
		dst = appendKey(dst, "sampling_rate", uint64(f.SamplingRate))
	}
	return append(dst, "}\n"...)
}
