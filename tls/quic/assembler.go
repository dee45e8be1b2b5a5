package quic

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
)

// MaxCrypto bounds the CRYPTO stream gathered from Initials.
const MaxCrypto = 16 << 10

// maxRanges bounds the out-of-order CRYPTO pieces tracked.
const maxRanges = 16

type span struct{ from, to int }

// Assembler gathers one connection's client Initial CRYPTO stream until it
// holds the whole ClientHello. The zero value is ready; Reset makes it so
// again for another connection, keeping its buffers.
type Assembler struct {
	version uint32
	dcid    [20]byte
	dcidLen int
	keyed   bool
	aead    cipher.AEAD
	hp      cipher.Block
	iv      [12]byte
	crypto  []byte // CRYPTO stream bytes at their offsets
	have    [maxRanges]span
	nHave   int
	plain   []byte // decryption scratch
	hello   []byte
	done    bool
}

// Reset forgets the connection, keeping the buffers for the next one.
func (a *Assembler) Reset() {
	crypto, plain := a.crypto[:0], a.plain[:0]
	*a = Assembler{crypto: crypto, plain: plain}
}

// Version is the QUIC version of the Initials seen.
func (a *Assembler) Version() uint32 { return a.version }

// Hello returns the ClientHello handshake message once Feed reported done;
// it is borrowed until Reset.
func (a *Assembler) Hello() []byte { return a.hello }

// Done reports whether the ClientHello is complete.
func (a *Assembler) Done() bool { return a.done }

// Feed takes one UDP payload from the client. It opens each client Initial
// packet in it (several may be coalesced; other packet types are skipped)
// and reports done once the CRYPTO stream holds a complete ClientHello.
func (a *Assembler) Feed(d []byte) (done bool, err error) {
	off := 0
	for off < len(d) && !a.done {
		if d[off]&0x80 == 0 {
			break // a short-header packet ends the datagram's long ones
		}
		n, err := a.packet(d[off:], off)
		if err != nil {
			return false, err
		}
		off += n
	}
	return a.done, nil
}

func fail(r Reason, off int) (int, error) { return 0, &Error{Reason: r, Offset: off} }

// varint reads a QUIC variable-length integer (RFC 9000 section 16).
func varint(b []byte, off int) (uint64, int, bool) {
	if off >= len(b) {
		return 0, off, false
	}
	n := 1 << (b[off] >> 6)
	if off+n > len(b) {
		return 0, off, false
	}
	v := uint64(b[off] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[off+i])
	}
	return v, off + n, true
}

// packet opens one long-header packet at the start of p (base is its offset
// in the datagram, for errors) and returns its length.
func (a *Assembler) packet(p []byte, base int) (int, error) {
	if len(p) < 7 {
		return fail(ReasonTruncated, base)
	}
	v := binary.BigEndian.Uint32(p[1:5])
	if _, ok := versionInfo(v); !ok {
		return fail(ReasonVersion, base+1)
	}
	off := 5
	dl := int(p[off])
	off++
	if dl > 20 || off+dl >= len(p) {
		return fail(ReasonHeader, base+off-1)
	}
	dcid := p[off : off+dl]
	off += dl
	sl := int(p[off])
	off++
	if sl > 20 || off+sl > len(p) {
		return fail(ReasonHeader, base+off-1)
	}
	off += sl
	typ := packetType(v, p[0])
	if typ == typeInitial {
		tl, o, ok := varint(p, off)
		if !ok || uint64(len(p)-o) < tl {
			return fail(ReasonTruncated, base+off)
		}
		off = o + int(tl)
	} else if typ == 3 { // Retry carries no Length; it ends the datagram
		return len(p), nil
	}
	length, pnOff, ok := varint(p, off)
	if !ok || uint64(len(p)-pnOff) < length || length < 20 {
		return fail(ReasonTruncated, base+off)
	}
	end := pnOff + int(length)
	if typ != typeInitial {
		return end, nil // 0-RTT or Handshake: not ours to open
	}
	if !a.keyed {
		if err := a.key(v, dcid); err != nil {
			return 0, err
		}
	} else if v != a.version {
		return fail(ReasonVersion, base+1)
	}
	// Header protection: the mask comes from 16 bytes sampled 4 bytes past
	// the start of the packet number (RFC 9001 section 5.4.2).
	var mask [16]byte
	if pnOff+4+16 > len(p) {
		return fail(ReasonTruncated, base+pnOff)
	}
	a.hp.Encrypt(mask[:], p[pnOff+4:pnOff+20])
	b0 := p[0] ^ mask[0]&0x0f
	pnLen := int(b0&3) + 1
	// The header, unprotected, is the AEAD's additional data; it is built
	// in the scratch buffer so the caller's datagram is never written.
	hdrLen := pnOff + pnLen
	a.plain = append(a.plain[:0], p[:hdrLen]...)
	a.plain[0] = b0
	var pn uint64
	for i := 0; i < pnLen; i++ {
		a.plain[pnOff+i] ^= mask[1+i]
		pn = pn<<8 | uint64(a.plain[pnOff+i])
	}
	nonce := a.iv
	for i := 0; i < 8; i++ {
		nonce[11-i] ^= byte(pn >> (8 * i))
	}
	ct := p[hdrLen:end]
	if len(ct) < a.aead.Overhead() {
		return fail(ReasonTruncated, base+hdrLen)
	}
	aad := a.plain[:hdrLen]
	out, err := a.aead.Open(a.plain[hdrLen:hdrLen], nonce[:], ct, aad)
	if err != nil {
		return fail(ReasonDecrypt, base+hdrLen)
	}
	if err := a.frames(out, base+hdrLen); err != nil {
		return 0, err
	}
	return end, nil
}

