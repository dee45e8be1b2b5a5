package spool

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// reader is the reading side's state, guarded by rmu.
type reader struct {
	// head is where the oldest unacknowledged entry starts, as the cursor
	// file says; headSeq the sequence number of the last one acknowledged.
	head         position
	headSeq      uint64
	headSeqKnown bool
	win          window
	// regions are the damaged places known from the head on, so that
	// each is counted and reported once however often it is read past.
	regions []segRegions
	// peeked are where the entries the last Peek returned end, for Ack.
	peeked []mark
}

type segRegions struct {
	id      uint64
	regions []region
}

// mark is where an entry ends, and its sequence number.
type mark struct {
	pos position
	seq uint64
}

// walkState is a place to walk from: a position and the sequence number
// of the last good entry before it.
type walkState struct {
	pos       position
	prev      uint64
	prevKnown bool
}

// Peek returns copies of the oldest unacknowledged entries, in order: at
// most maxEntries of them, and no more than maxBytes of payload, except
// that the first is returned whatever its size. It returns none only when
// there are none. It does not move the cursor: Ack does.
//
// Damaged entries are stepped over and reported (see TakeDamage); an
// error is a failure to read a segment.
func (s *Spool) Peek(maxEntries int, maxBytes int) ([][]byte, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	s.r.peeked = s.r.peeked[:0]
	from := walkState{pos: s.r.head, prev: s.r.headSeq, prevKnown: s.r.headSeqKnown}
	marks, out, err := s.walk(from, 0, max(maxEntries, 1), true, maxBytes, s.r.peeked)
	if err != nil {
		return nil, err
	}
	s.r.peeked = marks
	return out, nil
}

