package spool

import (
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// windowSize is how much of a segment one read brings in: walking small
// frames costs one read per window, and a frame is checked in place
// before anything is copied.
const windowSize = 64 << 10

// window reads one segment file through one reused buffer, never past
// limit: the file's size at Open, the bytes an Append published since.
type window struct {
	f     *os.File
	path  string
	id    uint64
	limit int64
	buf   []byte
	start int64 // the file offset of buf[0]
	n     int   // bytes of buf that hold the file
}

func (w *window) open(path string, id uint64, f *os.File) {
	w.close()
	if w.buf == nil {
		w.buf = make([]byte, windowSize)
	}
	w.f, w.path, w.id, w.start, w.n = f, path, id, 0, 0
}

func (w *window) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// bytes returns the file's bytes [off, off+n), n <= windowSize and
// off+n <= limit, reading them when the window does not hold them. The
// slice is valid until the next call.
func (w *window) bytes(off int64, n int) ([]byte, error) {
	if off >= w.start && off+int64(n) <= w.start+int64(w.n) {
		i := off - w.start
		return w.buf[i : i+int64(n)], nil
	}
	want := int64(len(w.buf))
	if w.limit-off < want {
		want = w.limit - off
	}
	got, err := w.f.ReadAt(w.buf[:want], off)
	w.start, w.n = off, got
	if got < n {
		if err == nil || err == io.EOF {
			return nil, fmt.Errorf("spool segment %s ends at offset %d, before the %d bytes the spool wrote there", w.path, off+int64(got), off+int64(n))
		}
		return nil, fmt.Errorf("spool segment %s: cannot read at offset %d: %w", w.path, off, fserr.Plain(err))
	}
	return w.buf[:n], nil
}

// frameStatus says whether a frame is whole, and if not how much of it
// can be trusted.
type frameStatus int

const (
	frameGood       frameStatus = iota
	frameBadHeader              // the header's checksum fails, or its length passes limit: its extent is unknown
	frameBadPayload             // the header is good, so the frame's extent is known, but its payload's checksum fails
)

// frame checks the frame at off. With keep, a good frame's payload is
// returned as a new slice; the allocation happens only once the header's
// checksum has vouched for the length and the length fits before limit.
func (w *window) frame(off int64, keep bool) (frameHeader, []byte, frameStatus, error) {
	if w.limit-off < frameHeaderLen {
		return frameHeader{}, nil, frameBadHeader, nil
	}
	h, err := w.bytes(off, frameHeaderLen)
	if err != nil {
		return frameHeader{}, nil, 0, err
	}
	fh, ok := parseFrameHeader(h)
	if !ok || int64(fh.n) > w.limit-off-frameHeaderLen {
		return fh, nil, frameBadHeader, nil
	}
	var payload []byte
	if keep {
		payload = make([]byte, fh.n)
	}
	crc := uint32(0)
	p := off + frameHeaderLen
	for done := 0; done < fh.n; {
		c := min(fh.n-done, windowSize)
		b, err := w.bytes(p, c)
		if err != nil {
			return fh, nil, 0, err
		}
		if keep {
			copy(payload[done:], b)
		}
		crc = crc32.Update(crc, castagnoli, b)
		p += int64(c)
		done += c
	}
	if crc != fh.crc {
		return fh, nil, frameBadPayload, nil
	}
	return fh, payload, frameGood, nil
}

// length is the payload length the frame header at off gives, 0 when
// the header is damaged (frame then says how).
func (w *window) length(off int64) (int, error) {
	if w.limit-off < frameHeaderLen {
		return 0, nil
	}
	h, err := w.bytes(off, frameHeaderLen)
	if err != nil {
		return 0, err
	}
	fh, ok := parseFrameHeader(h)
	if !ok {
		return 0, nil
	}
	return fh.n, nil
}

// resync finds the first frame header after one at off that could not be
// read: one whose checksum holds, whose length fits and whose sequence
// number comes after prev (when known). Its checksum vouches for its
// length as much as any header's does, so the frame's payload is left to
// be checked as any frame's is. It returns limit when there is none.
func (w *window) resync(off int64, prev uint64, prevKnown bool) (int64, frameHeader, error) {
	for p := off + 1; p+frameHeaderLen <= w.limit; p++ {
		h, err := w.bytes(p, frameHeaderLen)
		if err != nil {
			return 0, frameHeader{}, err
		}
		fh, ok := parseFrameHeader(h)
		if ok && int64(fh.n) <= w.limit-p-frameHeaderLen && (!prevKnown || fh.seq > prev) {
			return p, fh, nil
		}
	}
	return w.limit, frameHeader{}, nil
}