func (a *Assembler) key(v uint32, dcid []byte) error {
	k, ok := ClientKeys(v, dcid)
	if !ok {
		return &Error{Reason: ReasonVersion, Offset: 1}
	}
	block, err := aes.NewCipher(k.Key)
	if err != nil {
		return &Error{Reason: ReasonHeader, Offset: 0}
	}
	a.aead, err = cipher.NewGCM(block)
	if err != nil {
		return &Error{Reason: ReasonHeader, Offset: 0}
	}
	if a.hp, err = aes.NewCipher(k.HP); err != nil {
		return &Error{Reason: ReasonHeader, Offset: 0}
	}
	copy(a.iv[:], k.IV)
	a.version, a.keyed = v, true
	a.dcidLen = copy(a.dcid[:], dcid)
	if cap(a.crypto) < MaxCrypto {
		a.crypto = make([]byte, 0, MaxCrypto)
	}
	if cap(a.plain) < 1500 {
		a.plain = make([]byte, 0, 2048)
	}
	return nil
}

// frames walks the frames of one decrypted Initial.
func (a *Assembler) frames(f []byte, base int) error {
	off := 0
	for off < len(f) {
		typ := f[off]
		switch {
		case typ == 0x00: // PADDING
			off++
		case typ == 0x01: // PING
			off++
		case typ == 0x02 || typ == 0x03: // ACK
			o := off + 1
			var ok bool
			var n uint64
			for i := 0; i < 3; i++ { // largest, delay, range count
				if n, o, ok = varint(f, o); !ok {
					return &Error{Reason: ReasonFrame, Offset: base + off}
				}
			}
			ranges := n
			if _, o, ok = varint(f, o); !ok { // first range
				return &Error{Reason: ReasonFrame, Offset: base + off}
			}
			for i := uint64(0); i < 2*ranges; i++ {
				if _, o, ok = varint(f, o); !ok {
					return &Error{Reason: ReasonFrame, Offset: base + off}
				}
			}
			if typ == 0x03 {
				for i := 0; i < 3; i++ {
					if _, o, ok = varint(f, o); !ok {
						return &Error{Reason: ReasonFrame, Offset: base + off}
					}
				}
			}
			off = o
		case typ == 0x06: // CRYPTO
			at, o, ok := varint(f, off+1)
			if !ok {
				return &Error{Reason: ReasonFrame, Offset: base + off}
			}
			n, o, ok := varint(f, o)
			if !ok || uint64(len(f)-o) < n {
				return &Error{Reason: ReasonFrame, Offset: base + off}
			}
			if err := a.place(at, f[o:o+int(n)], base+o); err != nil {
				return err
			}
			off = o + int(n)
		case typ == 0x1c || typ == 0x1d: // CONNECTION_CLOSE
			return nil
		default:
			return &Error{Reason: ReasonFrame, Offset: base + off}
		}
	}
	return nil
}

// place copies CRYPTO data to its offset and checks whether the prefix from
// offset 0 now holds a whole handshake message.
func (a *Assembler) place(at uint64, data []byte, where int) error {
	if at+uint64(len(data)) > MaxCrypto {
		return &Error{Reason: ReasonTooLarge, Offset: where}
	}
	from, to := int(at), int(at)+len(data)
	if to > len(a.crypto) {
		a.crypto = a.crypto[:to]
	}
	copy(a.crypto[from:to], data)
	// Merge into the list of covered spans.
	a.addSpan(span{from, to})
	if a.nHave == 0 || a.have[0].from != 0 {
		return nil
	}
	prefix := a.have[0].to
	if prefix >= 4 {
		need := 4 + (int(a.crypto[1])<<16 | int(a.crypto[2])<<8 | int(a.crypto[3]))
		if need > MaxCrypto {
			return &Error{Reason: ReasonTooLarge, Offset: where}
		}
		if prefix >= need {
			a.hello, a.done = a.crypto[:need], true
		}
	}
	return nil
}

func (a *Assembler) addSpan(s span) {
	spans := a.have[:a.nHave]
	// Insert in order, then coalesce overlapping or touching spans.
	i := 0
	for i < len(spans) && spans[i].from < s.from {
		i++
	}
	if a.nHave == maxRanges {
		// Too fragmented to track: keep the prefix-relevant spans only.
		a.nHave--
		spans = a.have[:a.nHave]
		if i > len(spans) {
			i = len(spans)
		}
	}
	copy(a.have[i+1:a.nHave+1], a.have[i:a.nHave])
	a.have[i] = s
	a.nHave++
	out := 0
	for j := 0; j < a.nHave; j++ {
		if out > 0 && a.have[j].from <= a.have[out-1].to {
			a.have[out-1].to = max(a.have[out-1].to, a.have[j].to)
			continue
		}
		a.have[out] = a.have[j]
		out++
	}
	a.nHave = out
}
