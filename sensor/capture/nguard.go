package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

// maxBlock bounds one pcapng block. Real blocks are a packet plus options;
// a larger length is a corrupt or hostile file.
const maxBlock = 4 << 20

// ngGuard sits between a pcapng stream and pcapgo's NgReader. pcapgo sizes
// its packet buffer by an interface's declared snap length (a hostile file
// can ask for 4 GB; FuzzFileSource found it) and keeps link types in a byte,
// so the guard frames the blocks itself: it checks each block's length,
// clamps interface snap lengths, remembers each interface's full link type,
// and knows the offset of every block for error messages.
type ngGuard struct {
	r         io.Reader
	bo        binary.ByteOrder
	buf       []byte // the block being passed through
	pos       int
	offset    int64  // stream offset of the block in buf
	typ       uint32 // type of the block in buf
	next      int64  // stream offset of the next block
	linkTypes []uint16
	snap0     uint32 // the first interface's snap length: a simple packet's bound
	// ifaceBytes is what the section's interface blocks took; pcapgo
	// keeps their name, description, filter and OS strings for the
	// section's life, so their bytes are bounded, not only their count.
	ifaceBytes    int64
	maxIfaceBytes int64
	err           error
}

// errBlock is a framing error, with the offset of the block.
type errBlock struct {
	offset int64
	msg    string
}

func (e *errBlock) Error() string { return e.msg }

func (g *ngGuard) Read(p []byte) (int, error) {
	if g.pos == len(g.buf) {
		if g.err != nil {
			return 0, g.err
		}
		if err := g.fill(); err != nil {
			g.err = err
			return 0, err
		}
	}
	n := copy(p, g.buf[g.pos:])
	g.pos += n
	return n, nil
}

// fill reads the next block into buf; on any error buf is left empty, so no
// part of a bad block reaches pcapgo.
func (g *ngGuard) fill() error {
	var hdr [12]byte
	g.buf, g.pos = g.buf[:0], 0
	g.offset = g.next
	if _, err := io.ReadFull(g.r, hdr[:8]); err != nil {
		return err
	}
	typ := binary.LittleEndian.Uint32(hdr[:4])
	if typ == 0x0a0d0d0a { // section header: its byte-order magic follows
		if _, err := io.ReadFull(g.r, hdr[8:12]); err != nil {
			return io.ErrUnexpectedEOF
		}
		switch binary.LittleEndian.Uint32(hdr[8:12]) {
		case 0x1a2b3c4d:
			g.bo = binary.LittleEndian
		case 0x4d3c2b1a:
			g.bo = binary.BigEndian
		default:
			return &errBlock{g.offset, "bad byte-order magic"}
		}
		g.linkTypes, g.ifaceBytes = g.linkTypes[:0], 0
	} else if g.bo == nil {
		return &errBlock{g.offset, "no section header"}
	}
	typ = g.bo.Uint32(hdr[:4])
	length := g.bo.Uint32(hdr[4:8])
	if length < 12 || length%4 != 0 || length > maxBlock {
		return &errBlock{g.offset, fmt.Sprintf("block length %d", length)}
	}
	if cap(g.buf) < int(length) {
		g.buf = make([]byte, length)
	}
	g.buf = g.buf[:length]
	n := copy(g.buf, hdr[:8])
	if typ == 0x0a0d0d0a {
		n = copy(g.buf, hdr[:12])
	}
	if _, err := io.ReadFull(g.r, g.buf[n:]); err != nil {
		g.buf = g.buf[:0]
		return io.ErrUnexpectedEOF
	}
	body := g.buf[8 : length-4]
	if g.bo.Uint32(g.buf[length-4:]) != length {
		g.buf = g.buf[:0]
		return &errBlock{g.offset, "block lengths disagree"}
	}
	if err := g.check(typ, body, int64(length)); err != nil {
		g.buf = g.buf[:0]
		return err
	}
	g.next = g.offset + int64(length)
	g.typ = typ
	return nil
}

// maxInterfaces bounds a section's interfaces; real captures have a few.
const maxInterfaces = 4096

// DefaultInterfaceBytes is the default budget for one section's interface
// blocks: real ones are tens of bytes to a few hundred each (a name, a
// description, a filter), so a MiB is thousands of interfaces.
const DefaultInterfaceBytes = 1 << 20

// check validates the fields pcapgo would trust and clamps the snap length.
func (g *ngGuard) check(typ uint32, body []byte, length int64) error {
	switch typ {
	case 1: // interface description: link type, reserved, snap length
		if len(body) < 8 {
			return &errBlock{g.offset, "short interface block"}
		}
		if len(g.linkTypes) >= maxInterfaces {
			// pcapgo keeps state per interface: a compressed file of
			// nothing but interface blocks held gigabytes.
			return &errBlock{g.offset, fmt.Sprintf("more than %d interfaces in one section", maxInterfaces)}
		}
		if lim := g.maxIfaceBytes; lim > 0 && g.ifaceBytes+length > lim {
			return &errBlock{g.offset, fmt.Sprintf("the section's interface blocks pass the budget of %d bytes", lim)}
		}
		g.ifaceBytes += length
		g.linkTypes = append(g.linkTypes, g.bo.Uint16(body[0:2]))
		if s := g.bo.Uint32(body[4:8]); s == 0 || s > maxSnapLen {
			g.bo.PutUint32(body[4:8], maxSnapLen)
		}
		if len(g.linkTypes) == 1 {
			g.snap0 = g.bo.Uint32(body[4:8])
		}
	case 6: // enhanced packet: interface, timestamp, captured and original length
		if len(body) < 20 || g.bo.Uint32(body[12:16]) > uint32(len(body)-20) {
			return &errBlock{g.offset, "packet longer than its block"}
		}
		if int(g.bo.Uint32(body[0:4])) >= len(g.linkTypes) {
			return &errBlock{g.offset, "packet of an undeclared interface"}
		}
	case 3: // simple packet: original length, data
		if len(body) < 4 || len(g.linkTypes) == 0 {
			return &errBlock{g.offset, "bad simple packet block"}
		}
		// Its captured length is not written: it is the original length
		// cut to the first interface's snap length, and pcapgo reads that
		// much, past the block if the block is shorter.
		if min(g.bo.Uint32(body[0:4]), g.snap0) > uint32(len(body)-4) {
			return &errBlock{g.offset, "simple packet longer than its block"}
		}
	}
	return nil
}