// Ack acknowledges the n oldest entries: they are done with and will not
// be returned again, even after a crash, once Ack returns. The cursor file
// is replaced atomically and synced; segments wholly acknowledged are
// deleted. Acknowledging more entries than wait is an error and changes
// nothing.
func (s *Spool) Ack(n int) error {
	if n < 0 {
		return fmt.Errorf("spool %s: cannot acknowledge %d entries", s.dir, n)
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if n == 0 {
		return nil
	}
	var end mark
	if k := len(s.r.peeked); n <= k {
		end = s.r.peeked[n-1]
	} else {
		from := walkState{pos: s.r.head, prev: s.r.headSeq, prevKnown: s.r.headSeqKnown}
		if k > 0 {
			from = walkState{pos: s.r.peeked[k-1].pos, prev: s.r.peeked[k-1].seq, prevKnown: true}
		}
		marks, _, err := s.walk(from, k, n-k, false, 0, nil)
		if err != nil {
			return err
		}
		if len(marks) < n-k {
			return fmt.Errorf("spool %s: cannot acknowledge %d entries: only %d are waiting", s.dir, n, k+len(marks))
		}
		end = marks[len(marks)-1]
	}

	s.mu.Lock()
	pos := s.normalize(end.pos)
	s.mu.Unlock()
	if err := s.writeCursor(cursor{pos: pos, acked: end.seq}); err != nil {
		return err
	}

	s.mu.Lock()
	s.bytes -= s.distance(s.r.head, pos)
	s.pending = max(0, s.pending-n)
	s.stats.Acked += uint64(n)
	k := 0
	for k < len(s.segs) && s.segs[k].id < pos.seg {
		k++
	}
	var drop []uint64
	for _, m := range s.segs[:k] {
		drop = append(drop, m.id)
	}
	s.segs = s.segs[:copy(s.segs, s.segs[k:])]
	s.mu.Unlock()

	s.r.head, s.r.headSeq, s.r.headSeqKnown = pos, end.seq, true
	if n <= len(s.r.peeked) {
		s.r.peeked = s.r.peeked[:copy(s.r.peeked, s.r.peeked[n:])]
	} else {
		s.r.peeked = s.r.peeked[:0]
	}
	s.r.forget(pos)
	for _, id := range drop {
		if s.r.win.f != nil && s.r.win.id == id {
			s.r.win.close()
		}
		// Should this fail, the next Open removes it: it is before
		// the cursor.
		os.Remove(s.segPath(id))
	}
	return nil
}

// walk goes from st, which base entries follow the head, over up to n
// good entries, stepping over damaged places, and appends where each ends
// to marks. With keep it also copies them, stopping before an entry that
// would take the payloads past maxBytes unless it would be the first. It
// stops at the end of what Append has published.
func (s *Spool) walk(st walkState, base, n int, keep bool, maxBytes int, marks []mark) ([]mark, [][]byte, error) {
	var out [][]byte
	size := 0
	for len(marks) < n {
		s.mu.Lock()
		meta, more := s.next(&st.pos)
		if !more {
			// The end of what is published, seen under the same lock
			// as Append publishes with: the count is exact here, and
			// made so should damage found since Open have put it out.
			s.pending = base + len(marks)
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		if r, ok := s.r.regionAt(st.pos); ok {
			st.pos.off = r.end
			continue
		}
		w, err := s.window(meta)
		if err != nil {
			return marks, nil, err
		}
		if keep && len(out) > 0 {
			// Stop before copying an entry past the budget.
			length, err := w.length(st.pos.off)
			if err != nil {
				return marks, nil, err
			}
			if size+length > maxBytes {
				break
			}
		}
		fh, payload, fst, err := w.frame(st.pos.off, keep)
		if err != nil {
			return marks, nil, err
		}
		if fst == frameGood {
			st.pos.off += frameHeaderLen + int64(fh.n)
			st.prev, st.prevKnown = fh.seq, true
			marks = append(marks, mark{pos: st.pos, seq: fh.seq})
			if keep {
				out = append(out, payload)
				size += fh.n
			}
			continue
		}
		// Damage that appeared since Open, or in what was appended
		// since: bit rot, or a hand on the file.
		r, err := w.damaged(st.pos.off, fst, fh, st.prev, st.prevKnown, meta.lastSeq, meta.lastKnown)
		if err != nil {
			return marks, nil, err
		}
		if s.r.regionCount(meta.id) >= maxRegions-1 {
			r.end, r.reason = meta.size, "damaged in too many places; given up from here"
		}
		s.r.addRegion(meta.id, r)
		s.mu.Lock()
		s.report(Damage{File: w.path, Offset: r.start, Bytes: r.end - r.start, Entries: r.lost, Reason: r.reason})
		s.pending = max(0, s.pending-r.lost)
		s.mu.Unlock()
		st.pos.off = r.end
	}
	return marks, out, nil
}

// window returns the reader's window on segment m, opening the file when
// the window is on another one.
func (s *Spool) window(m segMeta) (*window, error) {
	w := &s.r.win
	if w.f == nil || w.id != m.id {
		path := s.segPath(m.id)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("spool segment %s: cannot open it: %w", path, fserr.Plain(err))
		}
		w.open(path, m.id, f)
	}
	w.limit = m.size
	return w, nil
}

// next moves p to where the next frame may start, at or after it: to the
// start of the following segment when p is at the end of one. It returns
// the segment p is then in, or false at the end of what is published.
// The caller holds mu.
func (s *Spool) next(p *position) (segMeta, bool) {
	for i, m := range s.segs {
		if m.id < p.seg {
			continue
		}
		if m.id > p.seg {
			*p = position{seg: m.id, off: segHeaderLen}
		}
		if p.off < m.size {
			return m, true
		}
		if i+1 == len(s.segs) {
			return m, false
		}
		*p = position{seg: s.segs[i+1].id, off: segHeaderLen}
	}
	return segMeta{}, false
}

// normalize moves a position at the end of a segment with a later one to
// the start of that one, so that the segment can go. The caller holds mu.
func (s *Spool) normalize(p position) position {
	for i, m := range s.segs {
		if m.id == p.seg && p.off >= m.size && i+1 < len(s.segs) {
			return position{seg: s.segs[i+1].id, off: segHeaderLen}
		}
	}
	return p
}

// distance is the bytes on disk from a to b, b not before a. The caller
// holds mu.
func (s *Spool) distance(a, b position) int64 {
	var d int64
	for _, m := range s.segs {
		if m.id < a.seg {
			continue
		}
		start := int64(segHeaderLen)
		if m.id == a.seg {
			start = a.off
		}
		if m.id >= b.seg {
			if m.id == b.seg {
				d += b.off - start
			}
			break
		}
		d += m.size - start
	}
	return d
}

func (r *reader) regionAt(p position) (region, bool) {
	for _, sr := range r.regions {
		if sr.id == p.seg {
			for _, rg := range sr.regions {
				if rg.start == p.off {
					return rg, true
				}
			}
		}
	}
	return region{}, false
}

func (r *reader) regionCount(id uint64) int {
	for _, sr := range r.regions {
		if sr.id == id {
			return len(sr.regions)
		}
	}
	return 0
}

func (r *reader) addRegion(id uint64, rg region) {
	for i := range r.regions {
		if r.regions[i].id == id {
			r.regions[i].regions = append(r.regions[i].regions, rg)
			return
		}
	}
	r.regions = append(r.regions, segRegions{id: id, regions: []region{rg}})
}

// forget drops the regions before p, which no reader will pass again.
func (r *reader) forget(p position) {
	kept := r.regions[:0]
	for _, sr := range r.regions {
		if sr.id < p.seg {
			continue
		}
		if sr.id == p.seg {
			rs := sr.regions[:0]
			for _, rg := range sr.regions {
				if rg.end > p.off {
					rs = append(rs, rg)
				}
			}
			if len(rs) == 0 {
				continue
			}
			sr.regions = rs
		}
		kept = append(kept, sr)
	}
	r.regions = kept
}

// writeCursor makes c the cursor: written beside it, synced, renamed over
// it, and the directory synced, so that a crash leaves the old cursor or
// the new one, never a mix.
func (s *Spool) writeCursor(c cursor) error {
	tmp := filepath.Join(s.dir, cursorTemp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool %s: cannot save its cursor: %w", s.dir, fserr.Plain(err))
	}
	_, err = f.Write(encodeCursor(c))
	if err == nil && !s.cfg.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, cursorName))
	}
	if err == nil && !s.cfg.NoSync {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("spool %s: cannot save its cursor: %w", s.dir, fserr.Plain(err))
	}
	return nil
}
