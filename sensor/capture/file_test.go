package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/internal/synth"
)

func countFrames(t *testing.T, path string) (int, error) {
	t.Helper()
	s, err := OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var p Packet
	n := 0
	for {
		if err := s.Next(&p); err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
		n++
	}
}

// TestFramesEqualTshark reads pcap, pcapng and gzip captures and gets the
// frame count tshark gets.
func TestFramesEqualTshark(t *testing.T) {
	for _, rel := range []string{
		"zeek/testing/btest/Traces/http/get.pcap",
		"zeek/testing/btest/Traces/ssh/ssh.pcap",
		"zeek/testing/btest/Traces/quic/merlinc2_Zeek_example.pcapng",
		"foxio-ja4/pcap/tls-handshake.pcapng",
		"community-id/pcaps/combined.pcap.gz",
	} {
		path := shared.Path(t, rel)
		got, err := countFrames(t, path)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		}
		if want := shared.TsharkFrames(t, path); got != want {
			t.Errorf("%s: %d frames, tshark reads %d", rel, got, want)
		}
	}
	demo := filepath.Join("..", "..", "pcaps", "outflow-demo.pcap")
	got, err := countFrames(t, demo)
	if err != nil || got != shared.TsharkFrames(t, demo) {
		t.Errorf("%s: %d frames (%v), tshark %d", demo, got, err, shared.TsharkFrames(t, demo))
	}
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadFiles: truncated and corrupt captures give an *Error that names the
// file and the offset of the bad record, with a reason errors.Is can test.
func TestBadFiles(t *testing.T) {
	src := shared.Path(t, "zeek/testing/btest/Traces/http/get.pcap")
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if binary.BigEndian.Uint32(good) == 0xa1b2c3d4 {
		bo = binary.BigEndian
	}
	// Offsets of the records, from the file's own headers.
	var offs []int
	for off := 24; off+16 <= len(good); off += 16 + int(bo.Uint32(good[off+8:])) {
		offs = append(offs, off)
	}
	third := offs[2]

	cut := good[:third+16+10] // third record's data cut short
	lying := append([]byte(nil), good...)
	bo.PutUint32(lying[third+8:], 1<<30) // caplen of a gigabyte
	bigSnap := append([]byte(nil), good...)
	bo.PutUint32(bigSnap[16:], 0xffffffff) // a snap length that would cost 4 GB

	cases := []struct {
		name   string
		data   []byte
		reason error
		offset int64
		frames int
	}{
		{"empty", nil, ErrUnknownFormat, 0, 0},
		{"not a capture", []byte("GET / HTTP/1.1\r\n\r\n"), ErrUnknownFormat, 0, 0},
		{"header cut", good[:20], ErrTruncated, 0, 0},
		{"record cut", cut, ErrTruncated, int64(third), 2},
		{"lying capture length", lying, ErrCorrupt, int64(third), 2},
	}
	for _, c := range cases {
		path := writeTemp(t, "bad.pcap", c.data)
		n, err := countFrames(t, path)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, c.reason) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.reason)
			continue
		}
		if e.Path != path || e.Offset != c.offset || n != c.frames {
			t.Errorf("%s: %q at offset %d after %d frames, want offset %d after %d", c.name, e.Path, e.Offset, n, c.offset, c.frames)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset "+strconv.Itoa(int(c.offset))) {
			t.Errorf("%s: message %q does not name file and offset", c.name, err)
		}
	}
	n, err := countFrames(t, writeTemp(t, "snap.pcap", bigSnap))
	if err != nil || n != len(offs) {
		t.Errorf("huge snap length: %d frames, %v; want %d", n, err, len(offs))
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(cut)
	w.Close()
	if _, err := countFrames(t, writeTemp(t, "cut.pcap.gz", gz.Bytes())); !errors.Is(err, ErrTruncated) {
		t.Errorf("gzip of a cut capture: %v, want %v", err, ErrTruncated)
	}
}

