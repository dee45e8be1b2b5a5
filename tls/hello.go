package tls

import (
	"errors"
	"fmt"

	"github.com/dreadl0ck/tlsx"
)

// Reason says why a handshake could not be parsed.
type Reason uint8

// Reasons, counted by the sensor.
const (
	ReasonNone      Reason = iota
	ReasonTruncated        // the bytes end inside a length-prefixed field
	ReasonMalformed        // a length disagrees with its container, or a field is impossible
	ReasonNotHello         // the message is not the hello that was expected
	ReasonTooLarge         // the message exceeds the reassembly bound
	numReasons
)

var reasonNames = [...]string{"", "truncated", "malformed", "not_hello", "too_large"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// NumReasons is the number of Reason values, for counters indexed by reason.
const NumReasons = int(numReasons)

// Error is a parse failure at Offset bytes into the handshake message.
type Error struct {
	Reason Reason
	Offset int
	Field  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("tls: %s %s at offset %d", e.Reason, e.Field, e.Offset)
}

// Is lets errors.Is match on the reason alone.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Reason == e.Reason && t.Field == "" && t.Offset == 0
}

// Sentinels for errors.Is.
var (
	ErrTruncated = &Error{Reason: ReasonTruncated}
	ErrMalformed = &Error{Reason: ReasonMalformed}
	ErrNotHello  = &Error{Reason: ReasonNotHello}
	ErrTooLarge  = &Error{Reason: ReasonTooLarge}
)

// Handshake message types and extensions that the fingerprints read.
const (
	typeClientHello = 1
	typeServerHello = 2

	extServerName     = 0x0000
	extGroups         = 0x000a
	extPointFormats   = 0x000b
	extSigAlgs        = 0x000d
	extALPN           = 0x0010
	extSupportedVers  = 0x002b
	maxListEntries    = 512 // more than any real hello carries; bounds the reused slices
	helloRandomLength = 32
)

// IsGREASE reports RFC 8701 reserved values, which fingerprints skip.
func IsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// ClientHello holds the fields of a ClientHello that Outflow reports and
// fingerprints. Byte slices borrow from the parsed message; number slices are
// owned and reused by the next ParseClientHello into the same value.
type ClientHello struct {
	Version    uint16 // legacy_version
	Ciphers    []uint16
	Extensions []uint16 // in wire order
	Groups     []uint16
	Points     []uint8
	SigAlgs    []uint16
	Versions   []uint16 // supported_versions
	SNI        []byte   // first host_name entry
	ALPN       [][]byte
}

// ServerHello holds what JA3S and the record need of a ServerHello.
type ServerHello struct {
	Version    uint16 // legacy_version
	Cipher     uint16
	Extensions []uint16
	Selected   uint16 // supported_versions (TLS 1.3), 0 when absent
	ALPN       []byte
}

// cursor is a bounds-checked reader over one handshake message; off is kept
// relative to the message start so errors point at the failing byte.
type cursor struct {
	b   []byte
	off int
	err *Error
}

func (c *cursor) fail(r Reason, field string) {
	if c.err == nil {
		c.err = &Error{Reason: r, Offset: c.off, Field: field}
	}
	c.off = len(c.b)
}

func (c *cursor) u8(field string) uint8 {
	if c.off+1 > len(c.b) {
		c.fail(ReasonTruncated, field)
		return 0
	}
	v := c.b[c.off]
	c.off++
	return v
}

func (c *cursor) u16(field string) uint16 {
	if c.off+2 > len(c.b) {
		c.fail(ReasonTruncated, field)
		return 0
	}
	v := uint16(c.b[c.off])<<8 | uint16(c.b[c.off+1])
	c.off += 2
	return v
}

func (c *cursor) u24(field string) int {
	if c.off+3 > len(c.b) {
		c.fail(ReasonTruncated, field)
		return 0
	}
	v := int(c.b[c.off])<<16 | int(c.b[c.off+1])<<8 | int(c.b[c.off+2])
	c.off += 3
	return v
}

func (c *cursor) bytes(n int, field string) []byte {
	if n < 0 || c.off+n > len(c.b) {
		c.fail(ReasonTruncated, field)
		return nil
	}
	v := c.b[c.off : c.off+n : c.off+n]
	c.off += n
	return v
}

