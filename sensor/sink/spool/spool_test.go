package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// entry is entry number i, size bytes long (at least 8): its number in
// decimal, then bytes that depend on it, so a payload from the wrong
// entry or a shifted one shows.
func entry(i, size int) []byte {
	b := fmt.Appendf(make([]byte, 0, max(size, 8)), "%08d", i)
	for j := len(b); j < size; j++ {
		b = append(b, byte(i*31+j))
	}
	return b
}

// entryNumber is the number entry wrote into b, or -1 when b is not
// wholly an entry.
func entryNumber(b []byte) int {
	var i int
	if len(b) < 8 {
		return -1
	}
	if _, err := fmt.Sscanf(string(b[:8]), "%08d", &i); err != nil || !bytes.Equal(b, entry(i, len(b))) {
		return -1
	}
	return i
}

func mustOpen(t testing.TB, dir string, cfg Config) *Spool {
	t.Helper()
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pendingNumbers peeks every entry waiting and returns their numbers.
func pendingNumbers(t *testing.T, s *Spool) []int {
	t.Helper()
	got, err := s.Peek(1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, b := range got {
		nums = append(nums, entryNumber(b))
	}
	return nums
}

// checkPending checks that exactly entries first to first+n-1, each
// size bytes, wait, and that Len and Bytes say so.
func checkPending(t *testing.T, s *Spool, first, n, size int) {
	t.Helper()
	if s.Len() != n {
		t.Fatalf("Len %d before reading, want %d", s.Len(), n)
	}
	got, err := s.Peek(1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d entries wait, want %d", len(got), n)
	}
	for i, b := range got {
		if !bytes.Equal(b, entry(first+i, size)) {
			t.Fatalf("entry %d is %q, want entry %d", i, b[:min(len(b), 8)], first+i)
		}
	}
	if s.Len() != n || s.Bytes() != int64(n*(20+size)) {
		t.Fatalf("Len %d, Bytes %d; want %d and %d", s.Len(), s.Bytes(), n, n*(20+size))
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOrderAcrossSegments appends entries of many sizes in batches of
// many sizes through small segments, and reads them back in order in
// chunks of many sizes; acknowledged segments go.
func TestOrderAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{SegmentBytes: 1000, MaxBytes: 1 << 20})
	rng := rand.New(rand.NewPCG(1, 2))
	size := func(i int) int { return 8 + (i*7919)%600 }
	next, want := 0, 0
	var bytesWaiting int64
	maxSegs := 0
	for want < 2000 {
		if next < 2000 && rng.IntN(2) == 0 {
			var batch [][]byte
			for k := rng.IntN(6) + 1; k > 0 && next < 2000; k-- {
				batch = append(batch, entry(next, size(next)))
				bytesWaiting += int64(20 + size(next))
				next++
			}
			if err := s.Append(batch...); err != nil {
				t.Fatal(err)
			}
			maxSegs = max(maxSegs, len(segFiles(t, dir)))
			continue
		}
		got, err := s.Peek(rng.IntN(10)+1, rng.IntN(2000))
		if err != nil {
			t.Fatal(err)
		}
		if next > want && len(got) == 0 {
			t.Fatalf("Peek returned nothing with %d entries waiting", next-want)
		}
		for i, b := range got {
			if n := entryNumber(b); n != want+i {
				t.Fatalf("read entry %d, want %d", n, want+i)
			}
		}
		k := rng.IntN(len(got) + 1)
		if err := s.Ack(k); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			bytesWaiting -= int64(20 + size(want+i))
		}
		want += k
		if s.Len() != next-want || s.Bytes() != bytesWaiting {
			t.Fatalf("Len %d, Bytes %d; want %d and %d", s.Len(), s.Bytes(), next-want, bytesWaiting)
		}
	}
	if maxSegs < 3 {
		t.Errorf("at most %d segments: the test did not roll segments", maxSegs)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Errorf("%d segment files left once all is acknowledged, want the one being appended to", n)
	}
	st := s.Stats()
	if st.Appended != 2000 || st.Acked != 2000 || st.Entries != 0 || st.Bytes != 0 || st.CorruptEntries != 0 || st.TruncatedBytes != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestReopenResumes closes a spool with entries read but not all
// acknowledged and checks the reopened one goes on from the cursor: the
// unacknowledged ones, read or not, come again.
func TestReopenResumes(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 500}
	s := mustOpen(t, dir, cfg)
	for i := 0; i < 50; i++ {
		if err := s.Append(entry(i, 40)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Peek(30, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(20); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpen(t, dir, cfg)
	checkPending(t, s, 20, 30, 40)
	if err := s.Append(entry(50, 40)); err != nil {
		t.Fatal(err)
	}
	checkPending(t, s, 20, 31, 40)
	if err := s.Ack(31); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, dir, cfg)
	checkPending(t, s, 0, 0, 40)
	if err := s.Append(entry(51, 40)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Sequence numbers go on across reopens: the last entry is the 52nd.
	segs := segFiles(t, dir)
	last := parseDocSegment(t, segs[len(segs)-1])
	if e := last[len(last)-1]; e.seq != 52 {
		t.Errorf("the 52nd entry is numbered %d", e.seq)
	}
	if len(damage(t, dir)) != 0 {
		t.Errorf("a clean close left damage")
	}
}

// damage opens dir, returns what it reported, and closes it.
func damage(t *testing.T, dir string) []Damage {
	t.Helper()
	s, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.TakeDamage()
}

func TestFullThenRoomAfterAck(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Config{MaxBytes: 1200})
	n := 0
	for ; ; n++ {
		err := s.Append(entry(n, 100))
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 10 { // 10 frames of 120 bytes fill 1200
		t.Fatalf("full after %d entries of 120 bytes with a limit of 1200", n)
	}
	if err := s.Append(entry(n, 100)); !errors.Is(err, ErrFull) {
		t.Fatalf("still full: %v", err)
	}
	if _, err := s.Peek(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(entry(n, 100)); err != nil {
		t.Fatalf("after an ack: %v", err)
	}
	if err := s.Append(entry(n+1, 100)); !errors.Is(err, ErrFull) {
		t.Fatalf("full again: %v", err)
	}
	checkPending(t, s, 1, 10, 100)
	if err := s.Append(make([]byte, 1200)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an entry larger than the spool: %v", err)
	}
	if err := s.Append(make([]byte, 600), make([]byte, 600)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a batch larger than the spool: %v", err)
	}
}

func TestForeignFileRefused(t *testing.T) {
	for _, foreign := range []string{"notes.txt", "0001.seg", "cursor.old"} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, foreign), []byte("mine"))
		_, err := Open(dir, Config{})
		want := fmt.Sprintf("spool %s holds %s, which Outflow did not write: give the spool a directory of its own", dir, foreign)
		if err == nil || err.Error() != want {
			t.Errorf("Open: %v\nwant %s", err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "lock")); err == nil {
			t.Errorf("a lock file was left in a directory that is not the spool's")
		}
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	if _, err := Open(dir, Config{}); err == nil || !strings.Contains(err.Error(), "holds sub,") {
		t.Errorf("a subdirectory: %v", err)
	}
}

func TestCreatesPrivateDirAndCleansTemp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "spool")
	s := mustOpen(t, dir, Config{})
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool directory: %v %v", fi.Mode(), err)
	}
	s.Append(entry(0, 10))
	s.Close()
	writeFile(t, filepath.Join(dir, "cursor.tmp"), []byte("half a cursor"))
	s = mustOpen(t, dir, Config{})
	if _, err := os.Stat(filepath.Join(dir, "cursor.tmp")); !os.IsNotExist(err) {
		t.Errorf("cursor.tmp left: %v", err)
	}
	checkPending(t, s, 0, 1, 10)
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, Config{})
	_, err := Open(dir, Config{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v", err)
	}
}

