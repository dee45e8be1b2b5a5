package entropy

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// zip checks a zip local file header (APPNOTE 4.3.7): version, flags,
// method, date, sizes, a printable name and well-formed extra fields. An
// entry with the encryption flag, or with the WinZip AES extra field
// (0x9901), is an encrypted container; a deflated entry must decode.
func (x *Examiner) zip(p []byte) Verdict {
	bad := Verdict{Unknown, MagicWithoutStructure}
	if len(p) < 30 {
		return bad
	}
	le := binary.LittleEndian
	version, flags, method := le.Uint16(p[4:]), le.Uint16(p[6:]), le.Uint16(p[8:])
	tm, date := le.Uint16(p[10:]), le.Uint16(p[12:])
	csize, usize := le.Uint32(p[18:]), le.Uint32(p[22:])
	nameLen, extraLen := int(le.Uint16(p[26:])), int(le.Uint16(p[28:]))
	if version&0xff > 63 || version>>8 > 30 || flags&0xc780 != 0 {
		return bad
	}
	switch method {
	case 0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 97, 98, 99:
	default:
		return bad
	}
	if tm != 0 || date != 0 {
		month, day := date>>5&15, date&31
		if month < 1 || month > 12 || day < 1 || tm>>11 > 23 || tm>>5&63 > 59 || tm&31 > 29 {
			return bad
		}
	}
	encrypted := flags&1 != 0
	if flags&8 == 0 && method == 0 && csize != 0xffffffff {
		extra := uint32(0)
		if encrypted {
			extra = 12 // the traditional encryption header
		}
		if csize != usize+extra {
			return bad
		}
	}
	if nameLen == 0 || nameLen > 1024 || extraLen > 1024 || 30+nameLen > len(p) {
		return bad
	}
	for _, v := range p[30 : 30+nameLen] {
		if v < 0x20 || v == 0x7f {
			return bad
		}
	}
	aes := false
	ext := p[30+nameLen : min(30+nameLen+extraLen, len(p))]
	for len(ext) >= 4 {
		id, n := le.Uint16(ext), int(le.Uint16(ext[2:]))
		if 4+n > len(ext) {
			if 30+nameLen+extraLen <= len(p) {
				return bad // the fields do not tile the extra block
			}
			break
		}
		if id == 0x9901 {
			if n != 7 || string(ext[6:8]) != "AE" || ext[8] < 1 || ext[8] > 3 {
				return bad
			}
			aes = true
		}
		ext = ext[4+n:]
	}
	if 30+nameLen+extraLen <= len(p) && len(ext) != 0 {
		return bad
	}
	switch {
	case aes != (method == 99), aes && !encrypted:
		return bad
	case aes:
		return Verdict{Encrypted, ZipAESEntry}
	case encrypted:
		return Verdict{Encrypted, ZipEncryptedEntry}
	}
	data := 30 + nameLen + extraLen
	if method == 8 && data < len(p) {
		end := len(p)
		if flags&8 == 0 && uint64(data)+uint64(csize) < uint64(end) {
			end = data + int(csize)
		}
		if !x.inflate(p[data:end]) {
			return bad
		}
	}
	return Verdict{Compressed, ZipEntry}
}

// aesCoder is the 7z method id of AES-256 with a SHA-256 key, after its
// coder flags byte (an id of four bytes).
var aesCoder = []byte{0x06, 0xf1, 0x07, 0x01}

// sevenZip checks the 7z signature header: its CRC over the next header's
// offset, size and CRC. When the next header lies in the prefix (a small
// archive) its CRC is checked too, and an encoded header whose coder is
// AES means the archive's names and data are encrypted.
func sevenZip(p []byte) Verdict {
	if len(p) < 32 || p[6] != 0 {
		return Verdict{Unknown, MagicWithoutStructure}
	}
	le := binary.LittleEndian
	if crc32.ChecksumIEEE(p[12:32]) != le.Uint32(p[8:12]) {
		return Verdict{Unknown, MagicWithoutStructure}
	}
	off, size := le.Uint64(p[12:]), le.Uint64(p[20:])
	if off > uint64(len(p)) || size > uint64(len(p)) || 32+off+size > uint64(len(p)) || size == 0 {
		return Verdict{Compressed, SevenZipHeader}
	}
	h := p[32+off : 32+off+size]
	if crc32.ChecksumIEEE(h) != le.Uint32(p[28:32]) {
		return Verdict{Unknown, MagicWithoutStructure}
	}
	if i := bytes.Index(h, aesCoder); h[0] == 0x17 && i > 0 && h[i-1]&0x0f == 4 {
		return Verdict{Encrypted, SevenZipEncryptedHeader}
	}
	return Verdict{Compressed, SevenZipHeader}
}
