package flows

import (
	"github.com/outflow-sensor/outflow/tls"
	"github.com/outflow-sensor/outflow/tls/quic"
)

// quicLongHeader recognises a QUIC v1, v2 or draft long-header packet.
func quicLongHeader(b []byte) bool {
	if len(b) < 7 || b[0]&0xc0 != 0xc0 {
		return false
	}
	v := be32(b[1:5])
	return v == 1 || v == 0x6b3343cf || v>>8 == 0xff0000
}

// quicInitial feeds a client datagram to the flow's QUIC assembler and
// records the ClientHello once it is whole.
func (in *inspector) quicInitial(s *Inspection, b []byte) {
	w, q := s.work, s.quic()
	if w.quicOff || w.quic.Done() {
		return
	}
	if v, ok := quic.IsLongHeaderInitial(b); ok && q.Version == 0 {
		q.Version = v
	}
	// The assembler's buffers are charged before its first Initial, and
	// again should a datagram larger than its scratch come.
	need := quicHeld
	if len(b) > 2<<10 {
		need += 2 * len(b)
	}
	if need > w.quicRes {
		if !in.reserve(need - w.quicRes) {
			in.abandon(s, 0, AbandonBudget)
			return
		}
		w.quicRes = need
	}
	done, err := w.quic.Feed(b)
	if err != nil {
		in.Stats.QUICErrors[err.(*quic.Error).Reason]++
		w.quicOff = true
		return
	}
	if !done {
		return
	}
	if err := tls.ParseClientHello(w.quic.Hello(), &in.hello); err != nil {
		in.countTLSError(err)
		return
	}
	in.Stats.QUICHellos++
	q.Version = w.quic.Version()
	q.SNI = string(in.hello.SNI)
	for _, p := range in.hello.ALPN {
		q.ALPN = append(q.ALPN, string(p))
	}
	q.JA4 = in.fp.JA4(&in.hello, tls.QUIC)
}
