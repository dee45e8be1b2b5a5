package entropy

import (
	"bytes"
	"encoding/binary"
)

// zipKind is what one local file header says of its entry.
type zipKind uint8

const (
	zipBad       zipKind = iota // not a well-formed local file header
	zipEmpty                    // a directory or an empty file: no data
	zipData                     // data, not encrypted, that decodes as its method says
	zipUnchecked                // data stored as it is, or by a method no decoder here reads
	zipCorrupt                  // a well-formed header whose data is not what its method says
	zipEncrypted                // the encryption flag (traditional PKWARE or strong)
	zipAES                      // the WinZip AES extra field (0x9901)
)

// zip walks the local file headers in the prefix (APPNOTE 4.3.7). An
// encrypted entry anywhere makes the stream encrypted: `zip -r -P` stores
// a directory first, unencrypted and without data, before the files it
// encrypts. It is compressed only when an entry's data decoded as its
// method says and no entry's data failed to (issue 15: the headers alone
// are no evidence). Entries stored as they are, or by a method not
// decoded here, leave the class to the statistics of what follows the
// headers. Header in the verdict is where the last header walked ends.
func (x *Examiner) zip(p []byte) Verdict {
	data, unchecked, hdr := false, false, 0
	for off := 0; off < len(p); {
		if !bytes.HasPrefix(p[off:], magicZip) {
			if len(p)-off >= 2 && string(p[off:off+2]) != "PK" {
				// After an entry whose size its header gives comes another
				// record (APPNOTE 4.3.6), not bytes of no format.
				return Verdict{Unknown, MagicWithoutStructure, hdr}
			}
			break
		}
		kind, start, next := x.zipEntry(p[off:])
		switch kind {
		case zipBad:
			if off == 0 {
				return Verdict{Unknown, MagicWithoutStructure, len(magicZip)}
			}
			next = -1 // a later header cut by the prefix: judge what came before
		case zipAES:
			return Verdict{Encrypted, ZipAESEntry, off + start}
		case zipEncrypted:
			return Verdict{Encrypted, ZipEncryptedEntry, off + start}
		case zipCorrupt:
			return Verdict{Unknown, MagicWithoutStructure, off + start}
		case zipData:
			data = true
		case zipUnchecked:
			unchecked = true
		}
		if kind != zipBad {
			hdr = off + start
		}
		if next <= 0 {
			break
		}
		off += next
	}
	switch {
	case data:
		return Verdict{Compressed, ZipEntry, hdr}
	case unchecked:
		return Verdict{Unknown, PayloadByStatistics, hdr}
	}
	return Verdict{Unknown, MagicWithoutStructure, hdr}
}

// zipEntry checks the local file header at the start of p: version, flags,
// method, date, sizes, a printable name and well-formed extra fields, and
// then the entry's data, as far as p goes, with the decoder its method
// names. start is where the data starts; next is where the following
// header starts, 0 when the prefix does not say.
func (x *Examiner) zipEntry(p []byte) (kind zipKind, start, next int) {
	if len(p) < 30 {
		return zipBad, 0, 0
	}
	le := binary.LittleEndian
	version, flags, method := le.Uint16(p[4:]), le.Uint16(p[6:]), le.Uint16(p[8:])
	tm, date := le.Uint16(p[10:]), le.Uint16(p[12:])
	csize, usize := le.Uint32(p[18:]), le.Uint32(p[22:])
	nameLen, extraLen := int(le.Uint16(p[26:])), int(le.Uint16(p[28:]))
	if version&0xff > 63 || version>>8 > 30 || flags&0xc780 != 0 {
		return zipBad, 0, 0
	}
	switch method {
	case 0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 97, 98, 99:
	default:
		return zipBad, 0, 0
	}
	if tm != 0 || date != 0 {
		month, day := date>>5&15, date&31
		if month < 1 || month > 12 || day < 1 || tm>>11 > 23 || tm>>5&63 > 59 || tm&31 > 29 {
			return zipBad, 0, 0
		}
	}
	encrypted := flags&1 != 0
	if flags&8 == 0 && method == 0 && csize != 0xffffffff {
		extra := uint32(0)
		if encrypted {
			extra = 12 // the traditional encryption header
		}
		if csize != usize+extra {
			return zipBad, 0, 0
		}
	}
	if nameLen == 0 || nameLen > 1024 || extraLen > 1024 || 30+nameLen > len(p) {
		return zipBad, 0, 0
	}
	for _, v := range p[30 : 30+nameLen] {
		if v < 0x20 || v == 0x7f {
			return zipBad, 0, 0
		}
	}
	aes := false
	ext := p[30+nameLen : min(30+nameLen+extraLen, len(p))]
	for len(ext) >= 4 {
		id, n := le.Uint16(ext), int(le.Uint16(ext[2:]))
		if 4+n > len(ext) {
			if 30+nameLen+extraLen <= len(p) {
				return zipBad, 0, 0 // the fields do not tile the extra block
			}
			break
		}
		if id == 0x9901 {
			if n != 7 || string(ext[6:8]) != "AE" || ext[8] < 1 || ext[8] > 3 {
				return zipBad, 0, 0
			}
			aes = true
		}
		ext = ext[4+n:]
	}
	if 30+nameLen+extraLen <= len(p) && len(ext) != 0 {
		return zipBad, 0, 0
	}
	start = min(30+nameLen+extraLen, len(p))
	switch {
	case aes != (method == 99), aes && !encrypted:
		return zipBad, 0, 0
	case aes:
		return zipAES, start, 0
	case encrypted:
		return zipEncrypted, start, 0
	}
	known := flags&8 == 0 && csize != 0xffffffff // sizes in this header, not in a descriptor after the data
	if known && csize == 0 {
		return zipEmpty, start, start
	}
	if known {
		next = start + int(csize)
	} else if i := bytes.Index(p[start:], magicZip); i >= 0 {
		next = start + i // after the data descriptor
	}
	end := len(p)
	if next > 0 && next < end {
		end = next
	}
	if end-start < 32 && end == len(p) && next != end {
		// The data begins too close to the prefix's end to decode to
		// anything: it lies, in effect, past the prefix.
		return zipUnchecked, start, next
	}
	d := p[start:end]
	var ok bool
	switch method {
	case 8:
		ok = x.inflate(d)
	case 12:
		ok = x.bzip2(d)
	case 93:
		ok, _ = zstdFrame(d)
	case 95:
		ok, _ = xzHeaders(d)
	default:
		// Stored data is whatever was stored, and the other methods
		// (shrink, implode, deflate64, LZMA, WavPack, PPMd) have no
		// decoder here: no evidence either way.
		return zipUnchecked, start, next
	}
	if !ok {
		return zipCorrupt, start, next
	}
	return zipData, start, next
}
