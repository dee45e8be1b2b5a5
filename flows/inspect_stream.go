package flows

// maxHeld is how many out-of-order segments a direction holds at once.
// Their bytes are bounded too: together at most StreamBytes, and none past
// StreamBytes beyond the in-order point.
const maxHeld = 8

type heldSeg struct{ off, start, n uint32 }

// segment places a TCP segment at stream offset off: in-order bytes are
// consumed at once, without a copy; segments past a hole wait in a bounded
// buffer until it fills.
func (in *inspector) segment(r *Record, s *Inspection, d int, off uint32, data []byte) {
	ds := &s.work.dir[d]
	if ds.phase == phDone {
		return
	}
	if !ds.started {
		ds.started = true
		ds.next = off
	}
	rel := int32(off - ds.next)
	if rel < 0 {
		if int(-rel) >= len(data) {
			return // a retransmission of what was consumed
		}
		data = data[-rel:]
		rel = 0
	}
	if rel > 0 {
		in.hold(s, d, off, data)
		return
	}
	in.consume(r, s, d, data)
	ds.next += uint32(len(data))
	for ds.nHeld > 0 && ds.phase != phDone {
		if !in.drainHeld(r, s, d) {
			break
		}
	}
}

func (in *inspector) hold(s *Inspection, d int, off uint32, data []byte) {
	ds, w := &s.work.dir[d], s.work
	ahead := off - ds.next
	if ds.nHeld == maxHeld || int(ahead)+len(data) > in.cfg.StreamBytes ||
		int(ds.heldLen)+len(data) > in.cfg.StreamBytes {
		// The hole is too wide to wait for: inspection of this side ends
		// here, as a content gap ends Zeek's analyzers.
		in.Stats.Gaps++
		in.stop(s, d)
		return
	}
	b, ok := in.room(w.hold[d], len(w.hold[d])+len(data))
	if !ok {
		in.abandon(s, d, AbandonBudget)
		return
	}
	start := uint32(len(b))
	w.hold[d] = append(b, data...)
	ds.held[ds.nHeld] = heldSeg{off: off, start: start, n: uint32(len(data))}
	ds.nHeld++
	ds.heldLen += uint32(len(data))
}

// drainHeld consumes one held segment that now touches the in-order edge,
// and reports whether one did.
func (in *inspector) drainHeld(r *Record, s *Inspection, d int) bool {
	ds, w := &s.work.dir[d], s.work
	for i := 0; i < int(ds.nHeld); i++ {
		h := ds.held[i]
		rel := int32(h.off - ds.next)
		if rel > 0 {
			continue
		}
		ds.held[i] = ds.held[ds.nHeld-1]
		ds.nHeld--
		if int(-rel) < int(h.n) {
			data := w.hold[d][h.start+uint32(-rel) : h.start+h.n]
			in.consume(r, s, d, data)
			ds.next += uint32(len(data))
		}
		if ds.nHeld == 0 {
			w.hold[d] = w.hold[d][:0]
			ds.heldLen = 0
		}
		return true
	}
	return false
}

func (in *inspector) stop(s *Inspection, d int) {
	if s.work == nil {
		return
	}
	ds := &s.work.dir[d]
	in.sample(s, d)
	ds.phase = phDone
	ds.nHeld, ds.heldLen = 0, 0
	s.work.hold[d] = s.work.hold[d][:0]
}
