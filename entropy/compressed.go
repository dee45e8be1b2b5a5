package entropy

import (
	"encoding/binary"
	"hash/crc32"
)

// zstdFrame checks a Zstandard frame header and its block headers (RFC
// 8878, 3.1.1). A block cut by the prefix is checked as far as it goes:
// a compressed block's literals section header must fit the block; a raw
// block that runs past the prefix proves nothing and fails.
func zstdFrame(p []byte) bool {
	if len(p) < 6 {
		return false
	}
	fhd := p[4]
	if fhd&0x08 != 0 { // reserved bit
		return false
	}
	single := fhd&0x20 != 0
	off := 5
	var window uint64
	if !single {
		wd := p[off]
		off++
		exp := uint64(wd >> 3)
		if exp > 17 { // a window over 128 MiB: refused by decoders by default
			return false
		}
		base := uint64(1) << (10 + exp)
		window = base + base/8*uint64(wd&7)
	}
	if fhd&3 != 0 {
		// A dictionary's frame cannot be decoded without it, and the
		// stream's first bytes hardly ever are one: leave it to statistics.
		return false
	}
	fcsLen := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcsLen == 0 && single {
		fcsLen = 1
	}
	if off+fcsLen > len(p) {
		return false
	}
	var fcs uint64
	for i := fcsLen - 1; i >= 0; i-- {
		fcs = fcs<<8 | uint64(p[off+i])
	}
	if fcsLen == 2 {
		fcs += 256
	}
	off += fcsLen
	if single {
		window = fcs
	}
	blockMax := min(window, 128<<10)
	// left is what the frame has still to produce, when its header says.
	left, known := fcs, fcsLen > 0
	blocks := 0
	for off+3 <= len(p) {
		h := uint32(p[off]) | uint32(p[off+1])<<8 | uint32(p[off+2])<<16
		off += 3
		last, typ, size := h&1 == 1, (h>>1)&3, int(h>>3)
		if typ == 3 || uint64(size) > blockMax {
			return false
		}
		content := size
		if typ != 2 {
			if known && uint64(size) > left {
				return false
			}
			left -= uint64(size)
		}
		switch typ {
		case 0:
			if off+size > len(p) && blocks == 0 {
				return false
			}
		case 1:
			content = 1
		case 2:
			if !zstdLiterals(p[off:min(off+size, len(p))], size, blocks == 0) {
				return false
			}
			if known && uint64(size) > left+64 {
				return false // compressed data larger than what it gives
			}
			known = false // what it produces is not read here
		}
		blocks++
		off += content
		if last {
			return !known || left == 0
		}
	}
	return blocks > 0
}

// zstdLiterals checks the literals section header at the start of a
// compressed block of size bytes, b being what the prefix holds of it, and
// the sequences section header when the prefix reaches it.
func zstdLiterals(b []byte, size int, first bool) bool {
	if len(b) < 5 {
		return len(b) > 0
	}
	typ, sf := b[0]&3, (b[0]>>2)&3
	var regen, comp, hdr int
	switch typ {
	case 0, 1: // raw or RLE literals
		switch sf {
		case 0, 2:
			regen, hdr = int(b[0]>>3), 1
		case 1:
			regen, hdr = int(b[0]>>4)|int(b[1])<<4, 2
		case 3:
			regen, hdr = int(b[0]>>4)|int(b[1])<<4|int(b[2])<<12, 3
		}
		comp = regen
		if typ == 1 {
			comp = 1
		}
	default: // Huffman-coded literals, with a new tree or the last one's
		if typ == 3 && first {
			return false // no earlier block's tree to reuse
		}
		v := uint64(binary.LittleEndian.Uint32(b[:4])) | uint64(b[4])<<32
		switch sf {
		case 0, 1:
			regen, comp, hdr = int(v>>4&0x3ff), int(v>>14&0x3ff), 3
		case 2:
			regen, comp, hdr = int(v>>4&0x3fff), int(v>>18&0x3fff), 4
		case 3:
			regen, comp, hdr = int(v>>4&0x3ffff), int(v>>22&0x3ffff), 5
		}
		if comp == 0 {
			return false
		}
		if typ == 2 && hdr < len(b) {
			// The Huffman tree description: FSE-compressed weights of hb
			// bytes, or hb-127 weights of four bits each.
			hb := int(b[hdr])
			if hb < 128 && (hb == 0 || hb >= comp) || hb >= 128 && 1+(hb-127+1)/2 >= comp {
				return false
			}
		}
	}
	if regen > 128<<10 || hdr+comp > size {
		return false
	}
	seq := hdr + comp
	if seq >= len(b) {
		return true
	}
	n := b[seq]
	switch {
	case n == 0:
		return seq+1 == size // no sequences: the block ends here
	case n < 128:
		seq++
	case n < 255:
		seq += 2
	default:
		seq += 3
	}
	if seq >= len(b) {
		return true
	}
	return b[seq]&3 == 0 // the symbol compression modes' reserved bits
}

