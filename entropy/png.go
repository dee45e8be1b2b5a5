package entropy

import (
	"encoding/binary"
	"hash/crc32"
)

// png checks the IHDR chunk, then walks the chunks after it, each whole
// one's CRC, to the first IDAT, whose data must decode as zlib (PNG 10.1:
// the image data is one zlib stream split across the IDAT chunks). A PNG
// whose IDAT lies past the prefix, or starts too close to its end, leaves
// the class to the statistics of what follows the chunks walked.
func (x *Examiner) png(p []byte) Verdict {
	if !pngIHDR(p) {
		return Verdict{Unknown, MagicWithoutStructure, min(len(p), len(magicPNG))}
	}
	be := binary.BigEndian
	off := 33
	for off+8 <= len(p) {
		n, typ := be.Uint32(p[off:]), p[off+4:off+8]
		data := off + 8
		if n > 1<<31-1 || !chunkType(typ) {
			return Verdict{Unknown, MagicWithoutStructure, off}
		}
		end := data + int(n)
		if string(typ) == "IDAT" {
			d := p[data:min(end, len(p))]
			if end > len(p) && len(d) < 32 {
				break // too little of it to decode to anything
			}
			if x.zlib(d) {
				return Verdict{Compressed, PNGHeader, data}
			}
			return Verdict{Unknown, MagicWithoutStructure, data}
		}
		if end+4 > len(p) {
			break // an ancillary chunk past the prefix
		}
		if crc32.ChecksumIEEE(p[off+4:end]) != be.Uint32(p[end:]) || string(typ) == "IEND" {
			return Verdict{Unknown, MagicWithoutStructure, off}
		}
		off = end + 4
	}
	return Verdict{Unknown, PayloadByStatistics, min(off, len(p))}
}

// pngIHDR checks the PNG signature's IHDR chunk: its length, fields and
// CRC (PNG, 11.2.2).
func pngIHDR(p []byte) bool {
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

// chunkType: four ASCII letters (PNG 5.4).
func chunkType(b []byte) bool {
	for _, v := range b {
		if !(v >= 'a' && v <= 'z' || v >= 'A' && v <= 'Z') {
			return false
		}
	}
	return true
}
