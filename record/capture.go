package record

import (
	"net/netip"

	"github.com/outflow-sensor/outflow/flows"
)

// FromCapture fills f from a flow table's record and what inspection
// learnt (nil when the flow was not inspected); f keeps s by pointer, so s
// must outlive f. The direction and Community ID are the Classifier's.
func FromCapture(f *Flow, r *flows.Record, s *flows.Inspection) {
	*f = Flow{
		Start: r.First, End: r.Last, Proto: r.Proto,
		Orig:     netip.AddrPortFrom(addrOf(&r.OrigH, r.V6), r.OrigP),
		Resp:     netip.AddrPortFrom(addrOf(&r.RespH, r.V6), r.RespP),
		OrigPkts: r.Orig.Pkts, RespPkts: r.Resp.Pkts, OrigIPBytes: r.Orig.IPBytes, RespIPBytes: r.Resp.IPBytes,
		Observed:       true,
		OrigFrameBytes: r.FrameBytes(true), RespFrameBytes: r.FrameBytes(false),
		OrigBytes: r.OrigBytes(), RespBytes: r.RespBytes(), MissedBytes: r.Orig.Missed + r.Resp.Missed,
		State: r.ConnState(), VLAN: r.VLAN, InnerVLAN: r.InnerVLAN, Tunnel: r.Tunnel,
		Inspection: s, HTTPBody: -1, Final: r.Final(), Evicted: r.Evicted(),
	}
	f.History.Set(r.History())
	if s != nil {
		f.HTTPBody = s.RequestBodyBytes(r)
	}
}

func addrOf(b *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}