// xzHeaders checks an xz stream header and the first block header, each
// with its CRC32 (the .xz file format, 2.1.1 and 3.1).
func xzHeaders(p []byte) bool {
	if len(p) < 13 || p[6] != 0 || p[7]&0xf0 != 0 {
		return false
	}
	if crc32.ChecksumIEEE(p[6:8]) != binary.LittleEndian.Uint32(p[8:12]) {
		return false
	}
	b := p[12:]
	if b[0] == 0 {
		// The index of a stream with no blocks: no records, padding and
		// its CRC32 (a bare 0 byte is what 1 random tail in 256 starts with).
		return len(b) >= 8 && b[1] == 0 && b[2] == 0 && b[3] == 0 &&
			crc32.ChecksumIEEE(b[:4]) == binary.LittleEndian.Uint32(b[4:8])
	}
	n := (int(b[0]) + 1) * 4
	if n > len(b) || b[1]&0x3c != 0 {
		return false
	}
	return crc32.ChecksumIEEE(b[:n-4]) == binary.LittleEndian.Uint32(b[n-4:n])
}

// pngHeader checks the PNG signature's IHDR chunk: its length, fields and
// CRC (PNG, 11.2.2).
func pngHeader(p []byte) bool {
	if len(p) < 33 || binary.BigEndian.Uint32(p[8:12]) != 13 || string(p[12:16]) != "IHDR" {
		return false
	}
	w, h := binary.BigEndian.Uint32(p[16:20]), binary.BigEndian.Uint32(p[20:24])
	depth, color := p[24], p[25]
	if w == 0 || h == 0 || w > 1<<31 || h > 1<<31 || p[26] != 0 || p[27] != 0 || p[28] > 1 {
		return false
	}
	switch depth {
	case 1, 2, 4, 8, 16:
	default:
		return false
	}
	switch color {
	case 0, 2, 3, 4, 6:
	default:
		return false
	}
	return crc32.ChecksumIEEE(p[12:29]) == binary.BigEndian.Uint32(p[29:33])
}

// jpegMarkers walks the marker segments after a JPEG's SOI: each a known
// marker with a sane length, up to the start of scan, two whole segments,
// or an APPn segment past the prefix whose identifier is a name.
func jpegMarkers(p []byte) bool {
	off, segs := 2, 0
	for off+4 <= len(p) {
		if p[off] != 0xff {
			return false
		}
		m := p[off+1]
		if m == 0xff { // fill byte
			off++
			continue
		}
		n := int(binary.BigEndian.Uint16(p[off+2:]))
		if n < 2 || !jpegSegment(m) {
			return false
		}
		body := p[off+4 : min(off+2+n, len(p))]
		switch {
		case m == 0xda: // SOS: one to four components
			ns := 0
			if len(body) > 0 {
				ns = int(body[0])
			}
			return ns >= 1 && ns <= 4 && n == 6+2*ns
		case m == 0xdd && n != 4:
			return false
		case off+2+n > len(p):
			return segs >= 1 || m >= 0xe0 && m <= 0xef && appName(body)
		}
		segs++
		if segs >= 2 {
			return true
		}
		off += 2 + n
	}
	return false
}

func jpegSegment(m byte) bool {
	switch {
	case m >= 0xc0 && m <= 0xcf:
		return m != 0xc8
	case m >= 0xe0 && m <= 0xef:
		return true
	}
	return m == 0xdb || m == 0xdd || m == 0xda || m == 0xfe
}

// appName: an APPn identifier, a printable name of at least four bytes
// ended by NUL (JFIF, Exif, ICC_PROFILE, an XMP namespace).
func appName(b []byte) bool {
	for i, v := range b {
		if v == 0 {
			return i >= 4
		}
		if v < 0x20 || v >= 0x7f {
			return false
		}
	}
	return false
}

// mp4FileType checks an ISO base media file's leading ftyp box: a size
// that is a whole number of brands, printable brands, and a next box
// header that names a type, when the prefix holds it.
func mp4FileType(p []byte) bool {
	size := int(binary.BigEndian.Uint32(p[:4]))
	if size < 16 || size > 1024 || size%4 != 0 || size > len(p) {
		return false
	}
	for i := 8; i < size; i += 4 {
		if i == 12 {
			continue // minor version
		}
		if !brand(p[i : i+4]) {
			return false
		}
	}
	if size+8 <= len(p) {
		return brand(p[size+4 : size+8])
	}
	return true
}

func brand(b []byte) bool {
	for _, v := range b {
		if !(v >= 'a' && v <= 'z' || v >= 'A' && v <= 'Z' || v >= '0' && v <= '9' || v == ' ') {
			return false
		}
	}
	return true
}
