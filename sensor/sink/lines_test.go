package sink

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A running sink shows its lines within its flush interval, without being
// stopped, and appends to what the file held.
func TestLinesFlushInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.json")
	os.WriteFile(path, []byte("{\"old\":1}\n"), 0o644)
	l := New(Config{Path: path, FlushInterval: 50 * time.Millisecond})
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	l.Write([]byte("{\"a\":1}\n"))
	deadline := time.Now().Add(2 * time.Second)
	for read(t, path) != "{\"old\":1}\n{\"a\":1}\n" {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 s the file holds %q", read(t, path))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logrotate's create mode: the file is renamed, Reopen makes a new one;
// copytruncate: the file is truncated in place, and the next line lands at
// its start, not at the old offset behind a hole.
func TestLinesRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.json")
	l := New(Config{Path: path, FlushInterval: time.Hour})
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("1\n"))
	l.Flush()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("2\n"))
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("3\n"))
	l.Flush()
	if got := read(t, path+".1") + "|" + read(t, path); got != "1\n2\n|3\n" {
		t.Fatalf("create: rotated|current = %q", got)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("4\n"))
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "4\n" {
		t.Fatalf("copytruncate: %q", got)
	}
	if st := l.Stats(); st.Lines != 4 || st.Reopens != 1 || st.Dropped != 0 {
		t.Fatalf("%+v", st)
	}
}

// flaky fails while down is set, as a full disk does.
type flaky struct {
	mu   sync.Mutex
	down bool
	out  bytes.Buffer
}

func (f *flaky) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errors.New("no space left on device")
	}
	return f.out.Write(p)
}

// A destination that fails keeps its lines in memory up to the bound and
// writes them when it works again; what did not fit is counted.
func TestLinesFailingDestination(t *testing.T) {
	var logs bytes.Buffer
	w := &flaky{down: true}
	l := New(Config{Stdout: w, FlushInterval: time.Hour, MaxBuffer: 64})
	l.cfg.Log = newTestLogger(&logs)
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		l.Write([]byte("0123456789\n")) // 11 bytes: 5 fit in 64
		l.Flush()
	}
	w.mu.Lock()
	w.down = false
	w.mu.Unlock()
	l.Write([]byte("last\n"))
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	lines := strings.Count(w.out.String(), "\n")
	if st.Dropped+uint64(lines) != 11 || st.Dropped == 0 || !strings.HasSuffix(w.out.String(), "last\n") {
		t.Fatalf("written %d lines, stats %+v", lines, st)
	}
	if n := strings.Count(logs.String(), "output failing"); n != 1 {
		t.Fatalf("%d failure lines logged, want 1 per outage:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "works again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// /dev/full is a real ENOSPC: the sensor goes on, and every line is
// counted as dropped at the end.
func TestLinesDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	l := New(Config{Path: "/dev/full", FlushInterval: time.Hour})
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.Write([]byte("x\n"))
		l.Flush()
	}
	err := l.Stop()
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || strings.Contains(err.Error(), "write /dev/full") {
		t.Fatalf("error %v", err)
	}
	if st := l.Stats(); st.Dropped != 3 || st.Lines != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestLinesOpenError(t *testing.T) {
	l := New(Config{Path: filepath.Join(t.TempDir(), "missing", "flows.json")})
	err := l.Start()
	if err == nil || !strings.HasPrefix(err.Error(), "cannot open ") || !strings.HasSuffix(err.Error(), "missing/flows.json for writing: no such file or directory") {
		t.Fatalf("%v", err)
	}
}

func newTestLogger(w *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// Rotation by size keeps whole lines in every file, and Keep bounds the
// rotated files.
func TestLinesRotateSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flows.json")
	l := New(Config{Path: path, FlushInterval: time.Hour, RotateSize: 100, Keep: 2})
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes
	for i := 0; i < 20; i++ {
		l.Write(line)
		l.Flush()
		time.Sleep(2 * time.Millisecond)
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := filepath.Glob(path + ".2*")
	if len(rotated) != 2 {
		t.Fatalf("%d rotated files kept, want 2: %v", len(rotated), rotated)
	}
	for _, f := range append(rotated, path) {
		b := read(t, f)
		if len(b)%40 != 0 || len(b) > 120 {
			t.Errorf("%s: %d bytes", f, len(b))
		}
	}
	if st := l.Stats(); st.Lines != 20 || st.Rotations < 5 {
		t.Errorf("%+v", st)
	}
}

// Rotation by age happens on the flush timer, with no write needed.
func TestLinesRotateAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	l := New(Config{Path: path, FlushInterval: 20 * time.Millisecond, RotateAge: 100 * time.Millisecond})
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	l.Write([]byte("{}\n"))
	deadline := time.Now().Add(3 * time.Second)
	for {
		rotated, _ := filepath.Glob(path + ".2*")
		if len(rotated) == 1 && read(t, rotated[0]) == "{}\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rotated after 3 s: %v", rotated)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