// appendAndClose writes entries 0..n-1 of size bytes to a new spool in
// dir and returns its segment's path and the offset each entry starts at.
func appendAndClose(t *testing.T, dir string, n, size int) (string, []int64) {
	t.Helper()
	s := mustOpen(t, dir, Config{})
	var offs []int64
	for i := 0; i < n; i++ {
		if err := s.Append(entry(i, size)); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, int64(24+i*(20+size)))
	}
	s.Close()
	segs := segFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	return segs[0], offs
}

// TestTornTailCutOff writes by hand what a crash in the middle of an
// append leaves, in several shapes, and checks Open cuts it off and goes
// on: the entries before it all there, the next append after them.
func TestTornTailCutOff(t *testing.T) {
	frame := docFrame(entry(3, 100), 4)
	badPayload := bytes.Clone(frame)
	badPayload[len(badPayload)-1] ^= 1
	for name, tail := range map[string][]byte{
		"half a header":            frame[:7],
		"header and half payload":  frame[:60],
		"zeros never written":      make([]byte, 4096),
		"a payload never written":  append(bytes.Clone(frame[:20]), make([]byte, 100)...),
		"a payload partly written": badPayload,
		"two frames, the 2nd torn": append(bytes.Clone(frame), docFrame(entry(4, 100), 5)[:30]...),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path, _ := appendAndClose(t, dir, 3, 100)
			fi, _ := os.Stat(path)
			good := fi.Size()
			keep := 0
			if name == "two frames, the 2nd torn" {
				keep = len(frame) // the whole frame stays: it is good
			}
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(tail)
			f.Close()

			s := mustOpen(t, dir, Config{})
			d := s.TakeDamage()
			cut := int64(len(tail) - keep)
			if len(d) != 1 || !d[0].Torn || d[0].File != path || d[0].Offset != good+int64(keep) || d[0].Bytes != cut {
				t.Fatalf("damage %+v, want %d bytes torn at %d of %s", d, cut, good+int64(keep), path)
			}
			if st := s.Stats(); st.TruncatedBytes != uint64(cut) || st.CorruptEntries != 0 {
				t.Errorf("stats %+v", st)
			}
			if fi, _ := os.Stat(path); fi.Size() != good+int64(keep) {
				t.Errorf("segment is %d bytes after the cut, want %d", fi.Size(), good+int64(keep))
			}
			n := 3 + keep/len(frame)
			checkPending(t, s, 0, n, 100)
			if err := s.Append(entry(n, 100)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if d := damage(t, dir); len(d) != 0 {
				t.Errorf("damage again after the cut: %v", d)
			}
			s = mustOpen(t, dir, Config{})
			checkPending(t, s, 0, n+1, 100)
		})
	}
}