// TestLinkTypeKeptWhole: LINKTYPE_LINUX_SLL2 (276) survives, though gopacket
// keeps link types in a byte.
func TestLinkTypeKeptWhole(t *testing.T) {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 276)
	rec := make([]byte, 16+20)
	binary.LittleEndian.PutUint32(rec[8:], 20)
	binary.LittleEndian.PutUint32(rec[12:], 20)
	s, err := OpenFile(writeTemp(t, "sll2.pcap", append(hdr, rec...)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var p Packet
	if err := s.Next(&p); err != nil || p.LinkType != flows.LinkLinuxSLL2 {
		t.Fatalf("link type %d, %v; want %d", p.LinkType, err, flows.LinkLinuxSLL2)
	}
}

// BenchmarkFileSource reads a real capture from the page cache.
func BenchmarkFileSource(b *testing.B) {
	path := shared.Path(b, "zeek/testing/btest/Traces/ssh/ssh.pcap")
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	var p Packet
	for i := 0; i < b.N; i++ {
		s, err := OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		for s.Next(&p) == nil {
		}
		s.Close()
	}
}

// pcapng builds a little-endian pcapng section with one interface of the
// given snap length and one enhanced packet block.
func pcapng(snap uint32, pkt []byte, capLen uint32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0x0a0d0d0a)
	b = le.AppendUint32(b, 28)
	b = le.AppendUint32(b, 0x1a2b3c4d)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, ^uint64(0))
	b = le.AppendUint32(b, 28)
	b = le.AppendUint32(b, 1) // interface description
	b = le.AppendUint32(b, 20)
	b = le.AppendUint16(b, 276) // Linux SLL2
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, snap)
	b = le.AppendUint32(b, 20)
	pad := (4 - len(pkt)%4) % 4
	n := uint32(32 + len(pkt) + pad)
	b = le.AppendUint32(b, 6)
	b = le.AppendUint32(b, n)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint32(b, capLen)
	b = le.AppendUint32(b, uint32(len(pkt)))
	b = append(b, pkt...)
	b = append(b, make([]byte, pad)...)
	return le.AppendUint32(b, n)
}

// TestHostilePcapng: an interface claiming a 4 GB snap length costs no 4 GB
// buffer, its 16-bit link type survives, and a packet longer than its block
// is refused at that block's offset.
func TestHostilePcapng(t *testing.T) {
	pkt := make([]byte, 40)
	s, err := OpenFile(writeTemp(t, "big-snap.pcapng", pcapng(0xffffffff, pkt, 40)))
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	if err := s.Next(&p); err != nil || len(p.Data) != 40 || p.LinkType != flows.LinkLinuxSLL2 {
		t.Fatalf("frame of %d bytes, link type %d, %v", len(p.Data), p.LinkType, err)
	}
	s.Close()
	_, err = countFrames(t, writeTemp(t, "long-packet.pcapng", pcapng(65535, pkt, 4000)))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrCorrupt) || e.Offset != 28+20 {
		t.Fatalf("packet longer than its block: %v", err)
	}
}

// TestMappedFileShrinks: a mapped capture cut short while it is read (a
// tcpdump -W ring overwriting its oldest file) faults when its lost pages
// are read; with panic-on-fault, as replay runs, that is a recoverable
// fault (IsFault) instead of a SIGBUS that ends the process.
func TestMappedFileShrinks(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "pcaps", "outflow-demo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ring0.pcap")
	os.WriteFile(path, src, 0o644)
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Stable() {
		t.Skip("not mapped on this system")
	}
	var p Packet
	if err := s.Next(&p); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	faulted := func() (faulted bool) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				faulted = IsFault(r)
			}
		}()
		for {
			if err := s.Next(&p); err != nil {
				return false
			}
			_ = p.Data[len(p.Data)-1] // what the decoder reads
		}
	}()
	if !faulted {
		t.Fatal("reading past the new end did not fault")
	}
}

