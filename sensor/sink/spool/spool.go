package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// Config bounds a spool. The zero value is the defaults.
type Config struct {
	// MaxBytes bounds the bytes of unacknowledged entries, their framing
	// included (default 256 MiB): past it Append returns ErrFull.
	// Acknowledged entries stay on disk until their segment is wholly
	// acknowledged, so the files take at most MaxBytes plus a segment.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started
	// (default 16 MiB, and at most MaxBytes). One Append never spans two
	// segments, so a large one makes a larger segment.
	SegmentBytes int64
	// NoSync skips every fsync: the spool then survives its process
	// being killed but not the machine losing power. For tests and
	// benchmarks only.
	NoSync bool
}

const (
	defaultMaxBytes     = 256 << 20
	defaultSegmentBytes = 16 << 20
)

func (c Config) resolve() (Config, error) {
	if c.MaxBytes < 0 || c.SegmentBytes < 0 {
		return c, fmt.Errorf("spool sizes cannot be negative (maximum %d bytes, segments %d bytes)", c.MaxBytes, c.SegmentBytes)
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = defaultSegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, c.MaxBytes)
	return c, nil
}

var (
	// ErrFull is returned (wrapped) by Append when its entries would take
	// the spool past MaxBytes; once a sender acknowledges enough, the
	// same Append succeeds.
	ErrFull = errors.New("spool full")
	// ErrTooLarge is returned (wrapped) by Append for an entry, or a
	// batch, that would not fit even in an empty spool.
	ErrTooLarge = errors.New("too large for the spool")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("spool closed")
)

// Stats is what a spool holds and has done since Open.
type Stats struct {
	Entries  int    // unacknowledged entries
	Bytes    int64  // their bytes on disk, framing included
	Segments int    // segment files
	Appended uint64 // entries appended since Open
	Acked    uint64 // entries acknowledged since Open
	// TruncatedBytes are torn tails cut off at Open: appends a crash
	// interrupted, none of which had returned.
	TruncatedBytes uint64
	// CorruptEntries are entries lost to damage (bit rot, a tampered
	// file) and skipped; DamagedBytes the bytes skipped with them.
	CorruptEntries uint64
	DamagedBytes   uint64
}

// Spool is a bounded FIFO of entries on disk that survives crashes; see
// the package documentation. Its methods are safe for concurrent use: one
// lock serialises appenders, another readers, and neither waits for the
// other's fsync.
type Spool struct {
	dir    string
	cfg    Config
	lock   *os.File
	closed atomic.Bool

	wmu sync.Mutex
	w   writer

	rmu sync.Mutex
	r   reader

	// mu guards what both sides touch: the segments, the counts, the
	// damage reports. It is never held across file I/O.
	mu      sync.Mutex
	segs    []segMeta // in id order; the writer appends, the reader trims the front
	pending int
	bytes   int64
	stats   Stats
	damage  []Damage
}

// segMeta is what both sides know of a segment.
type segMeta struct {
	id   uint64
	size int64 // the bytes published to readers
	// lastSeq is the sequence number of its last good entry, when known.
	lastSeq   uint64
	lastKnown bool
}

func (s *Spool) segPath(id uint64) string { return filepath.Join(s.dir, segName(id)) }

// Open opens the spool in dir, creating dir (mode 0700) when missing. It
// recovers from whatever a crash left: the torn tail of the last segment
// is cut off, damaged entries are skipped and reported (see TakeDamage),
// and reading resumes at the oldest unacknowledged entry. It refuses a
// directory holding files it did not write, and one another process has
// open.
func Open(dir string, cfg Config) (*Spool, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: cannot create it: %w", dir, fserr.Plain(err))
	}
	// Refuse someone else's directory before leaving a lock file in it.
	if _, err := listDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, cfg: cfg, lock: lock}
	if err := s.load(); err != nil {
		s.r.win.close()
		if s.w.f != nil {
			s.w.f.Close()
		}
		lock.Close()
		return nil, err
	}
	return s, nil
}

// report keeps a damage report for TakeDamage and counts it. The caller
// holds mu, or is Open.
func (s *Spool) report(d Damage) {
	if d.Torn {
		s.stats.TruncatedBytes += uint64(d.Bytes)
	} else {
		s.stats.CorruptEntries += uint64(d.Entries)
		s.stats.DamagedBytes += uint64(d.Bytes)
	}
	if len(s.damage) < maxDamage {
		s.damage = append(s.damage, d)
	}
}

// TakeDamage returns the damage found since the last call (at most 64
// reports; Stats counts all of it), for the caller to log: Open's torn
// tails and skipped entries, and damage reads found since.
func (s *Spool) TakeDamage() []Damage {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.damage
	s.damage = nil
	return d
}

// Len is the number of unacknowledged entries.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Bytes is the bytes on disk of the unacknowledged entries, framing
// included: what MaxBytes bounds.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Stats returns the spool's counts.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Entries, st.Bytes, st.Segments = s.pending, s.bytes, len(s.segs)
	return st
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Close waits for a running Append, Peek or Ack and closes the spool's
// files. Everything appended is on disk already; Close only lets go.
func (s *Spool) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	if s.w.f != nil {
		err = s.w.f.Close()
		s.w.f = nil
	}
	s.r.win.close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("spool %s: closing: %w", s.dir, fserr.Plain(err))
	}
	return nil
}
