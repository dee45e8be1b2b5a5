// Package sink holds the sensor's outputs: where encoded records go once
// the pipeline is done with them.
//
// A Lines sink takes whole lines (JSON records, one per line) and writes
// them to a file or to stdout. It buffers, and flushes every FlushInterval
// so that a sensor left running shows its records within a second or two;
// it opens files for appending and reopens them on Reopen (SIGHUP), which
// is what logrotate's create and copytruncate modes both need. A failing
// destination (a full disk, a removed directory) never stops the sensor:
// unwritten lines are kept up to MaxBuffer and written when the
// destination works again, and lines beyond that are dropped and counted.
package sink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// Config says where a Lines sink writes and how it buffers.
type Config struct {
	// Path is a file, appended to and created when missing, or "-" (or
	// "") for Stdout.
	Path string
	// Stdout is where "-" writes (default os.Stdout).
	Stdout io.Writer
	// FlushInterval is the longest a line waits in the buffer (default 1s).
	FlushInterval time.Duration
	// MaxBuffer bounds the bytes held while the destination fails
	// (default 16 MiB); older whole lines are dropped past it.
	MaxBuffer int
	// Mode is the permission of a created file (default 0640: flow
	// records name hosts and processes).
	Mode os.FileMode
	// Log receives one line when the destination starts failing and one
	// when it works again (default: discarded).
	Log *slog.Logger
	// RotateSize and RotateAge rotate a file (0: never): it is renamed
	// PATH.YYYYMMDDTHHMMSSZ, the time of rotation, and a new one opened.
	// Keep bounds the rotated files kept (0: all).
	RotateSize int64
	RotateAge  time.Duration
	Keep       int
	// Header, when set, makes the first lines of every new file, and of
	// stdout (Zeek's TSV header): a file that already has lines when
	// opened is appended to without one.
	Header func() []byte
}

// Stats is what a sink counted since it started.
type Stats struct {
	Name      string // the destination: a path, or stdout
	Lines     uint64 // records written to (or taken by) the destination
	Bytes     uint64
	Dropped   uint64 // lines lost: the destination failed and the buffer was full
	Errors    uint64 // failed writes or opens
	Reopens   uint64
	Rotations uint64
	Pending   int // bytes waiting in the buffer
	// A Delivery sink's: records waiting in memory, sends tried again,
	// and the records and bytes waiting in its spool on disk.
	Queued     int
	Retries    uint64
	Rejected   uint64 // refused by the receiver for good, and skipped
	Spooled    int
	SpoolBytes int64
}

// Lines is a sink of whole lines. It is safe for concurrent use; its
// methods never return the destination's errors to a writer, who could do
// nothing about them: they are counted and logged.
type Lines struct {
	cfg     Config
	mu      sync.Mutex
	w       io.Writer // the open destination, nil when it failed to open
	f       *os.File  // w, when it is a file
	buf     []byte
	st      Stats
	failing error // the error of the current failure, nil when healthy
	retry   time.Time
	size    int64     // of the open file, for RotateSize
	opened  time.Time // when the open file was started, for RotateAge
	stop    chan struct{}
	done    chan struct{}
}

// New returns an inert sink: nothing is opened until Start.
func New(cfg Config) *Lines {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = 16 << 20
	}
	if cfg.Mode == 0 {
		cfg.Mode = 0o640
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Lines{cfg: cfg}
}

// Name is the destination as the user gave it.
func (l *Lines) Name() string {
	if l.stdout() {
		return "stdout"
	}
	return l.cfg.Path
}

// Path is the destination as configured: a file, or "-".
func (l *Lines) Path() string {
	if l.stdout() {
		return "-"
	}
	return l.cfg.Path
}

func (l *Lines) stdout() bool { return l.cfg.Path == "" || l.cfg.Path == "-" }

// Start opens the destination and starts the flush timer. A file that
// cannot be opened is an error here, at start, where the user can still
// fix the flag; later failures are counted and retried.
func (l *Lines) Start() error {
	l.mu.Lock()
	err := l.open()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.run()
	return nil
}

func (l *Lines) run() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Flush()
		}
	}
}

// open opens the destination; l.mu is held.
func (l *Lines) open() error {
	if l.stdout() {
		if l.w == nil {
			l.header()
		}
		l.w = l.cfg.Stdout
		return nil
	}
	f, err := os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, l.cfg.Mode)
	if err != nil {
		return fmt.Errorf("cannot open %s for writing: %w", l.cfg.Path, fserr.Plain(err))
	}
	l.w, l.f = f, f
	l.size, l.opened = 0, time.Now()
	if fi, err := f.Stat(); err == nil {
		l.size = fi.Size()
	}
	if l.size == 0 {
		l.header()
	}
	return nil
}

// header puts the header in front of what the buffer holds; l.mu is held.
func (l *Lines) header() {
	if l.cfg.Header == nil {
		return
	}
	h := l.cfg.Header()
	l.buf = append(h, l.buf...)
}

// WriteBatch queues b's records (Sink).
func (l *Lines) WriteBatch(b *Batch) { l.Write(b.Data) }

// Write queues whole lines; p is copied. It never fails: see Stats.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) >= 1<<20 {
		l.flushLocked()
	}
	l.bound()
	return len(p), nil
}

