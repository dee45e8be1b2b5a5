package spool

import (
	"encoding/binary"
	"hash/crc32"
)

// The on-disk layout, little-endian throughout. doc.go describes it for
// people; these constants and the functions below are the only code that
// knows it.
const (
	version = 1

	// A segment file starts with a header: magic, version, flags (0), the
	// segment's id (which its name also spells), and a CRC32C of those 20
	// bytes.
	segMagic     = "OFSPOOL\x00"
	segHeaderLen = 24

	// Each entry is a frame: a header of the payload's length, the
	// entry's sequence number, the payload's CRC32C and a CRC32C of those
	// 16 bytes, then the payload. The header has its own checksum so that
	// a damaged length is recognised before it is believed: after a bad
	// header the reader looks for the next good one instead of jumping by
	// a made-up length.
	frameHeaderLen = 20

	// The cursor file: magic, version, flags (0), the segment id and
	// offset of the oldest unacknowledged entry, the sequence number of
	// the last acknowledged one, and a CRC32C of the 36 bytes before it.
	cursorMagic = "OFCURSOR"
	cursorLen   = 40
)

// MaxEntryBytes is the largest entry a spool holds. Append refuses larger
// ones and a reader takes a larger length field for damage, so a damaged
// length never becomes a large allocation.
const MaxEntryBytes = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func appendSegHeader(b []byte, id uint64) []byte {
	start := len(b)
	b = append(b, segMagic...)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, id)
	return binary.LittleEndian.AppendUint32(b, checksum(b[start:]))
}

// segHeaderStatus is what a segment header says about its file.
type segHeaderStatus int

const (
	segHeaderOK segHeaderStatus = iota
	segHeaderBad
	segHeaderNewer // a later version of Outflow wrote it
)

// parseSegHeader checks h (at least segHeaderLen bytes) against the id the
// file's name gives.
func parseSegHeader(h []byte, id uint64) segHeaderStatus {
	if string(h[:8]) != segMagic ||
		binary.LittleEndian.Uint32(h[20:24]) != checksum(h[:20]) {
		return segHeaderBad
	}
	if binary.LittleEndian.Uint16(h[8:10]) > version {
		return segHeaderNewer
	}
	if binary.LittleEndian.Uint16(h[8:10]) != version ||
		binary.LittleEndian.Uint64(h[12:20]) != id {
		return segHeaderBad
	}
	return segHeaderOK
}

func appendFrameHeader(b []byte, payload []byte, seq uint64) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, checksum(payload))
	return binary.LittleEndian.AppendUint32(b, checksum(b[start:]))
}

// frameHeader is a frame header whose own checksum is good.
type frameHeader struct {
	n   int // payload length
	seq uint64
	crc uint32 // the payload's
}

// parseFrameHeader reads h (at least frameHeaderLen bytes); ok is false
// when its checksum is wrong or its length is more than an entry may be.
func parseFrameHeader(h []byte) (fh frameHeader, ok bool) {
	if binary.LittleEndian.Uint32(h[16:20]) != checksum(h[:16]) {
		return fh, false
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > MaxEntryBytes {
		return fh, false
	}
	return frameHeader{
		n:   int(n),
		seq: binary.LittleEndian.Uint64(h[4:12]),
		crc: binary.LittleEndian.Uint32(h[12:16]),
	}, true
}

// position is a place in the spool: a segment and a byte offset in it.
type position struct {
	seg uint64
	off int64
}

// cursor is what the cursor file holds: where the oldest unacknowledged
// entry starts and the sequence number of the last acknowledged one (0:
// none yet).
type cursor struct {
	pos   position
	acked uint64
}

func encodeCursor(c cursor) []byte {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorMagic...)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, c.pos.seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.pos.off))
	b = binary.LittleEndian.AppendUint64(b, c.acked)
	return binary.LittleEndian.AppendUint32(b, checksum(b))
}

// cursorStatus is what parseCursor made of a cursor file.
type cursorStatus int

const (
	cursorOK cursorStatus = iota
	cursorBad
	cursorNewer
)

func parseCursor(b []byte) (cursor, cursorStatus) {
	if len(b) != cursorLen || string(b[:8]) != cursorMagic ||
		binary.LittleEndian.Uint32(b[36:40]) != checksum(b[:36]) {
		return cursor{}, cursorBad
	}
	if v := binary.LittleEndian.Uint16(b[8:10]); v > version {
		return cursor{}, cursorNewer
	} else if v != version {
		return cursor{}, cursorBad
	}
	off := binary.LittleEndian.Uint64(b[20:28])
	if off > 1<<62 {
		return cursor{}, cursorBad
	}
	return cursor{
		pos:   position{seg: binary.LittleEndian.Uint64(b[12:20]), off: int64(off)},
		acked: binary.LittleEndian.Uint64(b[28:36]),
	}, cursorOK
}