// TestPcapngInterfaceFlood: a pcapng of nothing but interface blocks (a
// few hundred KB gzipped held gigabytes in pcapgo) is refused at the
// first block past the bound, naming its offset.
func TestPcapngInterfaceFlood(t *testing.T) {
	b := synth.PcapngInterfaceFlood(100000)
	path := filepath.Join(t.TempDir(), "idb-flood.pcapng")
	os.WriteFile(path, b, 0o644)
	s, err := OpenFile(path)
	if err == nil {
		defer s.Close()
		var p Packet
		err = s.Next(&p)
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "more than 4096 interfaces") || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("%v", err)
	}
}

// TestPcapngInterfaceBytes: interface blocks under the count bound but
// each carrying a 60 kB description (pcapgo keeps it for the section's
// life) are refused at the first block past the byte budget, naming its
// offset; a new section starts a budget of its own.
func TestPcapngInterfaceBytes(t *testing.T) {
	le := binary.LittleEndian
	section := func(b []byte) []byte {
		b = le.AppendUint32(b, 0x0A0D0D0A)
		b = le.AppendUint32(b, 28)
		b = le.AppendUint32(b, 0x1A2B3C4D)
		b = le.AppendUint16(b, 1)
		b = le.AppendUint16(b, 0)
		b = le.AppendUint64(b, ^uint64(0))
		return le.AppendUint32(b, 28)
	}
	const desc = 60000
	idb := func(b []byte) []byte {
		n := uint32(20 + 4 + desc + 4)
		b = le.AppendUint32(b, 1)
		b = le.AppendUint32(b, n)
		b = le.AppendUint16(b, 1)
		b = le.AppendUint16(b, 0)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint16(b, 3) // if_description
		b = le.AppendUint16(b, desc)
		b = append(b, make([]byte, desc)...)
		b = le.AppendUint32(b, 0) // end of options
		return le.AppendUint32(b, n)
	}
	read := func(b []byte, opt FileOptions) error {
		path := filepath.Join(t.TempDir(), "idb.pcapng")
		os.WriteFile(path, b, 0o644)
		s, err := OpenFileWith(path, opt)
		if err != nil {
			return err
		}
		defer s.Close()
		var p Packet
		for err == nil {
			err = s.Next(&p)
		}
		if err == io.EOF {
			return nil
		}
		return err
	}
	var b []byte
	b = section(b)
	for i := 0; i < 20; i++ { // 20 x 60 kB: the 18th passes the default MiB
		b = idb(b)
	}
	err := read(b, FileOptions{})
	var e *Error
	block := int64(20 + 4 + desc + 4)
	if !errors.As(err, &e) || !errors.Is(err, ErrCorrupt) || e.Offset != 28+17*block ||
		!strings.Contains(err.Error(), "budget of 1048576 bytes") {
		t.Fatalf("20 large interfaces: %v", err)
	}
	// Ten per section, in two sections: each within its own budget.
	b = section(nil)
	for i := 0; i < 10; i++ {
		b = idb(b)
	}
	b = section(b)
	for i := 0; i < 10; i++ {
		b = idb(b)
	}
	if err := read(b, FileOptions{}); err != nil {
		t.Fatalf("two sections of 10: %v", err)
	}
	// A budget of the caller's.
	if err := read(b, FileOptions{InterfaceBytes: 4 * block}); !errors.As(err, &e) || e.Offset != 28+4*block {
		t.Fatalf("budget of four blocks: %v", err)
	}
}

