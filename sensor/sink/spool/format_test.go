package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// These helpers write and read the layout as doc.go documents it, with
// encoding/binary and hash/crc32 alone: they share no code with the
// package, so a test that passes through them checks the package against
// its documentation, not against itself.

var docTable = crc32.MakeTable(crc32.Castagnoli)

func docSegHeader(id uint64, version uint16) []byte {
	b := []byte("OFSPOOL\x00")
	b = binary.LittleEndian.AppendUint16(b, version)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, id)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, docTable))
}

func docFrame(payload []byte, seq uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, docTable))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, docTable))
	return append(b, payload...)
}

type docEntry struct {
	off     int64
	seq     uint64
	payload []byte
}

// parseDocSegment reads a well-formed segment file strictly by the
// documented layout and fails the test on anything else.
func parseDocSegment(t *testing.T, path string) []docEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || string(b[:8]) != "OFSPOOL\x00" {
		t.Fatalf("%s: no segment header", path)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != 1 {
		t.Fatalf("%s: version %d", path, v)
	}
	if crc32.Checksum(b[:20], docTable) != binary.LittleEndian.Uint32(b[20:]) {
		t.Fatalf("%s: header checksum", path)
	}
	if want, ok := docSegID(filepath.Base(path)); !ok || binary.LittleEndian.Uint64(b[12:]) != want {
		t.Fatalf("%s: header id %d, name says %d", path, binary.LittleEndian.Uint64(b[12:]), want)
	}
	var out []docEntry
	for off := 24; off < len(b); {
		if len(b)-off < 20 {
			t.Fatalf("%s: %d stray bytes at %d", path, len(b)-off, off)
		}
		h := b[off : off+20]
		if crc32.Checksum(h[:16], docTable) != binary.LittleEndian.Uint32(h[16:]) {
			t.Fatalf("%s: frame header checksum at %d", path, off)
		}
		n := int(binary.LittleEndian.Uint32(h))
		p := b[off+20 : off+20+n]
		if crc32.Checksum(p, docTable) != binary.LittleEndian.Uint32(h[12:]) {
			t.Fatalf("%s: payload checksum at %d", path, off)
		}
		out = append(out, docEntry{off: int64(off), seq: binary.LittleEndian.Uint64(h[4:]), payload: p})
		off += 20 + n
	}
	return out
}

// docSegID is the id a segment's name spells: 20 decimal digits, then
// ".seg".
func docSegID(name string) (uint64, bool) {
	if len(name) != 24 || name[20:] != ".seg" {
		return 0, false
	}
	var id uint64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		id = id*10 + uint64(c-'0')
	}
	return id, true
}

// TestFilesFollowTheDocumentedLayout appends across several segments and
// acknowledges some, then reads the files with the documented layout.
func TestFilesFollowTheDocumentedLayout(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Config{SegmentBytes: 300})
	for i := 0; i < 10; i++ {
		if err := s.Append(entry(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Peek(3, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("%d segments for 10 entries of 120 bytes in 300-byte segments", len(segs))
	}
	// The entries left are numbered on from wherever the oldest segment
	// left starts, up to 10, and the fourth is where the cursor says.
	var all []docEntry
	var fourthSeg uint64
	for _, path := range segs {
		for _, e := range parseDocSegment(t, path) {
			if e.seq == 4 {
				fourthSeg, _ = docSegID(filepath.Base(path))
			}
			all = append(all, e)
		}
	}
	if all[0].seq > 4 || all[len(all)-1].seq != 10 {
		t.Fatalf("segments hold entries %d to %d", all[0].seq, all[len(all)-1].seq)
	}
	var fourth docEntry
	for i, e := range all {
		if e.seq != all[0].seq+uint64(i) || !bytes.Equal(e.payload, entry(int(e.seq-1), 100)) {
			t.Fatalf("entry %d at %d: sequence %d, or its payload differs", i, e.off, e.seq)
		}
		if e.seq == 4 {
			fourth = e
		}
	}
	c, err := os.ReadFile(filepath.Join(dir, "cursor"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 40 || string(c[:8]) != "OFCURSOR" || binary.LittleEndian.Uint16(c[8:]) != 1 ||
		crc32.Checksum(c[:36], docTable) != binary.LittleEndian.Uint32(c[36:]) {
		t.Fatalf("cursor %x does not follow the layout", c)
	}
	seg, off, acked := binary.LittleEndian.Uint64(c[12:]), int64(binary.LittleEndian.Uint64(c[20:])), binary.LittleEndian.Uint64(c[28:])
	if seg != fourthSeg || off != fourth.off || acked != 3 {
		t.Errorf("cursor at segment %d offset %d, %d acknowledged; entry 4 is in segment %d at %d", seg, off, acked, fourthSeg, fourth.off)
	}
	s.Close()
}

// TestReadsHandWrittenSegment opens a segment written by hand from the
// documented layout.
func TestReadsHandWrittenSegment(t *testing.T) {
	dir := t.TempDir()
	seg := docSegHeader(7, 1)
	for i := 0; i < 5; i++ {
		seg = append(seg, docFrame(entry(i, 50), uint64(100+i))...)
	}
	writeFile(t, filepath.Join(dir, "00000000000000000007.seg"), seg)
	s := mustOpen(t, dir, Config{})
	checkPending(t, s, 0, 5, 50)
	// New entries go on with the next sequence number, in the same
	// segment.
	if err := s.Append(entry(5, 50)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got := parseDocSegment(t, filepath.Join(dir, "00000000000000000007.seg"))
	if len(got) != 6 || got[5].seq != 105 {
		t.Fatalf("after an append the segment holds %d entries, the last numbered %d", len(got), got[len(got)-1].seq)
	}
}

func TestRefusesNewerVersion(t *testing.T) {
	dir := t.TempDir()
	seg := append(docSegHeader(1, 2), docFrame([]byte("x"), 1)...)
	writeFile(t, filepath.Join(dir, "00000000000000000001.seg"), seg)
	_, err := Open(dir, Config{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("newer version of Outflow")) {
		t.Fatalf("Open: %v", err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func docCRC(b []byte) uint32 { return crc32.Checksum(b, docTable) }
