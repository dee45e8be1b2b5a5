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
	zipData                     // data, not encrypted, that decodes
	zipEncrypted                // the encryption flag (traditional PKWARE or strong)
	zipAES                      // the WinZip AES extra field (0x9901)
)

// zip walks the local file headers in the prefix (APPNOTE 4.3.7). An
// encrypted entry anywhere makes the stream encrypted: `zip -r -P` stores
// a directory first, unencrypted and without data, before the files it
// encrypts. It is compressed only when an entry with data was seen and
// none was encrypted.
func (x *Examiner) zip(p []byte) Verdict {
	data := false
	for off, first := 0, true; off < len(p) && bytes.HasPrefix(p[off:], magicZip); first = false {
		kind, next := x.zipEntry(p[off:])
		switch kind {
		case zipBad:
			if first {
				return Verdict{Unknown, MagicWithoutStructure}
			}
			next = -1 // a later header cut by the prefix: judge what came before
		case zipAES:
			return Verdict{Encrypted, ZipAESEntry}
		case zipEncrypted:
			return Verdict{Encrypted, ZipEncryptedEntry}
		case zipData:
			data = true
		}
		if next <= 0 {
			break
		}
		off += next
	}
	if data {
		return Verdict{Compressed, ZipEntry}
	}
	return Verdict{Unknown, MagicWithoutStructure}
}

// zipEntry checks the local file header at the start of p: version, flags,
// method, date, sizes, a printable name and well-formed extra fields; a
// deflated entry's data must decode as far as p goes. next is where the
// following header starts, 0 when the prefix does not say.
func (x *Examiner) zipEntry(p []byte) (kind zipKind, next int) {
	if len(p) < 30 {
		return zipBad, 0
	}
	le := binary.LittleEndian
	version, flags, method := le.Uint16(p[4:]), le.Uint16(p[6:]), le.Uint16(p[8:])
	tm, date := le.Uint16(p[10:]), le.Uint16(p[12:])
	csize, usize := le.Uint32(p[18:]), le.Uint32(p[22:])
	nameLen, extraLen := int(le.Uint16(p[26:])), int(le.Uint16(p[28:]))
	if version&0xff > 63 || version>>8 > 30 || flags&0xc780 != 0 {
		return zipBad, 0
	}
	switch method {
	case 0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 97, 98, 99:
	default:
		return zipBad, 0
	}
	if tm != 0 || date != 0 {
		month, day := date>>5&15, date&31
		if month < 1 || month > 12 || day < 1 || tm>>11 > 23 || tm>>5&63 > 59 || tm&31 > 29 {
			return zipBad, 0
		}
	}
	encrypted := flags&1 != 0
	if flags&8 == 0 && method == 0 && csize != 0xffffffff {
		extra := uint32(0)
		if encrypted {
			extra = 12 // the traditional encryption header
		}
		if csize != usize+extra {
			return zipBad, 0
		}
	}
	if nameLen == 0 || nameLen > 1024 || extraLen > 1024 || 30+nameLen > len(p) {
		return zipBad, 0
	}
	for _, v := range p[30 : 30+nameLen] {
		if v < 0x20 || v == 0x7f {
			return zipBad, 0
		}
	}
	aes := false
	ext := p[30+nameLen : min(30+nameLen+extraLen, len(p))]
	for len(ext) >= 4 {
		id, n := le.Uint16(ext), int(le.Uint16(ext[2:]))
		if 4+n > len(ext) {
			if 30+nameLen+extraLen <= len(p) {
				return zipBad, 0 // the fields do not tile the extra block
			}
			break
		}
		if id == 0x9901 {
			if n != 7 || string(ext[6:8]) != "AE" || ext[8] < 1 || ext[8] > 3 {
				return zipBad, 0
			}
			aes = true
		}
		ext = ext[4+n:]
	}
	if 30+nameLen+extraLen <= len(p) && len(ext) != 0 {
		return zipBad, 0
	}
	switch {
	case aes != (method == 99), aes && !encrypted:
		return zipBad, 0
	case aes:
		return zipAES, 0
	case encrypted:
		return zipEncrypted, 0
	}
	start := 30 + nameLen + extraLen
	known := flags&8 == 0 && csize != 0xffffffff // sizes in this header, not in a descriptor after the data
	if known && csize == 0 {
		return zipEmpty, start
	}
	if known {
		next = start + int(csize)
	} else if i := bytes.Index(p[min(start, len(p)):], magicZip); i >= 0 {
		next = start + i // after the data descriptor
	}
	if method == 8 && start < len(p) {
		end := len(p)
		if next > 0 && next < end {
			end = next
		}
		if !x.inflate(p[start:end]) {
			return zipBad, 0
		}
	}
	return zipData, next
}