// TestTornNewSegmentRemoved leaves what a crash between creating a
// segment and writing it leaves: a file too short for its header, or one
// whose header never reached the disk.
func TestTornNewSegmentRemoved(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":        nil,
		"half header":  docSegHeader(2, 1)[:10],
		"zeroed pages": make([]byte, 4096),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			appendAndClose(t, dir, 3, 100)
			torn := filepath.Join(dir, "00000000000000000002.seg")
			writeFile(t, torn, content)
			s := mustOpen(t, dir, Config{})
			if _, err := os.Stat(torn); !os.IsNotExist(err) {
				t.Errorf("torn segment left: %v", err)
			}
			if st := s.Stats(); st.TruncatedBytes != uint64(len(content)) || st.CorruptEntries != 0 {
				t.Errorf("stats %+v", st)
			}
			if err := s.Append(entry(3, 100)); err != nil {
				t.Fatal(err)
			}
			checkPending(t, s, 0, 4, 100)
		})
	}
}

// TestCorruptEntrySkipped damages the middle entry of three, in its
// payload and in its header, and checks it is skipped and reported with
// its file and offset, and the one after it kept.
func TestCorruptEntrySkipped(t *testing.T) {
	for name, at := range map[string]int64{"payload": 20 + 50, "length": 1, "sequence": 6} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := appendAndClose(t, dir, 3, 100)
			flipByte(t, path, offs[1]+at)

			s := mustOpen(t, dir, Config{})
			if got := pendingNumbers(t, s); fmt.Sprint(got) != "[0 2]" {
				t.Fatalf("entries %v wait, want [0 2]", got)
			}
			d := s.TakeDamage()
			if len(d) != 1 || d[0].Torn || d[0].File != path || d[0].Offset != offs[1] || d[0].Bytes != 120 || d[0].Entries != 1 {
				t.Fatalf("damage %+v, want entry 1 at offset %d of %s", d, offs[1], path)
			}
			if want := fmt.Sprintf("offset %d", offs[1]); !strings.Contains(d[0].String(), want) || !strings.Contains(d[0].String(), path) {
				t.Errorf("%q does not name %s and %s", d[0], path, want)
			}
			if st := s.Stats(); st.CorruptEntries != 1 || st.DamagedBytes != 120 || st.TruncatedBytes != 0 || st.Entries != 2 {
				t.Errorf("stats %+v", st)
			}
			// The damage is stepped over by reads and acks, and not
			// reported again; appends go on after the good entry.
			if err := s.Append(entry(3, 100)); err != nil {
				t.Fatal(err)
			}
			if got := pendingNumbers(t, s); fmt.Sprint(got) != "[0 2 3]" {
				t.Fatalf("entries %v wait", got)
			}
			if err := s.Ack(2); err != nil {
				t.Fatal(err)
			}
			if got := pendingNumbers(t, s); fmt.Sprint(got) != "[3]" || s.Len() != 1 {
				t.Fatalf("entries %v wait, Len %d", got, s.Len())
			}
			if d := s.TakeDamage(); len(d) != 0 {
				t.Errorf("reported again: %v", d)
			}
		})
	}
}

