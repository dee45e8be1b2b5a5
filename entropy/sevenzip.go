package entropy

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// A 7z archive (7zFormat.txt in the 7-Zip sources) is a 32-byte signature
// header, the packed streams, and at the end the header that names their
// coders. A stream's first KiB rarely reaches that header, so the class
// comes from the packed data right after the signature header: each
// coder 7z uses leaves structure there (issue 15), AES-256 leaves none.
// The signature header alone, magic and CRC, says nothing of the class:
// `7z a -p` writes the same one whether the data is encrypted or not.

// aesCoder is the 7z method id of AES-256 with a SHA-256 key, after its
// coder flags byte (an id of four bytes).
var aesCoder = []byte{0x06, 0xf1, 0x07, 0x01}

// lzmaDict is the dictionary the LZMA decoders get: no distance in the
// maxInflate bytes decoded can reach further back.
const lzmaDict = 2 * maxInflate

// sevenZip checks the signature header's CRC, then, when the next header
// lies in the prefix (a small archive), its CRC and whether it is
// encoded with AES (`-mhe=on`), then the packed data.
func (x *Examiner) sevenZip(p []byte) Verdict {
	if len(p) < 32 || p[6] != 0 {
		return Verdict{Unknown, MagicWithoutStructure, min(len(p), len(magic7z))}
	}
	le := binary.LittleEndian
	if crc32.ChecksumIEEE(p[12:32]) != le.Uint32(p[8:12]) {
		return Verdict{Unknown, MagicWithoutStructure, len(magic7z)}
	}
	off, size := le.Uint64(p[12:]), le.Uint64(p[20:])
	packed := p[32:]
	whole := off < uint64(len(packed)) // the packed streams end in the prefix
	if whole {
		packed = packed[:off]
	}
	if whole && size != 0 && size <= uint64(len(p)) && 32+off+size <= uint64(len(p)) {
		h := p[32+off : 32+off+size]
		if crc32.ChecksumIEEE(h) != le.Uint32(p[28:32]) {
			return Verdict{Unknown, MagicWithoutStructure, 32}
		}
		if i := bytes.Index(h, aesCoder); h[0] == 0x17 && i > 0 && h[i-1]&0x0f == 4 {
			return Verdict{Encrypted, SevenZipEncryptedHeader, 32}
		}
	}
	if r := x.sevenZipPacked(packed, whole); r != SevenZipPackedUnstructured {
		return Verdict{Compressed, r, 32}
	}
	return Verdict{Unknown, SevenZipPackedUnstructured, 32}
}

// sevenZipPacked says which coder's output d, the start of the first
// packed stream, is; whole says d is the whole of the packed streams.
func (x *Examiner) sevenZipPacked(d []byte, whole bool) Reason {
	switch {
	case len(d) < 5:
	case bytes.HasPrefix(d, magicBzip2):
		if x.bzip2(d) {
			return SevenZipBzip2
		}
	case d[0] == 0:
		// A range coder's first byte is always 0, LZMA's and PPMd's
		// alike. LZMA must decode (with the default lc=3 lp=0 pb=2, as
		// 7z writes unless told otherwise). PPMd has no structure to check
		// beyond that byte and a first code below 0xffffffff: its decoder
		// reads any bytes as symbols, so a cipher stream passes it 1 time
		// in 256.
		if x.lzma(d) {
			return SevenZipLZMA
		}
		if binary.BigEndian.Uint32(d[1:5]) != 0xffffffff {
			return SevenZipPPMd
		}
	case d[0] >= 0xe0:
		// LZMA2's first chunk resets the dictionary and sets the
		// properties: control 111xxxxx. A first chunk stored as it is
		// (control 1) is the data itself, for the statistics to judge.
		if x.lzma2(d) {
			return SevenZipLZMA2
		}
	}
	if x.inflateWhole(d, whole) {
		return SevenZipDeflate
	}
	return SevenZipPackedUnstructured
}

// lzma decodes d as a raw LZMA stream behind a classic header that gives
// the default properties and no size.
func (x *Examiner) lzma(d []byte) bool {
	var h [13]byte
	h[0] = 0x5d // lc=3 lp=0 pb=2
	binary.LittleEndian.PutUint32(h[1:], lzmaDict)
	binary.LittleEndian.PutUint64(h[5:], ^uint64(0))
	x.src.Reset(h[:])
	x.inner.Reset(d)
	r, err := lzma.ReaderConfig{DictCap: lzmaDict}.NewReader(io.MultiReader(&x.src, &x.inner))
	return err == nil && x.drainLZMA(r)
}

// lzma2 decodes d as LZMA2 chunks.
func (x *Examiner) lzma2(d []byte) bool {
	// Control, unpacked and packed sizes, then the properties byte: lc +
	// lp at most 4, pb at most 4.
	if len(d) < 7 || d[5] >= 9*5*5 || d[5]%9+d[5]/9%5 > 4 || d[6] != 0 {
		return false
	}
	x.inner.Reset(d)
	r, err := lzma.Reader2Config{DictCap: lzmaDict}.NewReader2(&x.inner)
	return err == nil && x.drainLZMA(r)
}

// drainLZMA is drainCut for the lzma package, whose readers give no
// output until their buffer fills or the input ends: a stream cut before
// that is fine, an error of the format is not.
func (x *Examiner) drainLZMA(r io.Reader) bool { return x.drainCut(r, true) }

// inflateWhole decodes d as raw deflate: cut by the prefix with output, or,
// when d is the whole packed data, ending exactly at its end.
func (x *Examiner) inflateWhole(d []byte, whole bool) bool {
	x.inner.Reset(d)
	if x.fl == nil {
		x.fl = flate.NewReader(&x.inner)
	} else if err := x.fl.(flate.Resetter).Reset(&x.inner, nil); err != nil {
		return false
	}
	total := 0
	for total < maxInflate {
		n, err := x.fl.Read(x.out[:])
		total += n
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return total > 0 && whole && x.inner.Len() == 0
		case errors.Is(err, io.ErrUnexpectedEOF):
			return total > 0 && !whole
		default:
			return false
		}
	}
	return true
}
