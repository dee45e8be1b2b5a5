package entropy

import (
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
)

// drain reads r to its end, or to maxInflate bytes, and reports whether
// it gave output without a format error. A stream cut short is fine: the
// prefix of a long stream ends mid-block.
func (x *Examiner) drain(r io.Reader) bool { return x.drainCut(r, false) }

// drainCut is drain; with cutOK, a stream cut before its first output
// counts too (a block-sorting decoder gives nothing until a block is whole).
func (x *Examiner) drainCut(r io.Reader, cutOK bool) bool {
	total := 0
	for total < maxInflate {
		n, err := r.Read(x.out[:])
		total += n
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return total > 0
		case errors.Is(err, io.ErrUnexpectedEOF):
			return total > 0 || cutOK
		default:
			return false
		}
	}
	return true
}

// gzip decodes the first member of a gzip stream; hdr is the length of
// its header (with the file name and comment) when that parsed.
func (x *Examiner) gzip(p []byte) (ok bool, hdr int) {
	x.src.Reset(p)
	if x.gz == nil {
		x.gz = new(gzip.Reader)
	}
	if err := x.gz.Reset(&x.src); err != nil {
		return false, len(magicGzip)
	}
	// The reader takes bytes one at a time from a bytes.Reader (an
	// io.ByteReader): what it consumed is the header.
	hdr = len(p) - x.src.Len()
	x.gz.Multistream(false)
	return x.drain(x.gz), hdr
}

// zlibHeader checks RFC 1950's two header bytes: deflate with a window of
// at most 32 KiB, no preset dictionary, and the check bits.
func zlibHeader(b []byte) bool {
	cmf, flg := b[0], b[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && flg&0x20 == 0 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// zlib decodes a zlib stream; one that ends in the prefix must match its
// Adler-32 (a random final block can end after a few symbols).
func (x *Examiner) zlib(p []byte) bool {
	// zlib.NewReader keeps no reader when the header fails: check it here,
	// so that the one reader is made once and reused.
	if len(p) < 2 || !zlibHeader(p) {
		return false
	}
	x.inner.Reset(p)
	if x.zl == nil {
		r, err := zlib.NewReader(&x.inner)
		if err != nil {
			return false
		}
		x.zl = r
	} else if err := x.zl.(zlib.Resetter).Reset(&x.inner, nil); err != nil {
		return false
	}
	return x.drain(x.zl)
}

// inflate decodes raw deflate data (RFC 1951).
func (x *Examiner) inflate(p []byte) bool {
	x.inner.Reset(p)
	if x.fl == nil {
		x.fl = flate.NewReader(&x.inner)
	} else if err := x.fl.(flate.Resetter).Reset(&x.inner, nil); err != nil {
		return false
	}
	// A stream that ended must have used its bytes up to the next zip
	// record: a random final block can end after a few symbols.
	if !x.drain(x.fl) {
		return false
	}
	return x.inner.Len() == 0 || bytes.HasPrefix(p[len(p)-x.inner.Len():], []byte("PK"))
}

// bzip2 checks a bzip2 stream header and the first block's magic by hand
// (48 bits no cipher stream matches by chance), then lets compress/bzip2
// read the block's tables and symbols as far as the prefix goes. The
// decoder allocates its block (100 KB times the level, four bytes each), so
// it runs only past the hand check.
func (x *Examiner) bzip2(p []byte) bool {
	if len(p) < 18 || p[3] < '1' || p[3] > '9' {
		return false
	}
	switch string(p[4:10]) {
	case "\x17\x72\x45\x38\x50\x90": // end of stream: an empty file
		return true
	case "\x31\x41\x59\x26\x53\x59":
	default:
		return false
	}
	// After the block CRC: the randomised bit (0 since bzip2 0.9.5) and a
	// 24-bit origin pointer inside the block.
	if p[14]&0x80 != 0 {
		return false
	}
	orig := (uint32(p[14])<<24 | uint32(p[15])<<16 | uint32(p[16])<<8 | uint32(p[17])) >> 7 & 0xffffff
	if orig >= uint32(p[3]-'0')*100000 {
		return false
	}
	x.src.Reset(p)
	return x.drainCut(bzip2.NewReader(&x.src), true)
}