// TestCorruptSegmentInTheMiddle damages an entry in a segment that is
// not the last: it is skipped, never cut.
func TestCorruptSegmentInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{SegmentBytes: 400})
	for i := 0; i < 9; i++ {
		s.Append(entry(i, 100))
	}
	s.Close()
	segs := segFiles(t, dir)
	if len(segs) != 3 {
		t.Fatalf("%d segments", len(segs))
	}
	// Entries 3, 4, 5 are in the middle segment; damage the 4th's
	// header and the 5th's payload: two places.
	flipByte(t, segs[1], 24+120+17)
	flipByte(t, segs[1], 24+240+20+99)
	s = mustOpen(t, dir, Config{SegmentBytes: 400})
	if got := pendingNumbers(t, s); fmt.Sprint(got) != "[0 1 2 3 6 7 8]" {
		t.Fatalf("entries %v", got)
	}
	d := s.TakeDamage()
	if len(d) != 2 || d[0].File != segs[1] || d[0].Offset != 144 || d[1].Offset != 264 || s.Stats().CorruptEntries != 2 {
		t.Fatalf("damage %v", d)
	}
	if fi, _ := os.Stat(segs[1]); fi.Size() != 24+360 {
		t.Errorf("the middle segment was cut to %d bytes", fi.Size())
	}
}

// TestDamageFoundByRead damages an entry while the spool is open: Peek
// steps over it, reports it once and Len drops it.
func TestDamageFoundByRead(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{})
	for i := 0; i < 4; i++ {
		s.Append(entry(i, 100))
	}
	path := segFiles(t, dir)[0]
	flipByte(t, path, 24+2*120+30)
	for range 2 {
		if got := pendingNumbers(t, s); fmt.Sprint(got) != "[0 1 3]" {
			t.Fatalf("entries %v", got)
		}
	}
	if d := s.TakeDamage(); len(d) != 1 || d[0].Offset != 24+240 || s.Len() != 3 {
		t.Fatalf("damage %v, Len %d", d, s.Len())
	}
	if err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Errorf("Len %d, Bytes %d after acknowledging all", s.Len(), s.Bytes())
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedCursorRereads damages the cursor: every entry left is
// delivered again, from the oldest, and the damage reported.
func TestDamagedCursorRereads(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{})
	for i := 0; i < 5; i++ {
		s.Append(entry(i, 30))
	}
	s.Peek(2, 1000)
	s.Ack(2)
	s.Close()
	flipByte(t, filepath.Join(dir, "cursor"), 21)
	s = mustOpen(t, dir, Config{})
	checkPending(t, s, 0, 5, 30)
	if d := s.TakeDamage(); len(d) != 1 || !strings.Contains(d[0].String(), "cursor") {
		t.Errorf("damage %v", d)
	}
}

// TestAcknowledgedSegmentLeftByCrash puts back a segment that a crash
// kept from being deleted after the cursor moved past it.
func TestAcknowledgedSegmentLeftByCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 300}
	s := mustOpen(t, dir, cfg)
	for i := 0; i < 6; i++ {
		s.Append(entry(i, 100))
	}
	first := segFiles(t, dir)[0]
	saved, _ := os.ReadFile(first)
	s.Peek(3, 1<<20)
	s.Ack(3)
	s.Close()
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("acknowledged segment not deleted: %v", err)
	}
	writeFile(t, first, saved)
	s = mustOpen(t, dir, cfg)
	checkPending(t, s, 3, 3, 100)
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("acknowledged segment kept: %v", err)
	}
}

func TestPeekBounds(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Config{})
	for i := 0; i < 10; i++ {
		s.Append(entry(i, 100))
	}
	for _, c := range []struct{ max, maxBytes, want int }{
		{1, 1 << 20, 1}, {4, 1 << 20, 4}, {100, 1 << 20, 10},
		{100, 1, 1}, {100, 0, 1}, {0, 0, 1}, {100, 350, 3}, {2, 350, 2},
	} {
		got, err := s.Peek(c.max, c.maxBytes)
		if err != nil || len(got) != c.want {
			t.Errorf("Peek(%d, %d): %d entries, %v; want %d", c.max, c.maxBytes, len(got), err, c.want)
		}
	}
	// Copies: changing one changes nothing in the spool.
	got, _ := s.Peek(1, 0)
	got[0][0] = 'x'
	if got, _ := s.Peek(1, 0); got[0][0] != '0' {
		t.Errorf("Peek returned the spool's own bytes")
	}
	if err := s.Ack(11); err == nil || s.Len() != 10 {
		t.Errorf("acknowledging 11 of 10: %v, Len %d", err, s.Len())
	}
	if err := s.Ack(10); err != nil || s.Len() != 0 {
		t.Errorf("acknowledging 10 never peeked: %v, Len %d", err, s.Len())
	}
	if got, err := s.Peek(10, 1000); len(got) != 0 || err != nil {
		t.Errorf("Peek on an empty spool: %d, %v", len(got), err)
	}
}

