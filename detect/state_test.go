package detect

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestStateDeadlinesInPacketTime(t *testing.T) {
	s := NewState(32 << 20)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.set("k", t0.Add(time.Hour), []byte("v"))
	if v, ok := s.get("k", t0.Add(59*time.Minute)); !ok || string(v) != "v" {
		t.Error("live value not read")
	}
	if _, ok := s.get("k", t0.Add(61*time.Minute)); ok {
		t.Error("expired value read")
	}
}

func TestStateSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	s := NewState(32 << 20)
	s.set("a", forever, []byte("1"))
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := LoadState(path, 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := l.get("a", time.Now()); !ok || string(v) != "1" {
		t.Error("value lost")
	}
	// Missing: reported, empty state.
	if l, err := LoadState(filepath.Join(dir, "nope"), 32<<20); err == nil || l == nil {
		t.Error("missing state not reported")
	}
	// Corrupt: every file of the saved directory overwritten with junk.
	files, _ := filepath.Glob(filepath.Join(path, "*"))
	for _, f := range files {
		if err := os.WriteFile(f, []byte("not a cache"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err = LoadState(path, 32<<20)
	if err == nil {
		t.Error("corrupt state not reported")
	}
	if _, ok := l.get("a", time.Now()); ok {
		t.Error("corrupt state read")
	}
}