// sub returns a cursor over the next n bytes, with offsets kept absolute.
func (c *cursor) sub(n int, field string) cursor {
	start := c.off
	if c.bytes(n, field) == nil && n != 0 {
		return cursor{b: c.b[:0], off: 0, err: c.err}
	}
	return cursor{b: c.b[:start+n], off: start}
}

func (c *cursor) done() bool { return c.off >= len(c.b) }

func u16s(dst []uint16, c *cursor, n int, field string) []uint16 {
	dst = dst[:0]
	if n%2 != 0 {
		c.fail(ReasonMalformed, field)
		return dst
	}
	s := c.bytes(n, field)
	for i := 0; i+1 < len(s); i += 2 {
		if len(dst) == maxListEntries {
			c.fail(ReasonMalformed, field)
			return dst
		}
		dst = append(dst, uint16(s[i])<<8|uint16(s[i+1]))
	}
	return dst
}

// messageBody checks the 4-byte handshake header of msg and returns a cursor
// over the body. A message longer than its header says is cut to it, so
// trailing bytes of the next message are never read as extensions.
func messageBody(msg []byte, want uint8) (cursor, *Error) {
	c := cursor{b: msg}
	typ := c.u8("handshake type")
	n := c.u24("handshake length")
	if c.err != nil {
		return c, c.err
	}
	if typ != want {
		return c, &Error{Reason: ReasonNotHello, Offset: 0, Field: "handshake type"}
	}
	if 4+n > len(msg) {
		return c, &Error{Reason: ReasonTruncated, Offset: len(msg), Field: "handshake body"}
	}
	c.b = msg[:4+n]
	return c, nil
}

// ParseClientHello parses a ClientHello handshake message (type, 24-bit
// length, body), as found in a TLS record or a QUIC CRYPTO stream.
func ParseClientHello(msg []byte, h *ClientHello) error {
	h.Ciphers, h.Extensions, h.Groups = h.Ciphers[:0], h.Extensions[:0], h.Groups[:0]
	h.Points, h.SigAlgs, h.Versions, h.ALPN = h.Points[:0], h.SigAlgs[:0], h.Versions[:0], h.ALPN[:0]
	h.SNI = nil
	c, e := messageBody(msg, typeClientHello)
	if e != nil {
		return e
	}
	h.Version = c.u16("legacy_version")
	c.bytes(helloRandomLength, "random")
	c.bytes(int(c.u8("session_id length")), "session_id")
	n := int(c.u16("cipher_suites length"))
	h.Ciphers = u16s(h.Ciphers, &c, n, "cipher_suites")
	c.bytes(int(c.u8("compression_methods length")), "compression_methods")
	if c.err != nil {
		return errOrNil(c.err)
	}
	if c.done() {
		return nil // SSL 3.0 and early TLS hellos carry no extensions
	}
	exts := c.sub(int(c.u16("extensions length")), "extensions")
	for c.err == nil && exts.err == nil && !exts.done() {
		typ := exts.u16("extension type")
		body := exts.sub(int(exts.u16("extension length")), "extension body")
		if exts.err != nil {
			break
		}
		if len(h.Extensions) == maxListEntries {
			exts.fail(ReasonMalformed, "extensions")
			break
		}
		h.Extensions = append(h.Extensions, typ)
		clientExtension(h, typ, &body)
		if body.err != nil {
			return errOrNil(body.err)
		}
	}
	if exts.err != nil {
		return errOrNil(exts.err)
	}
	return errOrNil(c.err)
}

func clientExtension(h *ClientHello, typ uint16, b *cursor) {
	switch typ {
	case extServerName:
		list := b.sub(int(b.u16("server_name_list length")), "server_name_list")
		for b.err == nil && list.err == nil && !list.done() {
			kind := list.u8("name_type")
			name := list.bytes(int(list.u16("host_name length")), "host_name")
			if kind == 0 && h.SNI == nil && list.err == nil {
				h.SNI = name
			}
		}
		b.err = firstErr(b.err, list.err)
	case extGroups:
		h.Groups = u16s(h.Groups, b, int(b.u16("supported_groups length")), "supported_groups")
	case extPointFormats:
		h.Points = append(h.Points[:0], b.bytes(int(b.u8("ec_point_formats length")), "ec_point_formats")...)
	case extSigAlgs:
		h.SigAlgs = u16s(h.SigAlgs, b, int(b.u16("signature_algorithms length")), "signature_algorithms")
	case extSupportedVers:
		h.Versions = u16s(h.Versions, b, int(b.u8("supported_versions length")), "supported_versions")
	case extALPN:
		list := b.sub(int(b.u16("alpn length")), "alpn")
		for b.err == nil && list.err == nil && !list.done() {
			p := list.bytes(int(list.u8("protocol length")), "protocol")
			if list.err == nil && len(h.ALPN) < maxListEntries {
				h.ALPN = append(h.ALPN, p)
			}
		}
		b.err = firstErr(b.err, list.err)
	}
}

