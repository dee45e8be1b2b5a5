// Package quic reads the ClientHello out of a QUIC connection's client
// Initial packets. Initial packets are encrypted with keys anyone can derive
// from the packet's destination connection ID and a salt published for each
// version (RFC 9001 section 5.2 for v1, RFC 9369 section 3.3.1 for v2), so a
// passive sensor can remove header protection, decrypt them, and gather the
// CRYPTO frames that carry the TLS ClientHello, which may span several
// Initials when post-quantum key shares make it large.
//
// It is a leaf: it keeps no input beyond the bounded CRYPTO buffer, checks
// every length, and reports bad input as *Error with a reason and offset.
package quic

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// QUIC versions whose Initials can be opened.
const (
	V1      = 0x00000001
	V2      = 0x6b3343cf
	draft29 = 0xff00001d
)

var (
	saltV1      = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltV2      = []byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
	saltDraft23 = []byte{0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02}
	saltDraft29 = []byte{0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99}
)

// Reason says why a datagram could not be used.
type Reason uint8

// Reasons.
const (
	ReasonNone      Reason = iota
	ReasonTruncated        // a field runs past the datagram
	ReasonVersion          // not a version whose Initial keys are published
	ReasonHeader           // not a client Initial, or an impossible header
	ReasonDecrypt          // the AEAD tag did not verify
	ReasonFrame            // a frame that cannot be in an Initial, or malformed
	ReasonTooLarge         // the CRYPTO stream exceeds the bound
	numReasons
)

var reasonNames = [...]string{"", "truncated", "version", "header", "decrypt", "frame", "too_large"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// NumReasons is the number of Reason values, for counters.
const NumReasons = int(numReasons)

// Error is a failure at Offset bytes into the datagram.
type Error struct {
	Reason Reason
	Offset int
}

func (e *Error) Error() string { return fmt.Sprintf("quic: %s at offset %d", e.Reason, e.Offset) }

// IsLongHeaderInitial reports whether b starts with a long-header Initial
// packet of a version this package can open.
func IsLongHeaderInitial(b []byte) (version uint32, ok bool) {
	if len(b) < 7 || b[0]&0xc0 != 0xc0 {
		return 0, false
	}
	v := binary.BigEndian.Uint32(b[1:5])
	if _, ok := versionInfo(v); !ok {
		return v, false
	}
	return v, packetType(v, b[0]) == typeInitial
}

const typeInitial = 0

// packetType maps the long-header type bits to v1 numbering: v2 rotated the
// values (Initial is 0b01 there).
func packetType(v uint32, b0 byte) byte {
	t := b0 >> 4 & 3
	if v == V2 {
		return (t + 3) & 3
	}
	return t
}

type version struct {
	salt                 []byte
	keyLabel, ivLabel    string
	hpLabel, clientLabel string
}

func versionInfo(v uint32) (version, bool) {
	switch {
	case v == V1:
		return version{saltV1, "quic key", "quic iv", "quic hp", "client in"}, true
	case v == V2:
		return version{saltV2, "quicv2 key", "quicv2 iv", "quicv2 hp", "client in"}, true
	case v >= draft29 && v <= 0xff000022:
		// Drafts 29 to 34 share one salt.
		return version{saltDraft29, "quic key", "quic iv", "quic hp", "client in"}, true
	case v >= 0xff000017 && v < draft29:
		// Drafts 23 to 28 share the one before.
		return version{saltDraft23, "quic key", "quic iv", "quic hp", "client in"}, true
	}
	return version{}, false
}

// expandLabel is TLS 1.3's HKDF-Expand-Label with an empty context.
func expandLabel(secret []byte, label string, n int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = append(info, byte(n>>8), byte(n), byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	out, err := hkdf.Expand(sha256.New, secret, string(info), n)
	if err != nil {
		panic("BUG: hkdf.Expand: " + err.Error()) // n is far below its limit
	}
	return out
}

// Keys are the client Initial packet protection keys of one connection.
type Keys struct {
	Key, IV, HP []byte
}

// ClientKeys derives the client's Initial keys from the destination
// connection ID of its first Initial.
func ClientKeys(v uint32, dcid []byte) (Keys, bool) {
	vi, ok := versionInfo(v)
	if !ok {
		return Keys{}, false
	}
	initial, err := hkdf.Extract(sha256.New, dcid, vi.salt)
	if err != nil {
		return Keys{}, false
	}
	client := expandLabel(initial, vi.clientLabel, 32)
	return Keys{
		Key: expandLabel(client, vi.keyLabel, 16),
		IV:  expandLabel(client, vi.ivLabel, 12),
		HP:  expandLabel(client, vi.hpLabel, 16),
	}, true
}
