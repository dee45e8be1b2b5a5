package tls

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/dreadl0ck/ja3"
	"github.com/dreadl0ck/tlsx"
)

// Fingerprints builds JA3, JA3S and JA4 strings. It keeps its scratch space
// between calls; the strings it returns are new allocations, once per flow.
type Fingerprints struct {
	basic  tlsx.ClientHelloBasic
	server tlsx.ServerHelloBasic
	buf    []byte
	sorted []uint16
}

// JA3 returns the JA3 string and its MD5 digest in hex. GREASE values are
// removed before ja3.Bare sees the lists: it filters them itself, but leaves
// a dangling separator when a list ends in one.
func (f *Fingerprints) JA3(h *ClientHello) (str, digest string) {
	b := &f.basic
	b.HandshakeVersion = tlsx.Version(h.Version)
	b.CipherSuites = b.CipherSuites[:0]
	for _, c := range h.Ciphers {
		if !IsGREASE(c) {
			b.CipherSuites = append(b.CipherSuites, tlsx.CipherSuite(c))
		}
	}
	b.AllExtensions = appendNoGREASE(b.AllExtensions[:0], h.Extensions)
	b.SupportedGroups = appendNoGREASE(b.SupportedGroups[:0], h.Groups)
	b.SupportedPoints = append(b.SupportedPoints[:0], h.Points...)
	bare := ja3.Bare(b)
	return string(bare), ja3.BareToDigestHex(bare)
}

// JA3S returns the JA3S string and its MD5 digest in hex.
func (f *Fingerprints) JA3S(h *ServerHello) (str, digest string) {
	s := &f.server
	s.Vers = h.Version
	s.CipherSuite = h.Cipher
	s.Extensions = appendNoGREASE(s.Extensions[:0], h.Extensions)
	bare := ja3.BareJa3s(s)
	return string(bare), ja3.BareToDigestHexJa3s(bare)
}

func appendNoGREASE(dst, src []uint16) []uint16 {
	for _, v := range src {
		if !IsGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// Transport is the first letter of a JA4 fingerprint.
type Transport byte

// JA4 transports.
const (
	TCP  Transport = 't'
	QUIC Transport = 'q'
	DTLS Transport = 'd'
)

// JA4 returns the JA4 client fingerprint (FoxIO's JA4 specification,
// BSD-3-Clause): a_b_c, where a is the transport, highest offered version,
// SNI presence, cipher and extension counts and the first ALPN's ends; b
// hashes the sorted ciphers; c the sorted extensions (without SNI and ALPN)
// and the signature algorithms in wire order.
func (f *Fingerprints) JA4(h *ClientHello, tr Transport) string {
	out := f.buf[:0]
	out = append(out, byte(tr))
	out = append(out, ja4Version(h)...)
	if h.SNI != nil || slices.Contains(h.Extensions, extServerName) {
		out = append(out, 'd')
	} else {
		out = append(out, 'i')
	}
	out = appendCount(out, h.Ciphers)
	out = appendCount(out, h.Extensions)
	out = appendALPN(out, h.ALPN)
	out = append(out, '_')

	f.sorted = appendNoGREASE(f.sorted[:0], h.Ciphers)
	slices.Sort(f.sorted)
	var hb []byte
	hb = appendHexList(hb, f.sorted)
	out = appendHash12(out, hb, len(f.sorted) == 0)
	out = append(out, '_')

	f.sorted = f.sorted[:0]
	for _, e := range h.Extensions {
		if !IsGREASE(e) && e != extServerName && e != extALPN {
			f.sorted = append(f.sorted, e)
		}
	}
	slices.Sort(f.sorted)
	hb = appendHexList(hb[:0], f.sorted)
	if sigs := appendNoGREASE(nil, h.SigAlgs); len(sigs) > 0 {
		hb = append(hb, '_')
		hb = appendHexList(hb, sigs)
	}
	out = appendHash12(out, hb, len(f.sorted) == 0)
	f.buf = out
	return string(out)
}

func ja4Version(h *ClientHello) string {
	v := h.Version
	if len(h.Versions) > 0 {
		v = 0
		for _, s := range h.Versions {
			if !IsGREASE(s) && s > v {
				v = s
			}
		}
	}
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func appendCount(out []byte, list []uint16) []byte {
	n := 0
	for _, v := range list {
		if !IsGREASE(v) {
			n++
		}
	}
	n = min(n, 99)
	return append(out, byte('0'+n/10), byte('0'+n%10))
}

func appendALPN(out []byte, alpn [][]byte) []byte {
	if len(alpn) == 0 || len(alpn[0]) == 0 {
		return append(out, '0', '0')
	}
	p := alpn[0]
	first, last := p[0], p[len(p)-1]
	if alnum(first) && alnum(last) {
		return append(out, first, last)
	}
	// FoxIO's reference implementations (python and rust, on their
	// tls-non-ascii-alpn capture) write 99 for a value that does not start
	// and end with an ASCII letter or digit.
	return append(out, '9', '9')
}

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func appendHexList(out []byte, list []uint16) []byte {
	for i, v := range list {
		if i > 0 {
			out = append(out, ',')
		}
		var b [2]byte
		b[0], b[1] = byte(v>>8), byte(v)
		out = hex.AppendEncode(out, b[:])
	}
	return out
}

func appendHash12(out, in []byte, empty bool) []byte {
	if empty {
		return append(out, "000000000000"...)
	}
	sum := sha256.Sum256(in)
	return hex.AppendEncode(out, sum[:6])
}
