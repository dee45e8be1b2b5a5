package spool

import "fmt"

// Damage is one damaged place the spool found and stepped over: the torn
// end of an append a crash interrupted, cut off at Open; bytes whose
// checksums fail, skipped; or a cursor that could not be read.
type Damage struct {
	// File is the segment's (or the cursor's) path.
	File string
	// Offset and Bytes say where the damaged bytes are in File.
	Offset int64
	Bytes  int64
	// Entries is how many entries were lost there, counted from the
	// sequence numbers around the damage when they are known, else 1. A
	// torn tail loses none that an Append returned for.
	Entries int
	// Torn is set for a torn tail, which was cut off.
	Torn bool
	// Reason says what was wrong, in words.
	Reason string
}

// String is the damage as one sentence, for a log line.
func (d Damage) String() string {
	if d.Torn {
		return fmt.Sprintf("spool segment %s: cut off %d bytes at offset %d, the unfinished end of an append a crash interrupted", d.File, d.Bytes, d.Offset)
	}
	return fmt.Sprintf("spool %s: skipped %d damaged bytes at offset %d (%s); %d entries lost", d.File, d.Bytes, d.Offset, d.Reason, d.Entries)
}

// maxDamage bounds the reports kept for TakeDamage; past it reports are
// dropped, but Stats still counts the damage.
const maxDamage = 64

// region is a damaged range of a segment, [start, end), that readers step
// over. Open and reads record the ones they find so that each is counted
// and reported once, however often it is read past.
type region struct {
	start, end int64
	lost       int
	reason     string
}

// maxRegions bounds the regions remembered per segment: a segment damaged
// in more places than this is given up from the last one to its end.
const maxRegions = 16

// damaged works out the extent of the damaged place at off, whose frame
// w.frame said was st with header fh. prev is the sequence number of the
// last good entry before it, when known; lastSeq that of the segment's
// last entry, when known, for damage that runs to the segment's end.
func (w *window) damaged(off int64, st frameStatus, fh frameHeader, prev uint64, prevKnown bool, lastSeq uint64, lastKnown bool) (region, error) {
	if st == frameBadPayload {
		return region{start: off, end: off + frameHeaderLen + int64(fh.n), lost: 1, reason: "an entry's checksum does not match"}, nil
	}
	next, nfh, err := w.resync(off, prev, prevKnown)
	if err != nil {
		return region{}, err
	}
	r := region{start: off, end: next, lost: 1, reason: "a frame header is damaged"}
	switch {
	case next < w.limit && prevKnown:
		r.lost = seqGap(nfh.seq-1, prev)
	case next == w.limit && prevKnown && lastKnown && lastSeq > prev:
		r.lost = seqGap(lastSeq, prev)
	}
	return r, nil
}

// seqGap is the number of sequence numbers in (prev, last], bounded so
// that a damaged spool cannot overflow a count.
func seqGap(last, prev uint64) int {
	if last <= prev {
		return 0
	}
	return int(min(last-prev, 1<<40))
}