func TestClosed(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Config{})
	s.Close()
	if err := s.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append: %v", err)
	}
	if _, err := s.Peek(1, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Peek: %v", err)
	}
	if err := s.Ack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack: %v", err)
	}
}

// TestLargeEntries crosses the read window and the write buffer.
func TestLargeEntries(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{SegmentBytes: 1 << 20})
	sizes := []int{8, 300 << 10, 65 << 10, 64<<10 - 1, 2 << 20, 100}
	var batch [][]byte
	for i, n := range sizes {
		batch = append(batch, entry(i, n))
	}
	if err := s.Append(batch...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, dir, Config{SegmentBytes: 1 << 20})
	for i, n := range sizes {
		got, err := s.Peek(1, 0)
		if err != nil || len(got) != 1 || !bytes.Equal(got[0], entry(i, n)) {
			t.Fatalf("entry %d of %d bytes: %v", i, n, err)
		}
		s.Ack(1)
	}
	if err := s.Append(make([]byte, MaxEntryBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an entry past MaxEntryBytes: %v", err)
	}
}

// TestHugeLengthIsDamage writes a frame header claiming 4 GiB with a
// good header checksum: it is damage, not an allocation.
func TestHugeLengthIsDamage(t *testing.T) {
	dir := t.TempDir()
	path, _ := appendAndClose(t, dir, 2, 50)
	h := binary.LittleEndian.AppendUint32(nil, 0xffffffff)
	h = binary.LittleEndian.AppendUint64(h, 3)
	h = binary.LittleEndian.AppendUint32(h, 0)
	h = binary.LittleEndian.AppendUint32(h, docCRC(h))
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(h)
	f.Write(docFrame(entry(2, 50), 4))
	f.Close()
	s := mustOpen(t, dir, Config{})
	if got := pendingNumbers(t, s); fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("entries %v", got)
	}
}

// TestConcurrentAppendAndRead runs an appender and a sender at once
// (with -race this checks the locking) and checks the sender sees every
// entry once, in order.
func TestConcurrentAppendAndRead(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Config{SegmentBytes: 4096, MaxBytes: 64 << 10, NoSync: true})
	const n = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; {
			k := min(1+i%7, n-i)
			var batch [][]byte
			for j := 0; j < k; j++ {
				batch = append(batch, entry(i+j, 8+(i+j)%300))
			}
			err := s.Append(batch...)
			if errors.Is(err, ErrFull) {
				continue
			}
			if err != nil {
				t.Error(err)
				return
			}
			i += k
		}
	}()
	for want := 0; want < n; {
		got, err := s.Peek(16, 4096)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range got {
			if i := entryNumber(b); i != want {
				t.Fatalf("read %d, want %d", i, want)
			}
			want++
		}
		if err := s.Ack(len(got)); err != nil {
			t.Fatal(err)
		}
		s.Len()
		s.Stats()
	}
	wg.Wait()
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Errorf("Len %d, Bytes %d", s.Len(), s.Bytes())
	}
}

// TestDamagedSegmentHeader damages the header of a middle segment and of
// the last one: their entries are still read, the damage reported, and
// appends go to a new segment rather than after a header in doubt.
func TestDamagedSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 400}
	s := mustOpen(t, dir, cfg)
	for i := 0; i < 9; i++ {
		s.Append(entry(i, 100))
	}
	s.Close()
	segs := segFiles(t, dir)
	flipByte(t, segs[1], 2)
	flipByte(t, segs[2], 13)
	s = mustOpen(t, dir, cfg)
	checkPending(t, s, 0, 9, 100)
	d := s.TakeDamage()
	if len(d) != 2 || d[0].File != segs[1] || d[1].File != segs[2] || d[0].Offset != 0 || !strings.Contains(d[1].String(), "segment header") {
		t.Fatalf("damage %v", d)
	}
	if err := s.Append(entry(9, 100)); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != 4 {
		t.Errorf("%d segments: the append did not start a new one", n)
	}
	checkPending(t, s, 0, 10, 100)
}
