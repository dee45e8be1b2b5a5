package detect

import (
	"net/netip"
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/entropy"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
)

// Flow is what the analytics see of one flow record: counts, what payload
// inspection learnt, and the process at each end. Router flows carry no
// payload (Observed false): their entropy and handshakes are unknown, not
// absent.
type Flow struct {
	Start, End  time.Time
	CommunityID CommunityID
	Proto       uint8
	Orig, Resp  netip.AddrPort
	// OrigBytes and RespBytes are application payload bytes from a capture,
	// IP bytes from router flows (which carry nothing finer).
	OrigBytes, RespBytes uint64
	OrigPkts, RespPkts   uint64
	// Final is false for an interim record of a flow that goes on; its
	// counts are the flow's so far.
	Final    bool
	Observed bool
	// App is the protocol inspection recognised: tls, quic, http, dns,
	// ssh or unknown.
	App        string
	Handshake  bool // a TLS or QUIC handshake, or an SSH banner, was seen
	ServerName string
	HTTPMethod string
	HTTPBody   int64 // the first request's body bytes, -1 when not HTTP
	// Entropy of the first application bytes, 0 originator, 1 responder.
	Class [2]entropy.Class
	Bits  [2]float64
	N     [2]int

	OrigProc, RespProc *process.Attribution
}

// out and in are the bytes the internal end sent and received.
func (f *Flow) sent(origInside bool) (out, in uint64) {
	if origInside {
		return f.OrigBytes, f.RespBytes
	}
	return f.RespBytes, f.OrigBytes
}

// ratio is out/in, with in counted at least 1 so a silent peer reads as
// a large ratio rather than a division by zero.
func ratio(out, in uint64) float64 {
	return float64(out) / float64(max(in, 1))
}

// CommunityID is a flow's Community ID, held by value: handing a flow to
// the analytics allocates nothing, and it keys the open flows' map as it
// is.
type CommunityID = record.CommunityID

// CIDOf makes a CommunityID of b.
func CIDOf(b []byte) CommunityID { return record.CIDOf(b) }

// FlowOf is the analytics' view of a record: payload bytes when the
// packets were seen, the IP bytes routers count otherwise; what inspection
// learnt when the flow was inspected, unknown when not.
func FlowOf(r *record.Flow) Flow {
	ob, rb := r.PayloadOrIPBytes()
	f := Flow{
		Start: time.Unix(0, r.Start).UTC(), End: time.Unix(0, r.End).UTC(), CommunityID: r.CommunityID, Proto: r.Proto,
		Orig: netip.AddrPortFrom(r.Orig.Addr().Unmap(), r.Orig.Port()), Resp: netip.AddrPortFrom(r.Resp.Addr().Unmap(), r.Resp.Port()),
		OrigBytes: ob, RespBytes: rb, OrigPkts: r.OrigPkts, RespPkts: r.RespPkts,
		Final: r.Final, App: "unknown", HTTPBody: -1, OrigProc: r.OrigProc, RespProc: r.RespProc,
	}
	s := r.Inspection
	if s == nil {
		return f
	}
	f.Observed = true
	f.App = s.App.String()
	f.ServerName = s.ServerName()
	if t := s.TLS; t != nil && (t.ClientHello || t.ServerHello) {
		f.Handshake = true
	}
	if q := s.QUIC; q != nil && q.Version != 0 {
		f.Handshake = true
	}
	if s.App == flows.AppSSH || s.App == flows.AppOpenVPN || s.App == flows.AppWireGuard {
		f.Handshake = true
	}
	if h := s.HTTP; h != nil {
		f.HTTPMethod = h.Method
		f.HTTPBody = r.HTTPBody
	}
	for i := 0; i < 2; i++ {
		f.Class[i], f.Bits[i], f.N[i] = s.Entropy[i].Class, s.Entropy[i].Bits, s.Entropy[i].N
	}
	return f
}
