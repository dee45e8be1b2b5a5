package spool

import (
	"fmt"
	"os"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// writer is the appending side's state, guarded by wmu.
type writer struct {
	f       *os.File // the segment appended to; nil until the first Append starts one
	id      uint64
	size    int64
	nextID  uint64 // the id of the next segment
	nextSeq uint64 // the sequence number of the next entry
	buf     []byte // frames on their way to the file, at most writeChunk
	// broken is set when a flush to disk failed: what the file holds is
	// then unknown, and only a new Open, reading it back, can say.
	broken error
}

const (
	// writeChunk bounds the buffer an Append writes through, whatever
	// the size of its batch; an entry of directBytes or more is written
	// from the caller's slice.
	writeChunk  = 256 << 10
	directBytes = 64 << 10
)

// Append adds entries to the spool, all or none, and returns once they
// are on disk (their segment synced, and the directory when the segment
// is new). It returns an error wrapping ErrFull when they would take the
// spool past MaxBytes, and one wrapping ErrTooLarge when they would not
// fit even in an empty spool. The spool keeps no reference to entries.
//
// Should the process die during Append, the entries may be lost or,
// some of them, kept: the caller never heard that they were spooled.
func (s *Spool) Append(entries ...[]byte) error {
	if len(entries) == 0 {
		return nil
	}
	var total int64
	for i, e := range entries {
		if len(e) > MaxEntryBytes || frameHeaderLen+int64(len(e)) > s.cfg.MaxBytes {
			return fmt.Errorf("spool %s: entry %d of %d bytes is larger than a spool entry may be (%d bytes): %w",
				s.dir, i, len(e), min(MaxEntryBytes, s.cfg.MaxBytes-frameHeaderLen), ErrTooLarge)
		}
		total += frameHeaderLen + int64(len(e))
	}
	if total > s.cfg.MaxBytes {
		return fmt.Errorf("spool %s: %d entries take %d bytes, more than the spool holds (%d): append fewer at a time: %w",
			s.dir, len(entries), total, s.cfg.MaxBytes, ErrTooLarge)
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	w := &s.w
	if w.broken != nil {
		return w.broken
	}
	s.mu.Lock()
	pending := s.bytes
	s.mu.Unlock()
	if pending+total > s.cfg.MaxBytes {
		return fmt.Errorf("spool %s: %d bytes wait to be delivered and %d more would pass its limit of %d: %w",
			s.dir, pending, total, s.cfg.MaxBytes, ErrFull)
	}

	f, id, start := w.f, w.id, w.size
	roll := f == nil || (start > segHeaderLen && start+total > s.cfg.SegmentBytes)
	w.buf = w.buf[:0]
	if roll {
		id = w.nextID
		w.nextID++
		path := s.segPath(id)
		var err error
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("spool segment %s: cannot create it: %w", path, fserr.Plain(err))
		}
		w.buf = appendSegHeader(w.buf, id)
		start = 0
	}
	end, err := w.writeFrames(f, start, entries)
	if err == nil && !s.cfg.NoSync {
		if err = f.Sync(); err == nil && roll {
			err = syncDir(s.dir)
		}
		if err != nil {
			w.broken = fmt.Errorf("spool segment %s: cannot flush it to disk, so what it holds is unknown until the spool is opened again: %w", s.segPath(id), fserr.Plain(err))
			s.undo(f, id, start, roll)
			return w.broken
		}
	}
	if err != nil {
		err = fmt.Errorf("spool segment %s: cannot write to it: %w", s.segPath(id), fserr.Plain(err))
		if uerr := s.undo(f, id, start, roll); uerr != nil {
			w.broken = uerr
		}
		return err
	}

	n := len(entries)
	last := w.nextSeq + uint64(n) - 1
	s.mu.Lock()
	if roll {
		s.segs = append(s.segs, segMeta{id: id, size: end, lastSeq: last, lastKnown: true})
	} else {
		m := &s.segs[len(s.segs)-1]
		m.size, m.lastSeq, m.lastKnown = end, last, true
	}
	s.pending += n
	s.bytes += total
	s.stats.Appended += uint64(n)
	s.mu.Unlock()

	if roll && w.f != nil {
		w.f.Close()
	}
	w.f, w.id, w.size = f, id, end
	w.nextSeq += uint64(n)
	if cap(w.buf) > writeChunk+directBytes {
		w.buf = nil
	}
	return nil
}

// writeFrames writes entries as frames at off, after whatever w.buf holds
// already (a new segment's header), and returns where they end.
func (w *writer) writeFrames(f *os.File, off int64, entries [][]byte) (int64, error) {
	flush := func() error {
		if len(w.buf) == 0 {
			return nil
		}
		_, err := f.WriteAt(w.buf, off)
		off += int64(len(w.buf))
		w.buf = w.buf[:0]
		return err
	}
	seq := w.nextSeq
	for _, e := range entries {
		w.buf = appendFrameHeader(w.buf, e, seq)
		seq++
		if len(e) >= directBytes {
			if err := flush(); err != nil {
				return 0, err
			}
			if _, err := f.WriteAt(e, off); err != nil {
				return 0, err
			}
			off += int64(len(e))
			continue
		}
		w.buf = append(w.buf, e...)
		if len(w.buf) >= writeChunk {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	err := flush()
	return off, err
}

// undo takes back a failed Append: a new segment is removed, an old one
// cut back to where it ended. An error here means the spool's files no
// longer match what it published, and it is returned for w.broken.
func (s *Spool) undo(f *os.File, id uint64, start int64, created bool) error {
	path := s.segPath(id)
	if created {
		f.Close()
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("spool segment %s: cannot remove it after a failed append, so the spool must be opened again: %w", path, fserr.Plain(err))
		}
		return nil
	}
	if err := f.Truncate(start); err != nil {
		return fmt.Errorf("spool segment %s: cannot cut it back to offset %d after a failed append, so the spool must be opened again: %w", path, start, fserr.Plain(err))
	}
	return nil
}
