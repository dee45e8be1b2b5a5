package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// Open's recovery: reading back what a crash, or a clean Close, left.

// load reads the cursor and every segment from it on, and sets both sides
// up to go on from there.
func (s *Spool) load() error {
	if err := removeTemp(s.dir); err != nil {
		return err
	}
	ids, err := listDir(s.dir)
	if err != nil {
		return err
	}
	cur, haveCursor, err := s.readCursor()
	if err != nil {
		return err
	}
	// The head is the cursor's place; with no cursor, the oldest segment.
	// A cursor naming a segment that is gone means that segment was
	// wholly acknowledged and deleted: reading goes on with the next one.
	s.r.head = position{seg: 0, off: segHeaderLen}
	s.w.nextID = 1
	if haveCursor {
		s.r.head = cur.pos
		s.r.headSeq, s.r.headSeqKnown = cur.acked, cur.acked > 0
		s.w.nextID = cur.pos.seg + 1
		s.w.nextSeq = cur.acked // until a segment shows a higher one
	}
	var keep []uint64
	for _, id := range ids {
		s.w.nextID = max(s.w.nextID, id+1)
		if id < s.r.head.seg {
			// Acknowledged: the cursor moved past it before a crash let
			// its deletion happen. Should removing fail, the next Open
			// tries again.
			os.Remove(s.segPath(id))
			continue
		}
		keep = append(keep, id)
	}
	prev, prevKnown := s.r.headSeq, s.r.headSeqKnown
	for i, id := range keep {
		from := int64(segHeaderLen)
		if id == s.r.head.seg {
			from = max(s.r.head.off, segHeaderLen)
		}
		if err := s.loadSegment(id, from, i == len(keep)-1, &prev, &prevKnown); err != nil {
			return err
		}
	}
	s.w.nextSeq++ // past the highest in use
	s.stats.Segments = len(s.segs)
	return nil
}

// segScan is what scanSegment found in a segment from an offset on.
type segScan struct {
	entries int      // good frames
	goodEnd int64    // where the last good frame ends
	regions []region // damaged places, in order
	// trailing is how many of regions come after the last good frame:
	// in the last segment, a torn tail.
	trailing int
	// lastSeq is the last good frame's sequence number, if there is one.
	lastSeq   uint64
	lastKnown bool
}

// scanSegment walks the frames of w's segment from offset from, checking
// every checksum, and records the damaged places it steps over.
func scanSegment(w *window, from int64, prev *uint64, prevKnown *bool) (segScan, error) {
	sc := segScan{goodEnd: from}
	for pos := from; pos < w.limit; {
		fh, _, st, err := w.frame(pos, false)
		if err != nil {
			return sc, err
		}
		if st == frameGood {
			sc.entries++
			pos += frameHeaderLen + int64(fh.n)
			sc.goodEnd, sc.trailing = pos, 0
			*prev, *prevKnown = fh.seq, true
			sc.lastSeq, sc.lastKnown = fh.seq, true
			continue
		}
		r, err := w.damaged(pos, st, fh, *prev, *prevKnown, 0, false)
		if err != nil {
			return sc, err
		}
		if len(sc.regions) == maxRegions-1 {
			r.end, r.reason = w.limit, "damaged in too many places; given up from here"
		}
		sc.regions = append(sc.regions, r)
		sc.trailing++
		pos = r.end
	}
	return sc, nil
}

