package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// FuzzOpenSegment opens a spool whose one segment holds arbitrary bytes.
// Open must not panic nor fail (but for a newer version's header), must
// allocate in proportion to the file, not to the lengths it claims, and
// every entry it returns must be a frame of the file whose checksums
// hold, in file order. A second Open must find nothing left to cut, and
// the spool must take appends after it.
func FuzzOpenSegment(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "00000000000000000001.seg")
		writeFile(t, path, data)

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := Open(dir, Config{NoSync: true})
		if err != nil {
			if strings.Contains(err.Error(), "newer version") {
				return
			}
			t.Fatal(err)
		}
		counted := s.Len() // before Peek, which sets it right at the end
		got, err := s.Peek(1<<20, 1<<30)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(2*len(data))+1<<20 {
			t.Fatalf("%d bytes allocated to open a segment of %d", n, len(data))
		}
		if counted != len(got) {
			t.Fatalf("Len %d, Peek returned %d", counted, len(got))
		}
		checkFramesOf(t, data, got)
		s.Close()

		s, err = Open(dir, Config{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.Peek(1<<20, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.TruncatedBytes != 0 || len(again) != len(got) {
			t.Fatalf("second Open: %d entries (first: %d), %d bytes cut", len(again), len(got), st.TruncatedBytes)
		}
		for i := range got {
			if !bytes.Equal(got[i], again[i]) {
				t.Fatalf("second Open: entry %d differs", i)
			}
		}
		if err := s.Ack(len(got)); err != nil {
			t.Fatal(err)
		}
		if err := s.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = Open(dir, Config{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if last, err := s.Peek(10, 1<<20); err != nil || len(last) != 1 || string(last[0]) != "after" {
			t.Fatalf("after acknowledging all and appending one: %q, %v", last, err)
		}
	})
}

// checkFramesOf checks that entries are frames of data, in order and not
// overlapping, with the documented layout and good checksums.
func checkFramesOf(t *testing.T, data []byte, entries [][]byte) {
	t.Helper()
	table := crc32.MakeTable(crc32.Castagnoli)
	at := 24
	for i, e := range entries {
		found := false
		for ; at+20+len(e) <= len(data); at++ {
			h := data[at : at+20]
			if int(binary.LittleEndian.Uint32(h)) == len(e) &&
				crc32.Checksum(h[:16], table) == binary.LittleEndian.Uint32(h[16:]) &&
				crc32.Checksum(e, table) == binary.LittleEndian.Uint32(h[12:]) &&
				bytes.Equal(data[at+20:at+20+len(e)], e) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("entry %d (%d bytes) is not a whole frame of the file after the previous one", i, len(e))
		}
		at += 20 + len(e)
	}
}

// fuzzSeeds are segments the spool wrote, and damaged copies of them.
func fuzzSeeds(f *testing.F) [][]byte {
	dir := f.TempDir()
	s, err := Open(dir, Config{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		s.Append(entry(i, 8+i*40))
	}
	s.Append(entry(6, 70<<10)) // past the read window
	s.Close()
	good, err := os.ReadFile(filepath.Join(dir, "00000000000000000001.seg"))
	if err != nil {
		f.Fatal(err)
	}
	flip := func(at int) []byte { b := bytes.Clone(good); b[at] ^= 0x40; return b }
	huge := binary.LittleEndian.AppendUint32(bytes.Clone(good[:24]), 1<<31)
	huge = binary.LittleEndian.AppendUint64(huge, 1)
	huge = binary.LittleEndian.AppendUint32(huge, 0)
	huge = binary.LittleEndian.AppendUint32(huge, crc32.Checksum(huge[24:], crc32.MakeTable(crc32.Castagnoli)))
	return [][]byte{
		good, good[:24], good[:23], good[:100], good[:len(good)-1], nil,
		flip(3), flip(30), flip(24 + 28 + 10), flip(len(good) - 5),
		append(bytes.Clone(good[:200]), make([]byte, 300)...),
		huge,
	}
}
