package flows

import "github.com/outflow-sensor/outflow/tls/quic"

// AbandonReason says why the inspection of a handshake was given up.
type AbandonReason uint8

// Abandon reasons.
const (
	// AbandonBudget: holding the handshake's bytes would have taken the
	// inspector past InspectConfig.MaxHeldBytes.
	AbandonBudget AbandonReason = iota + 1
	// NumAbandonReasons sizes arrays indexed by AbandonReason.
	NumAbandonReasons
)

var abandonNames = [NumAbandonReasons]string{"", "budget"}

func (r AbandonReason) String() string {
	if r > 0 && r < NumAbandonReasons {
		return abandonNames[r]
	}
	return "unknown"
}

// firstHeld is the first size of a gathering or out-of-order buffer: a
// ClientHello or an HTTP header block is rarely larger, so most flows never
// grow one, and a flow that sends only a few bytes of one does not hold
// StreamBytes.
const firstHeld = 4 << 10

// quicHeld is what a QUIC assembler holds once keyed: the CRYPTO stream
// (quic.MaxCrypto), its 2 KiB decryption scratch, and about 1 KiB of AES
// and GCM state.
const quicHeld = quic.MaxCrypto + 3<<10

// held is what w's buffers hold, in bytes of capacity.
func (w *inspectWork) held() int64 {
	return int64(cap(w.acc[0]) + cap(w.acc[1]) + cap(w.hold[0]) + cap(w.hold[1]) + w.quicRes)
}

// reserve charges n more held bytes against the budget, first dropping
// the buffers of pooled works if that makes room. It reports false, and
// charges nothing, when n does not fit.
func (in *inspector) reserve(n int) bool {
	for in.Stats.HeldBytes+int64(n) > in.cfg.MaxHeldBytes {
		if len(in.worksBuf) == 0 {
			return false
		}
		w := in.worksBuf[len(in.worksBuf)-1]
		in.worksBuf = in.worksBuf[:len(in.worksBuf)-1]
		in.drop(w)
		in.works = append(in.works, w)
	}
	in.Stats.HeldBytes += int64(n)
	in.Stats.HeldPeak = max(in.Stats.HeldPeak, in.Stats.HeldBytes)
	return true
}

// drop releases every buffer of w to the garbage collector.
func (in *inspector) drop(w *inspectWork) {
	in.Stats.HeldBytes -= w.held()
	w.acc, w.hold = [2][]byte{}, [2][]byte{}
	if w.quicRes > 0 {
		w.quic = quic.Assembler{}
		w.quicRes = 0
	}
}

// room returns buf with capacity for need bytes in all, growing it within
// the budget: by doubling from firstHeld, never past StreamBytes unless
// need is. ok is false, and buf unchanged, when the growth does not fit.
func (in *inspector) room(buf []byte, need int) ([]byte, bool) {
	if need <= cap(buf) {
		return buf, true
	}
	n := max(need, firstHeld, 2*cap(buf))
	n = max(min(n, in.cfg.StreamBytes), need)
	if !in.reserve(n - cap(buf)) {
		return buf, false
	}
	nb := make([]byte, len(buf), n)
	copy(nb, buf)
	return nb, true
}

// gather appends data to direction d's gathering buffer within the budget.
// When it does not fit, the flow's inspection is abandoned and false
// returned.
func (in *inspector) gather(s *Inspection, d int, data []byte) bool {
	w := s.work
	b, ok := in.room(w.acc[d], len(w.acc[d])+len(data))
	if !ok {
		in.abandon(s, d, AbandonBudget)
		return false
	}
	w.acc[d] = append(b, data...)
	return true
}

// abandon gives up inspecting the flow's handshake: both directions are
// done, so the flow's work, its buffers released to the garbage collector
// rather than pooled (the budget is short), goes back to the pool as soon
// as the packet at hand is through. The flow keeps what was learnt so far:
// a hello not yet read is absent from its record (no tls object, or
// client_hello false), as for a flow whose hello never came.
func (in *inspector) abandon(s *Inspection, _ int, why AbandonReason) {
	in.Stats.Abandoned[why]++
	in.stop(s, 0)
	in.stop(s, 1)
	in.drop(s.work)
	s.work.quicOff = true
}