// bound drops the oldest whole lines past MaxBuffer; l.mu is held.
func (l *Lines) bound() {
	over := len(l.buf) - l.cfg.MaxBuffer
	if over <= 0 {
		return
	}
	cut := over
	if i := bytes.IndexByte(l.buf[over:], '\n'); i >= 0 {
		cut = over + i + 1
	} else {
		cut = len(l.buf)
	}
	l.st.Dropped += uint64(bytes.Count(l.buf[:cut], []byte{'\n'}))
	l.buf = append(l.buf[:0], l.buf[cut:]...)
}

// Flush writes what is buffered.
func (l *Lines) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *Lines) flushLocked() error {
	if l.f != nil && l.dueRotation() {
		l.rotate()
	}
	if len(l.buf) == 0 {
		return l.failing
	}
	if l.w == nil {
		// The destination could not be reopened: try again, at most
		// once a second.
		if time.Now().Before(l.retry) {
			return l.failing
		}
		if err := l.open(); err != nil {
			l.fail(err)
			return err
		}
	}
	// Only whole lines go out, so a failure mid-way leaves no half line
	// in the file for the next write to run into.
	end := bytes.LastIndexByte(l.buf, '\n') + 1
	if end == 0 {
		return l.failing
	}
	n, err := l.w.Write(l.buf[:end])
	if n > 0 {
		// A short write can end inside a line: complete the line with a
		// newline so what follows starts a line of its own.
		written := l.buf[:n]
		l.st.Lines += uint64(bytes.Count(written, []byte{'\n'}))
		l.st.Bytes += uint64(n)
		l.size += int64(n)
		if n < end && written[n-1] != '\n' {
			if i := bytes.IndexByte(l.buf[n:], '\n'); i >= 0 {
				n += i + 1 // the rest of the broken line is lost
				l.st.Dropped++
			}
		}
		l.buf = append(l.buf[:0], l.buf[n:]...)
	}
	if err != nil {
		l.fail(fmt.Errorf("writing %s: %w", l.Name(), fserr.Plain(err)))
		return err
	}
	if l.failing != nil {
		l.cfg.Log.Info("output works again", "output", l.Name(), "dropped_lines", l.st.Dropped)
		l.failing = nil
	}
	if l.dueRotation() {
		l.rotate()
	}
	return l.failing
}

// dueRotation reports whether the open file is due for rotation.
func (l *Lines) dueRotation() bool {
	return l.cfg.RotateSize > 0 && l.size >= l.cfg.RotateSize ||
		l.cfg.RotateAge > 0 && l.size > 0 && time.Since(l.opened) >= l.cfg.RotateAge
}

// rotate renames the open file with the time and opens a new one, then
// removes the oldest rotated files beyond Keep; l.mu is held. The buffer
// is left for the new file; files only ever get whole lines.
func (l *Lines) rotate() {
	l.f.Close()
	l.w, l.f = nil, nil
	stamp := time.Now().UTC().Format("20060102T150405Z")
	dst := l.cfg.Path + "." + stamp
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); os.IsNotExist(err) {
			break
		}
		dst = fmt.Sprintf("%s.%s-%d", l.cfg.Path, stamp, i)
	}
	if err := os.Rename(l.cfg.Path, dst); err != nil {
		l.fail(fmt.Errorf("rotating %s: %w", l.cfg.Path, fserr.Plain(err)))
	} else {
		l.st.Rotations++
	}
	if err := l.open(); err != nil {
		l.fail(err)
		return
	}
	if l.cfg.Keep > 0 {
		old, _ := filepath.Glob(l.cfg.Path + ".2*")
		sort.Strings(old) // the stamps sort by time
		for len(old) > l.cfg.Keep {
			os.Remove(old[0])
			old = old[1:]
		}
	}
}

// fail records a failure and logs the first of a run; l.mu is held.
func (l *Lines) fail(err error) {
	l.st.Errors++
	l.retry = time.Now().Add(time.Second)
	if l.failing == nil {
		l.cfg.Log.Error("output failing; lines are kept in memory up to a bound, then dropped and counted",
			"output", l.Name(), "err", err.Error())
	}
	l.failing = err
}

// Reopen flushes and reopens the destination: after logrotate has moved
// a file away (create) or truncated it (copytruncate; the file is opened
// for appending, so the next line goes to its new end either way).
func (l *Lines) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	if l.stdout() {
		return nil
	}
	l.st.Reopens++
	if l.f != nil {
		l.f.Close()
	}
	l.w, l.f = nil, nil
	if err := l.open(); err != nil {
		l.fail(err)
		return err
	}
	return nil
}

// Stop flushes and closes. It returns the error of a failure still in
// progress, so the caller can say lines were lost.
func (l *Lines) Stop() error {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.flushLocked()
	if len(l.buf) > 0 {
		l.st.Dropped += uint64(bytes.Count(l.buf, []byte{'\n'}))
		l.buf = l.buf[:0]
	}
	if l.f != nil {
		// What a regular file holds is on disk before the sensor exits;
		// devices and pipes have nothing to sync.
		if fi, serr := l.f.Stat(); serr == nil && fi.Mode().IsRegular() {
			err = errors.Join(err, l.f.Sync())
		}
		err = errors.Join(err, l.f.Close())
		l.w, l.f = nil, nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", l.Name(), fserr.Plain(err))
	}
	return nil
}

// Stats returns the counts so far.
func (l *Lines) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.st
	s.Name = l.Name()
	s.Pending = len(l.buf)
	return s
}