func firstErr(a, b *Error) *Error {
	if a != nil {
		return a
	}
	return b
}

// ParseServerHello parses a ServerHello handshake message.
func ParseServerHello(msg []byte, h *ServerHello) error {
	h.Extensions, h.Selected, h.ALPN = h.Extensions[:0], 0, nil
	c, e := messageBody(msg, typeServerHello)
	if e != nil {
		return e
	}
	h.Version = c.u16("legacy_version")
	c.bytes(helloRandomLength, "random")
	// TLS 1.3 drafts before 22 dropped session_id and compression from
	// the ServerHello and put the real version in legacy_version.
	draft := h.Version>>8 == 0x7f || h.Version == 0x0304
	if !draft {
		c.bytes(int(c.u8("session_id length")), "session_id")
	}
	h.Cipher = c.u16("cipher_suite")
	if !draft {
		c.u8("compression_method")
	}
	if c.err != nil || c.done() {
		return errOrNil(c.err)
	}
	exts := c.sub(int(c.u16("extensions length")), "extensions")
	for c.err == nil && exts.err == nil && !exts.done() {
		typ := exts.u16("extension type")
		body := exts.sub(int(exts.u16("extension length")), "extension body")
		if exts.err != nil {
			break
		}
		if len(h.Extensions) == maxListEntries {
			exts.fail(ReasonMalformed, "extensions")
			break
		}
		h.Extensions = append(h.Extensions, typ)
		switch typ {
		case extSupportedVers:
			h.Selected = body.u16("selected_version")
		case extALPN:
			list := body.sub(int(body.u16("alpn length")), "alpn")
			h.ALPN = list.bytes(int(list.u8("protocol length")), "protocol")
		}
	}
	// A broken extension block after a whole cipher choice keeps what was
	// read before it, as tshark and Arkime do for their JA3S.
	return errOrNil(c.err)
}

// errOrNil keeps a nil *Error from becoming a non-nil error interface.
func errOrNil(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}

// NegotiatedVersion is the version the server chose: supported_versions when
// present (TLS 1.3 keeps 0x0303 in legacy_version), else legacy_version.
func (h *ServerHello) NegotiatedVersion() uint16 {
	if h.Selected != 0 {
		return h.Selected
	}
	return h.Version
}

// VersionName names a protocol version as Zeek's ssl.log does.
func VersionName(v uint16) string {
	switch {
	case v == 0x0300:
		return "SSLv3"
	case v == 0x0301:
		return "TLSv10"
	case v == 0x0302:
		return "TLSv11"
	case v == 0x0303:
		return "TLSv12"
	case v == 0x0304:
		return "TLSv13"
	case v == 0x0002:
		return "SSLv2"
	case v>>8 == 0x7f:
		return fmt.Sprintf("TLSv13-draft%d", v&0xff)
	case v == 0xfeff:
		return "DTLSv10"
	case v == 0xfefd:
		return "DTLSv12"
	case v == 0xfefc:
		return "DTLSv13"
	}
	return fmt.Sprintf("unknown-%d", v)
}

// CipherName names a cipher suite as IANA's registry does.
func CipherName(c uint16) string {
	if n, ok := tlsx.CipherSuiteReg[tlsx.CipherSuite(c)]; ok {
		return n
	}
	switch c {
	case 0x1301:
		return "TLS_AES_128_GCM_SHA256"
	case 0x1302:
		return "TLS_AES_256_GCM_SHA384"
	case 0x1303:
		return "TLS_CHACHA20_POLY1305_SHA256"
	case 0x1304:
		return "TLS_AES_128_CCM_SHA256"
	case 0x1305:
		return "TLS_AES_128_CCM_8_SHA256"
	}
	return fmt.Sprintf("unknown-0x%04x", c)
}