// loadSegment checks one segment from offset from, cutting off a torn
// tail when it is the last, and adds what it holds to the spool.
func (s *Spool) loadSegment(id uint64, from int64, last bool, prev *uint64, prevKnown *bool) error {
	path := s.segPath(id)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool segment %s: cannot open it: %w", path, fserr.Plain(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("spool segment %s: %w", path, fserr.Plain(err))
	}
	size := fi.Size()
	if size < segHeaderLen {
		// Too short to hold an entry: a crash came between creating
		// the last segment and writing its header, or worse.
		f.Close()
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("spool segment %s: cannot remove it, though it is too short to hold an entry: %w", path, fserr.Plain(err))
		}
		if size > 0 {
			s.report(Damage{File: path, Bytes: size, Torn: last, Reason: "the segment is shorter than its header"})
		}
		return nil
	}
	w := &s.r.win
	w.open(path, id, f)
	w.limit = size
	defer w.close()
	h, err := w.bytes(0, segHeaderLen)
	if err != nil {
		return err
	}
	hst := parseSegHeader(h, id)
	if hst == segHeaderNewer {
		return fmt.Errorf("spool segment %s was written by a newer version of Outflow: run that version until the spool is empty, or give this one another directory", path)
	}
	from = min(from, size)
	sc, err := scanSegment(w, from, prev, prevKnown)
	if err != nil {
		return err
	}
	s.w.nextSeq = max(s.w.nextSeq, sc.lastSeq)
	meta := segMeta{id: id, size: size, lastSeq: sc.lastSeq, lastKnown: sc.lastKnown}
	if last && sc.trailing > 0 {
		// Nothing good after the damage at the end of the last segment:
		// an append's unfinished end, never acknowledged as appended.
		sc.regions = sc.regions[:len(sc.regions)-sc.trailing]
	}
	if last && hst != segHeaderOK && sc.entries == 0 && len(sc.regions) == 0 && from == segHeaderLen {
		// Nothing in it was ever whole: a crash came while it was being
		// created.
		return s.cutTail(f, path, 0, size)
	}
	if last && sc.trailing > 0 {
		if err := s.cutTail(f, path, sc.goodEnd, size); err != nil {
			return err
		}
		meta.size = sc.goodEnd
	}
	if hst != segHeaderOK {
		s.report(Damage{File: path, Bytes: segHeaderLen, Reason: "the segment header is damaged"})
	}
	for _, r := range sc.regions {
		s.report(Damage{File: path, Offset: r.start, Bytes: r.end - r.start, Entries: r.lost, Reason: r.reason})
	}
	if len(sc.regions) > 0 {
		s.r.regions = append(s.r.regions, segRegions{id: id, regions: sc.regions})
	}
	s.segs = append(s.segs, meta)
	s.pending += sc.entries
	s.bytes += meta.size - from
	if id == s.r.head.seg {
		s.r.head.off = from
	}
	if last && hst == segHeaderOK {
		// The writer goes on appending to it, through its own handle:
		// the window's is closed on return.
		wf, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("spool segment %s: cannot open it for appending: %w", path, fserr.Plain(err))
		}
		s.w.f, s.w.id, s.w.size = wf, id, meta.size
	}
	return nil
}

// cutTail truncates the last segment to end, removing it when end is 0,
// and records the torn tail.
func (s *Spool) cutTail(f *os.File, path string, end, size int64) error {
	s.report(Damage{File: path, Offset: end, Bytes: size - end, Torn: true})
	if end == 0 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("spool segment %s: cannot remove it, though nothing in it is whole: %w", path, fserr.Plain(err))
		}
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("spool segment %s: cannot cut off its torn tail at offset %d: %w", path, end, fserr.Plain(err))
	}
	if !s.cfg.NoSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("spool segment %s: cannot flush it to disk after cutting off its torn tail: %w", path, fserr.Plain(err))
		}
	}
	return nil
}

// readCursor reads the cursor file. A missing one means nothing was ever
// acknowledged; a damaged one is reported and read as missing, so entries
// are delivered again rather than lost.
func (s *Spool) readCursor() (cursor, bool, error) {
	path := filepath.Join(s.dir, cursorName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return cursor{}, false, nil
	}
	if err != nil {
		return cursor{}, false, fmt.Errorf("spool %s: cannot open its cursor: %w", s.dir, fserr.Plain(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, cursorLen+1))
	if err != nil {
		return cursor{}, false, fmt.Errorf("spool %s: cannot read its cursor: %w", s.dir, fserr.Plain(err))
	}
	c, st := parseCursor(b)
	switch st {
	case cursorNewer:
		return cursor{}, false, fmt.Errorf("spool cursor %s was written by a newer version of Outflow: run that version until the spool is empty, or give this one another directory", path)
	case cursorBad:
		s.report(Damage{File: path, Bytes: int64(len(b)), Reason: "the cursor is damaged, so every entry left is delivered again"})
		return cursor{}, false, nil
	}
	return c, true, nil
}
