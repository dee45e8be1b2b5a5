// Package capture holds the packet sources: capture files and, on Linux,
// AF_PACKET sockets. Sources hand out frames borrowed until the next read.
package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/fserr"
)

// Reasons a capture file is refused or ends early; test with errors.Is.
var (
	ErrUnknownFormat = errors.New("not a pcap, pcapng or gzip-compressed capture")
	ErrTruncated     = errors.New("truncated record")
	ErrCorrupt       = errors.New("corrupt record")
)

// Error names the file and the byte offset (in the decompressed stream for
// gzip files) of the record that could not be read.
type Error struct {
	Path   string
	Offset int64
	Reason error // ErrUnknownFormat, ErrTruncated or ErrCorrupt
	Err    error // what the reader said, if anything more
}

func (e *Error) Error() string {
	if e.Err != nil && e.Err != e.Reason {
		return fmt.Sprintf("%s: offset %d: %v: %v", e.Path, e.Offset, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: offset %d: %v", e.Path, e.Offset, e.Reason)
}

// Unwrap lets errors.Is match the reason.
func (e *Error) Unwrap() error { return e.Reason }

// Packet is one frame and what the capture says about it. Data is borrowed
// until the next call to Next.
type Packet struct {
	Data        []byte
	CaptureInfo gopacket.CaptureInfo
	LinkType    flows.LinkType
}

// Stats counts what a source read.
type Stats struct {
	Packets uint64
	Bytes   uint64
	// Untimed counts pcapng simple packet blocks, which carry no time;
	// each is given the time of the packet before it.
	Untimed uint64
}

// maxSnapLen bounds the buffer a file header can make us allocate: a header
// claiming a 4 GB snap length must not cost 4 GB.
const maxSnapLen = 256 << 10

// FileSource reads pcap, pcapng and gzip-compressed captures.
type FileSource struct {
	path     string
	f        *os.File
	size     int64
	raw      *countingReader // bytes from disk
	dec      *countingReader // bytes after decompression
	pcap     *pcapgo.Reader
	ng       *pcapgo.NgReader
	guard    *ngGuard
	linkType flows.LinkType
	offset   int64 // classic pcap: offset of the next record
	last     int64
	stats    Stats
	mapped   []byte      // the file mapped into memory, when it could be
	mm       *mappedPcap // classic pcap read straight from the mapping
	opt      FileOptions
	prevTime time.Time       // pcapng: the last timed packet's, for simple packets
	stop     func() bool     // OpenFileContext: stops watching its context
	ctx      context.Context // OpenFileContext's, whose end ends reading
}

// IsFault reports whether a recovered panic is a memory fault that
// debug.SetPanicOnFault turned into a panic: a mapped file cut short.
// (its value has the faulting address, as debug.SetPanicOnFault says).
func IsFault(r any) bool {
	_, ok := r.(interface{ Addr() uintptr })
	return ok
}

// mappedPcap reads classic pcap records in place from a mapped file, so a
// frame costs no copy at all; pcapgo copies each into its buffer (twice,
// through its bufio), which was most of replay's time on large captures.
// Its checks are pcapgo's: a record longer than the snap length is corrupt,
// one cut short by the end of the file is truncated.
type mappedPcap struct {
	data []byte
	bo   binary.ByteOrder
	snap uint32
	nano bool
}

// next reads the record at off. A mapped file that is cut short under
// the reader (a tcpdump -W ring overwriting its oldest file) faults when
// its lost pages are touched, here or wherever the frame is read later:
// callers that read files which may shrink run with
// debug.SetPanicOnFault(true) and recover faults (IsFault), as sensor's
// replay does per file and per worker batch, rather than paying for it on
// every record here.
func (m *mappedPcap) next(off int64, p *Packet) (int64, error) {
	if off == int64(len(m.data)) {
		return off, io.EOF
	}
	if off+16 > int64(len(m.data)) {
		return off, io.ErrUnexpectedEOF
	}
	h := m.data[off : off+16]
	sec, frac := m.bo.Uint32(h[0:4]), m.bo.Uint32(h[4:8])
	caplen, wire := m.bo.Uint32(h[8:12]), m.bo.Uint32(h[12:16])
	if caplen > m.snap {
		return off, fmt.Errorf("capture length %d exceeds the snap length %d", caplen, m.snap)
	}
	end := off + 16 + int64(caplen)
	if end > int64(len(m.data)) {
		return off, io.ErrUnexpectedEOF
	}
	ns := int64(frac)
	if !m.nano {
		ns *= 1000
	}
	p.Data = m.data[off+16 : end : end]
	p.CaptureInfo = gopacket.CaptureInfo{
		Timestamp:     time.Unix(int64(sec), ns).UTC(),
		CaptureLength: int(caplen),
		Length:        int(wire),
	}
	return end, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// FileOptions bounds what reading a file may hold.
type FileOptions struct {
	// InterfaceBytes is the budget for one pcapng section's interface
	// description blocks (0: DefaultInterfaceBytes); a file past it ends
	// there with an error naming the block's offset.
	InterfaceBytes int64
}

// OpenFile opens a capture, telling pcap, pcapng and gzip apart by their
// magic numbers rather than by the file name.
func OpenFile(path string) (*FileSource, error) { return OpenFileWith(path, FileOptions{}) }

// OpenFileWith is OpenFile with budgets of its own.
func OpenFileWith(path string, opt FileOptions) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot open the capture: %w", path, fserr.Plain(err))
	}
	return newFileSource(path, f, opt)
}

// newFileSource reads the header of an open capture; it closes f when it
// cannot.
func newFileSource(path string, f *os.File, opt FileOptions) (*FileSource, error) {
	if opt.InterfaceBytes <= 0 {
		opt.InterfaceBytes = DefaultInterfaceBytes
	}
	s := &FileSource{path: path, f: f, opt: opt}
	if fi, err := f.Stat(); err == nil {
		s.size = fi.Size()
	}
	if err := s.open(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *FileSource) fail(off int64, reason, err error) error {
	return &Error{Path: s.path, Offset: off, Reason: reason, Err: err}
}

func (s *FileSource) open() error {
	var src io.Reader = s.f
	// A mapped file is read without a system call per buffer, and an
	// uncompressed one without the bufio copy either: replay of large
	// captures spent most of its time copying.
	if m := mapFile(s.f, s.size); m != nil {
		s.mapped = m
		src = bytes.NewReader(m)
	}
	s.raw = &countingReader{r: src}
	var r io.Reader
	var magic []byte
	if m := s.mapped; len(m) >= 4 && !(m[0] == 0x1f && m[1] == 0x8b) {
		r, magic = s.raw, m[:4]
	} else {
		br := bufio.NewReaderSize(s.raw, 1<<16)
		r = br
		var err error
		if magic, err = br.Peek(4); err != nil {
			return s.fail(0, ErrUnknownFormat, err)
		}
		if magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(br)
			if err != nil {
				return s.fail(0, ErrCorrupt, err)
			}
			zb := bufio.NewReaderSize(zr, 1<<16)
			if magic, err = zb.Peek(4); err != nil {
				return s.fail(0, ErrUnknownFormat, err)
			}
			r = zb
		}
	}
	s.dec = &countingReader{r: r}
	switch binary.BigEndian.Uint32(magic) {
	case 0x0a0d0d0a:
		s.guard = &ngGuard{r: s.dec, maxIfaceBytes: s.opt.InterfaceBytes}
		ng, err := pcapgo.NewNgReader(s.guard, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return s.ngFail(err)
		}
		s.ng = ng
		return nil
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		return s.openPcap()
	}
	return s.fail(0, ErrUnknownFormat, nil)
}

// openPcap reads the 24-byte file header itself, to keep the full 32-bit
// link type (gopacket v1.1.19 stores it in a byte) and to clamp the snap
// length pcapgo sizes its buffer by, then hands pcapgo the same header.
func (s *FileSource) openPcap() error {
	var hdr [24]byte
	if _, err := io.ReadFull(s.dec, hdr[:]); err != nil {
		return s.fail(0, ErrTruncated, err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if m := binary.BigEndian.Uint32(hdr[:4]); m == 0xa1b2c3d4 || m == 0xa1b23c4d {
		bo = binary.BigEndian
	}
	lt := bo.Uint32(hdr[20:24]) & 0x0fffffff // the top bits carry FCS information
	if lt > 0xffff {
		return s.fail(20, ErrCorrupt, fmt.Errorf("link type %d", lt))
	}
	s.linkType = flows.LinkType(lt)
	if snap := bo.Uint32(hdr[16:20]); snap == 0 || snap > maxSnapLen {
		bo.PutUint32(hdr[16:20], maxSnapLen)
	}
	if s.mapped != nil && s.dec.r == io.Reader(s.raw) {
		m := &mappedPcap{data: s.mapped, bo: bo, snap: bo.Uint32(hdr[16:20])}
		switch binary.BigEndian.Uint32(hdr[:4]) {
		case 0xa1b23c4d, 0x4d3cb2a1:
			m.nano = true
		}
		s.mm = m
		s.offset = 24
		return nil
	}
	r, err := pcapgo.NewReader(io.MultiReader(bytes.NewReader(hdr[:]), s.dec))
	if err != nil {
		return s.fail(0, ErrCorrupt, err)
	}
	s.pcap = r
	s.offset = 24
	return nil
}

// Next fills p with the next frame. It returns io.EOF at the clean end of the
// file, an *Error for a record it cannot read, and ErrInterrupted once
// OpenFileContext's context ended; the file is done in each case.
func (s *FileSource) Next(p *Packet) error {
	var err error
	if s.mm != nil {
		s.last = s.offset
		var next int64
		next, err = s.mm.next(s.offset, p)
		if err == nil {
			s.offset = next
			s.raw.n = next
			p.LinkType = s.linkType
		}
	} else if s.pcap != nil {
		s.last = s.offset
		p.Data, p.CaptureInfo, err = s.pcap.ZeroCopyReadPacketData()
		if err == nil {
			s.offset += 16 + int64(len(p.Data))
			p.LinkType = s.linkType
		}
	} else {
		p.Data, p.CaptureInfo, err = s.ng.ZeroCopyReadPacketData()
		s.last = s.guard.offset
		if err == nil {
			p.LinkType = s.ngLinkType(p.CaptureInfo.InterfaceIndex)
			s.timeSimple(p)
		} else if err != io.EOF && !s.interrupted() {
			return s.ngFail(err)
		}
	}
	if err != nil && err != io.EOF && s.interrupted() {
		return ErrInterrupted
	}
	switch {
	case err == nil:
		s.stats.Packets++
		s.stats.Bytes += uint64(len(p.Data))
		return nil
	case err == io.EOF:
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return s.fail(s.last, ErrTruncated, err)
	}
	return s.fail(s.last, ErrCorrupt, err)
}

// timeSimple gives a simple packet block's frame, which carries no time,
// the time of the packet before it (the Unix epoch, as libpcap gives it,
// when none came before). pcapgo leaves it the zero time, which is year 1
// and, as nanoseconds, a date in 1754.
func (s *FileSource) timeSimple(p *Packet) {
	if s.guard.typ != 3 {
		s.prevTime = p.CaptureInfo.Timestamp
		return
	}
	s.stats.Untimed++
	if s.prevTime.IsZero() {
		s.prevTime = time.Unix(0, 0).UTC()
	}
	p.CaptureInfo.Timestamp = s.prevTime
}

// interrupted reports a read failed because OpenFileContext's context
// ended: the deadline that woke it may surface as any error on its way
// through gzip, bufio and pcapgo.
func (s *FileSource) interrupted() bool { return s.ctx != nil && s.ctx.Err() != nil }

// ngFail classifies a pcapng error, preferring the guard's own framing
// error, which knows the block's offset.
func (s *FileSource) ngFail(err error) error {
	if ge, ok := s.guard.err.(*errBlock); ok {
		return s.fail(ge.offset, ErrCorrupt, ge)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || s.guard.err == io.ErrUnexpectedEOF {
		return s.fail(s.guard.offset, ErrTruncated, err)
	}
	return s.fail(s.guard.offset, ErrCorrupt, err)
}

func (s *FileSource) ngLinkType(i int) flows.LinkType {
	if i >= 0 && i < len(s.guard.linkTypes) {
		return flows.LinkType(s.guard.linkTypes[i])
	}
	return flows.LinkType(s.ng.LinkType())
}

// Offset returns the byte offset of the record or block Next returned last,
// in the decompressed stream.
func (s *FileSource) Offset() int64 { return s.last }

// Path returns the file's path, as it was opened.
func (s *FileSource) Path() string { return s.path }

// Size returns the file's size on disk.
func (s *FileSource) Size() int64 { return s.size }

// BytesRead returns how much of the file has been read from disk, for a
// progress bar; compressed bytes for gzip files.
func (s *FileSource) BytesRead() int64 { return s.raw.n }

// Stats returns what was read so far.
func (s *FileSource) Stats() Stats { return s.stats }

// Stable reports whether frames stay valid after the next call to Next: a
// classic pcap read from a mapping hands out slices of the mapping, valid
// until Close, or until the release function of KeepMapped is called.
func (s *FileSource) Stable() bool { return s.mm != nil }

// KeepMapped hands the mapping's lifetime to the caller, so frames handed
// out stay valid after Close (for workers still holding them); the caller
// calls release when they are done. Nil when the file is not mapped.
func (s *FileSource) KeepMapped() (release func()) {
	m := s.mapped
	if m == nil {
		return nil
	}
	s.mapped = nil
	return func() { unmapFile(m) }
}

// Close closes the file.
func (s *FileSource) Close() error {
	if s.stop != nil {
		s.stop()
	}
	if s.mapped != nil {
		unmapFile(s.mapped)
		s.mapped = nil
	}
	return s.f.Close()
}
