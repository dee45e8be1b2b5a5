package entropy

import "bytes"

// ageHeader checks an age file's version line and its first recipient
// stanza (age-encryption.org/v1).
func ageHeader(p []byte) bool {
	return bytes.HasPrefix(p, magicAge) && bytes.HasPrefix(p[len(magicAge):], []byte("-> "))
}

// OpenPGP packet tags (RFC 9580, 5) of an encrypted message.
const (
	pgpPKESK = 1  // public-key encrypted session key
	pgpSKESK = 3  // symmetric-key encrypted session key
	pgpSED   = 9  // symmetrically encrypted data (legacy)
	pgpSEIPD = 18 // symmetrically encrypted integrity protected data
	pgpAEAD  = 20 // AEAD encrypted data (LibrePGP, draft versions)
)

// openPGPStart says whether b can open an encrypted OpenPGP message: a
// packet header, old or new format, of a session key packet.
func openPGPStart(b byte) bool {
	tag, _, ok := pgpTag(b)
	return ok && (tag == pgpPKESK || tag == pgpSKESK)
}

func pgpTag(b byte) (tag byte, newFormat, ok bool) {
	switch {
	case b&0x80 == 0:
		return 0, false, false
	case b&0x40 != 0:
		return b & 0x3f, true, true
	}
	return b >> 2 & 0x0f, false, true
}

// pgpPacket reads a packet header at p and returns its tag, where its body
// starts and its length (-1 for a partial or indeterminate length).
func pgpPacket(p []byte) (tag byte, body, n int, ok bool) {
	if len(p) < 2 {
		return 0, 0, 0, false
	}
	tag, nf, ok := pgpTag(p[0])
	if !ok {
		return 0, 0, 0, false
	}
	if nf {
		switch l := int(p[1]); {
		case l < 192:
			return tag, 2, l, true
		case l < 224:
			if len(p) < 3 {
				return 0, 0, 0, false
			}
			return tag, 3, (l-192)<<8 + int(p[2]) + 192, true
		case l == 255:
			if len(p) < 6 {
				return 0, 0, 0, false
			}
			return tag, 6, int(p[2])<<24 | int(p[3])<<16 | int(p[4])<<8 | int(p[5]), true
		default:
			return tag, 2, -1, true
		}
	}
	switch p[0] & 3 {
	case 0:
		return tag, 2, int(p[1]), true
	case 1:
		if len(p) < 3 {
			return 0, 0, 0, false
		}
		return tag, 3, int(p[1])<<8 | int(p[2]), true
	case 2:
		if len(p) < 5 {
			return 0, 0, 0, false
		}
		return tag, 5, int(p[1])<<24 | int(p[2])<<16 | int(p[3])<<8 | int(p[4]), true
	}
	return tag, 1, -1, true
}

// openPGPEncrypted checks an encrypted OpenPGP message: session key
// packets with known versions and algorithms, whole in the prefix, then
// an encrypted data packet.
func openPGPEncrypted(p []byte) bool {
	esk := 0
	for off := 0; off < len(p); {
		tag, body, n, ok := pgpPacket(p[off:])
		if !ok {
			return false
		}
		switch tag {
		case pgpPKESK, pgpSKESK:
			if n < 2 || off+body+n > len(p) || !pgpSessionKey(tag, p[off+body:off+body+n]) {
				return false
			}
			esk++
			off += body + n
		case pgpSED:
			return esk > 0
		case pgpSEIPD, pgpAEAD:
			if esk == 0 || off+body >= len(p) {
				return false
			}
			v := p[off+body]
			return v == 1 || tag == pgpSEIPD && v == 2
		default:
			return false
		}
	}
	return false
}

// pgpSessionKey checks a session key packet's version and algorithms.
func pgpSessionKey(tag byte, b []byte) bool {
	switch {
	case tag == pgpPKESK && b[0] == 3:
		if len(b) < 10 {
			return false
		}
		switch b[9] { // public-key algorithm
		case 1, 2, 16, 18, 25, 26:
			return true
		}
		return false
	case tag == pgpPKESK:
		return b[0] == 6
	case b[0] == 4: // SKESK v4: cipher, then the S2K specifier
		if len(b) < 4 || b[1] < 1 || b[1] > 13 {
			return false
		}
		switch b[2] {
		case 0, 1, 3, 4:
			return b[2] == 4 || b[3] >= 1 && b[3] <= 14
		}
		return false
	}
	return b[0] == 5 || b[0] == 6
}