// simplePackets rewrites a little-endian pcapng: every second enhanced
// packet block whose frame was not cut by the snap length becomes a simple
// packet block (original length and frame, no interface, no time), as a
// writer that records no times would have written it. It returns the file,
// whether each frame became a simple packet, and the first one's offset.
func simplePackets(t *testing.T, in []byte) (out []byte, simple []bool, first int) {
	t.Helper()
	le := binary.LittleEndian
	first = -1
	for off := 0; off < len(in); {
		typ, n := le.Uint32(in[off:]), int(le.Uint32(in[off+4:]))
		blk := in[off : off+n]
		off += n
		if typ == 0x0A0D0D0A && le.Uint32(blk[8:]) != 0x1A2B3C4D {
			t.Fatal("a big-endian section")
		}
		if typ != 6 {
			out = append(out, blk...)
			continue
		}
		capLen, origLen := le.Uint32(blk[20:]), le.Uint32(blk[24:])
		if len(simple)%2 == 0 || capLen != origLen {
			simple = append(simple, false)
			out = append(out, blk...)
			continue
		}
		simple = append(simple, true)
		if first < 0 {
			first = len(out)
		}
		padded := (capLen + 3) &^ 3
		out = le.AppendUint32(out, 3)
		out = le.AppendUint32(out, 16+padded)
		out = le.AppendUint32(out, origLen)
		out = append(out, blk[28:28+capLen]...)
		out = append(out, make([]byte, padded-capLen)...)
		out = le.AppendUint32(out, 16+padded)
	}
	return out, simple, first
}

// TestSimplePacketBlocks reads a real pcapng whose every second packet was
// rewritten as a simple packet block. tshark reads the same frames from it;
// each frame's bytes are the original's, and a simple packet, which records
// no time, has the time of the packet before it (it had year 1754). A
// simple packet longer than its block is refused at its offset.
func TestSimplePacketBlocks(t *testing.T) {
	orig := shared.Path(t, "foxio-ja4/pcap/tls-handshake.pcapng")
	in, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	out, simple, first := simplePackets(t, in)
	path := writeTemp(t, "simple.pcapng", out)
	if got, want := shared.TsharkFrames(t, path), shared.TsharkFrames(t, orig); got != want {
		t.Fatalf("tshark reads %d frames from the rewritten file, %d from the original", got, want)
	}
	read := func(path string) ([]Packet, Stats) {
		s, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var ps []Packet
		for {
			var p Packet
			if err := s.Next(&p); err == io.EOF {
				return ps, s.Stats()
			} else if err != nil {
				t.Fatal(err)
			}
			p.Data = append([]byte(nil), p.Data...)
			ps = append(ps, p)
		}
	}
	want, _ := read(orig)
	got, st := read(path)
	if len(got) != len(want) || len(simple) != len(want) {
		t.Fatalf("%d frames, the original has %d", len(got), len(want))
	}
	var n uint64
	for i := range got {
		wantTS := want[i].CaptureInfo.Timestamp
		if simple[i] {
			n++
			wantTS = want[i-1].CaptureInfo.Timestamp
		}
		if !bytes.Equal(got[i].Data, want[i].Data) || got[i].CaptureInfo.Length != want[i].CaptureInfo.Length || got[i].LinkType != want[i].LinkType {
			t.Errorf("frame %d differs from the original", i+1)
		}
		if !got[i].CaptureInfo.Timestamp.Equal(wantTS) {
			t.Errorf("frame %d (simple %v) at %v, want %v", i+1, simple[i], got[i].CaptureInfo.Timestamp, wantTS)
		}
	}
	if n < 50 || st.Untimed != n {
		t.Errorf("%d simple packets, %d counted untimed", n, st.Untimed)
	}

	// One that claims 1000 bytes in a block of 100.
	le := binary.LittleEndian
	bad := append([]byte(nil), out[:first]...)
	bad = le.AppendUint32(bad, 3)
	bad = le.AppendUint32(bad, 16+100)
	bad = le.AppendUint32(bad, 1000)
	bad = append(bad, make([]byte, 100)...)
	bad = le.AppendUint32(bad, 16+100)
	s, err := OpenFile(writeTemp(t, "long-simple.pcapng", bad))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var p Packet
	for err == nil {
		err = s.Next(&p)
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset "+strconv.Itoa(first)) || !strings.Contains(err.Error(), "simple packet longer than its block") {
		t.Errorf("%v; want the block at offset %d refused", err, first)
	}
}
