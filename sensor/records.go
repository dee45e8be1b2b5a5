package sensor

import (
	"net/netip"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/record"
)

// recordStage is where every record goes once its source has made it,
// capture or export alike: the process at each end is joined, the
// analytics get their view of it, and each output's format encodes it for
// its sinks. One
// per goroutine; its buffers are reused, so steady state allocates only
// what the analytics batch needs when the detector has none free.
type recordStage struct {
	procs   joiner    // host events or /proc, when given
	det     *detector // the analytics, when enabled
	dets    []detect.Flow
	outs    []encoder
	tap     func(*record.Flow) // sees every record before it is encoded
	records uint64
}

// add takes one finished record (direction and Community ID set); f is
// only read during the call.
func (s *recordStage) add(f *record.Flow) {
	s.records++
	if s.procs != nil && (f.Proto == 6 || f.Proto == 17) {
		f.OrigProc, f.RespProc = s.procs.Join(process.Flow{
			Proto: f.Proto,
			Orig:  joinAddr(f.Orig), Resp: joinAddr(f.Resp), Start: unixTime(f.Start),
		})
	}
	if s.tap != nil {
		s.tap(f)
	}
	if s.det != nil {
		if s.dets == nil {
			s.dets = s.det.batch()
		}
		s.dets = append(s.dets, detect.FlowOf(f))
		if len(s.dets) == detectBatchLen {
			s.det.send(s.dets)
			s.dets = nil
		}
	}
	for i := range s.outs {
		s.outs[i].flow(f)
	}
}

// pending is how many bytes wait to be written.
func (s *recordStage) pending() int {
	n := 0
	for i := range s.outs {
		n = max(n, len(s.outs[i].b.Data))
	}
	return n
}

// flush writes what was encoded and hands the analytics their batch.
func (s *recordStage) flush() {
	if s.det != nil && len(s.dets) > 0 {
		s.det.send(s.dets)
		s.dets = nil
	}
	for i := range s.outs {
		s.outs[i].flush()
	}
}

// joinAddr is an endpoint as the process index keys it: IPv4 unmapped.
func joinAddr(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func unixTime(ns int64) time.Time { return time.Unix(0, ns) }
