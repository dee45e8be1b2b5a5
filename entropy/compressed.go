package entropy

import (
	"encoding/binary"
	"hash/crc32"
)

// zstdFrame checks a Zstandard frame (zstdBlocks) and says how long its
// frame header is: magic, descriptor, window, dictionary id and content
// size.
func zstdFrame(p []byte) (ok bool, hdr int) {
	hdr = len(magicZstd)
	if len(p) > 4 {
		fhd := p[4]
		fcs := [4]int{0, 2, 4, 8}[fhd>>6]
		if fcs == 0 && fhd&0x20 != 0 {
			fcs = 1
		}
		hdr += 1 + int(1-fhd>>5&1) + [4]int{0, 1, 2, 4}[fhd&3] + fcs
	}
	return zstdBlocks(p), min(hdr, len(p))
}

// zstdBlocks checks a Zstandard frame header and its block headers (RFC
// 8878, 3.1.1). A block cut by the prefix is checked as far as it goes:
// a compressed block's literals section header must fit the block; a raw
// block that runs past the prefix proves nothing and fails.
func zstdBlocks(p []byte) bool {
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
	modes := b[seq]
	if modes&3 != 0 { // the symbol compression modes' reserved bits
		return false
	}
	// Literal lengths, offsets and match lengths (RFC 8878, 3.1.1.3.2.1):
	// a frame's first block has no earlier table to repeat, and the first
	// table described is an RLE symbol or an FSE accuracy log within that
	// code's bounds.
	maxSym, maxLog := [3]byte{35, 31, 52}, [3]byte{9, 8, 9}
	for i := range 3 {
		mode := modes >> (6 - 2*i) & 3
		if mode == 3 && first {
			return false
		}
		if mode == 0 {
			continue
		}
		if seq+1 >= len(b) {
			return true
		}
		v := b[seq+1]
		if mode == 1 {
			return v <= maxSym[i]
		}
		return v&15+5 <= maxLog[i]
	}
	return true
}

// xzHeaders checks an xz stream header and the first block header, each
// with its CRC32 (the .xz file format, 2.1.1 and 3.1); hdr is how much of
// them held.
func xzHeaders(p []byte) (ok bool, hdr int) {
	hdr = min(len(p), len(magicXz))
	if len(p) < 13 || p[6] != 0 || p[7]&0xf0 != 0 {
		return false, hdr
	}
	if crc32.ChecksumIEEE(p[6:8]) != binary.LittleEndian.Uint32(p[8:12]) {
		return false, hdr
	}
	b := p[12:]
	if b[0] == 0 {
		// The index of a stream with no blocks: no records, padding and
		// its CRC32 (a bare 0 byte is what 1 random tail in 256 starts with).
		return len(b) >= 8 && b[1] == 0 && b[2] == 0 && b[3] == 0 &&
			crc32.ChecksumIEEE(b[:4]) == binary.LittleEndian.Uint32(b[4:8]), 12
	}
	n := (int(b[0]) + 1) * 4
	if n > len(b) || b[1]&0x3c != 0 {
		return false, 12
	}
	if crc32.ChecksumIEEE(b[:n-4]) != binary.LittleEndian.Uint32(b[n-4:n]) {
		return false, 12
	}
	return true, 12 + n
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
