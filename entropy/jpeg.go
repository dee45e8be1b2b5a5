package entropy

import "encoding/binary"

// A JPEG (ITU T.81) is compressed only when its coded data, not just its
// marker segments, holds in the prefix (issue 15). image/jpeg cannot tell:
// it decodes whole images and allocates the one the frame header claims
// (up to 65535² pixels), too dear and too exposed for every stream that
// starts with 0xffd8. So the first scan's Huffman-coded blocks are walked
// here with the tables of the segments before it, decoding symbols and
// coefficient sizes but building no image: a cipher stream soon gives a
// code no table holds, more than 64 coefficients in a block, or a
// coefficient that no 8x8 block of samples can produce after its
// quantisation (T.81 A.3.3: at most 1024 times 2^(P-8) in magnitude).
// Scans the walk does not cover (progressive AC and refinement scans,
// arithmetic and lossless coding) are checked by their byte stuffing only.
//
// The walk is as strong as the quantisers are coarse: after a header of
// cjpeg's default quality a cipher tail decodes at about 1e-5, but with
// quantisers near 1 (quality 90 to 100) most coefficient sizes are
// plausible, and the few hundred coded bytes a 1 KiB prefix holds after a
// colour header pass 1% (q90) to 7% (q100) of the time. The statistics
// cannot settle it instead: real high-quality JPEGs of noisy images are
// as uniform as a cipher over 4 KiB.

// jpegHuff is one Huffman table of a DHT segment, in the form of T.81
// F.2.2.3's decoder.
type jpegHuff struct {
	ok      bool
	maxcode [17]int32 // the largest code of each length, -1 when none
	valptr  [17]int32 // where each length's symbols start in vals
	mincode [17]int32
	vals    [256]byte
}

// jpegInfo is what the marker segments up to the first scan say.
type jpegInfo struct {
	sof       byte // the frame's marker, 0 before one
	precision int
	ncomp     int
	comp      [4]struct{ id, h, v, tq byte }
	q         [4][64]uint16 // quantisation tables in zigzag order; 0 when unset
	dc, ac    [4]jpegHuff
	restart   int // the DRI interval in MCUs
	ns        int // the first scan's components
	scan      [4]struct{ c, td, ta byte }
	ss, se    byte
	ah, al    byte
}

// jpeg walks the marker segments after the SOI, then the first scan's
// coded data as far as the prefix goes.
func (x *Examiner) jpeg(p []byte) Verdict {
	j := &x.jp
	*j = jpegInfo{}
	ok, off, scan := jpegMarkers(p, j)
	switch {
	case !ok:
		return Verdict{Unknown, MagicWithoutStructure, off}
	case !scan:
		return Verdict{Unknown, PayloadByStatistics, off}
	}
	r := j.walk(p[off:])
	if r == scanNotWalked {
		r = jpegScan(p[off:], j.restart > 0)
	}
	switch r {
	case scanHolds:
		return Verdict{Compressed, JPEGMarkers, off}
	case scanBroken:
		return Verdict{Unknown, MagicWithoutStructure, off}
	}
	return Verdict{Unknown, PayloadByStatistics, off}
}

// jpegMarkers walks the marker segments after a JPEG's SOI, each a known
// marker with a sane length, to the start of the first scan (scan, at
// off) or the end of the prefix, keeping in j what the whole segments say.
// A segment cut by the prefix must follow another whole one or be an APPn
// whose identifier is a name.
func jpegMarkers(p []byte, j *jpegInfo) (ok bool, off int, scan bool) {
	off = 2
	segs := 0
	for off+4 <= len(p) {
		if p[off] != 0xff {
			return false, off, false
		}
		m := p[off+1]
		if m == 0xff { // fill byte
			off++
			continue
		}
		n := int(binary.BigEndian.Uint16(p[off+2:]))
		if n < 2 || !jpegSegment(m) {
			return false, off, false
		}
		if off+2+n > len(p) {
			if m == 0xda {
				return false, off, false
			}
			return segs >= 1 || m >= 0xe0 && m <= 0xef && appName(p[off+4:]), len(p), false
		}
		if !j.segment(m, p[off+4:off+2+n]) {
			return false, off, false
		}
		if m == 0xda {
			return segs >= 1, off + 2 + n, true
		}
		segs++
		off += 2 + n
	}
	return segs >= 1, min(off, len(p)), false
}

func jpegSegment(m byte) bool {
	switch {
	case m >= 0xc0 && m <= 0xcf:
		return m != 0xc8
	case m >= 0xe0 && m <= 0xef:
		return true
	}
	return m == 0xdb || m == 0xdd || m == 0xda || m == 0xfe
}

// appName: an APPn identifier, a printable name of at least four bytes
// ended by NUL (JFIF, Exif, ICC_PROFILE, an XMP namespace).
func appName(b []byte) bool {
	for i, v := range b {
		if v == 0 {
			return i >= 4
		}
		if v < 0x20 || v >= 0x7f {
			return false
		}
	}
	return false
}

// segment reads the body b of a whole marker segment m into j and says
// whether it is well formed (T.81 B.2.2 to B.2.4).
func (j *jpegInfo) segment(m byte, b []byte) bool {
	switch {
	case m == 0xdb: // DQT
		for len(b) > 0 {
			pq, tq := b[0]>>4, b[0]&15
			size := 64 << pq
			if pq > 1 || tq > 3 || 1+size > len(b) {
				return false
			}
			for k := range 64 {
				v := uint16(b[1+k])
				if pq == 1 {
					v = binary.BigEndian.Uint16(b[1+2*k:])
				}
				if v == 0 {
					return false
				}
				j.q[tq][k] = v
			}
			b = b[1+size:]
		}
	case m == 0xc4: // DHT
		for len(b) > 0 {
			if len(b) < 17 || b[0]>>4 > 1 || b[0]&15 > 3 {
				return false
			}
			h := &j.dc[b[0]&15]
			if b[0]>>4 == 1 {
				h = &j.ac[b[0]&15]
			}
			n, ok := h.build(b[1:17], b[17:])
			if !ok {
				return false
			}
			b = b[17+n:]
		}
	case m == 0xdd: // DRI
		if len(b) != 2 {
			return false
		}
		j.restart = int(binary.BigEndian.Uint16(b))
	case m == 0xda: // SOS
		if len(b) < 1 {
			return false
		}
		ns := int(b[0])
		if ns < 1 || ns > 4 || len(b) != 4+2*ns {
			return false
		}
		j.ns = ns
		for i := range ns {
			j.scan[i].c, j.scan[i].td, j.scan[i].ta = b[1+2*i], b[2+2*i]>>4, b[2+2*i]&15
		}
		j.ss, j.se, j.ah, j.al = b[1+2*ns], b[2+2*ns], b[3+2*ns]>>4, b[3+2*ns]&15
	case m >= 0xc0 && m <= 0xcf: // SOFn (0xc4, 0xc8 and 0xcc are not frames)
		if m == 0xcc {
			return true // DAC: arithmetic coding conditions
		}
		if j.sof != 0 || len(b) < 6 {
			return false
		}
		j.sof, j.precision, j.ncomp = m, int(b[0]), int(b[5])
		if j.ncomp < 1 || j.ncomp > 4 || len(b) != 6+3*j.ncomp {
			return false
		}
		for i := range j.ncomp {
			c := b[6+3*i:]
			j.comp[i].id, j.comp[i].h, j.comp[i].v, j.comp[i].tq = c[0], c[1]>>4, c[1]&15, c[2]
			if j.comp[i].h < 1 || j.comp[i].h > 4 || j.comp[i].v < 1 || j.comp[i].v > 4 || c[2] > 3 {
				return false
			}
		}
	}
	return true
}

// build makes h from a DHT table's sixteen counts and its symbols, and
// says how many symbols it took; a table whose codes overflow their
// lengths is not one (T.81 C).
func (h *jpegHuff) build(counts, syms []byte) (int, bool) {
	total := 0
	for _, c := range counts {
		total += int(c)
	}
	if total > 256 || total > len(syms) {
		return 0, false
	}
	copy(h.vals[:], syms[:total])
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		c := int32(counts[l-1])
		h.valptr[l], h.mincode[l] = k, code
		code += c
		k += c
		h.maxcode[l] = code - 1
		if c == 0 {
			h.maxcode[l] = -1
		}
		if code > 1<<l {
			return 0, false
		}
		code <<= 1
	}
	h.ok = true
	return total, true
}

// maxSegment is the longest segment marker m can open between scans:
// four full Huffman or quantisation tables, a scan header, a frame header.
func maxSegment(m byte) int {
	switch m {
	case 0xc4:
		return 2 + 4*(17+256)
	case 0xdb:
		return 2 + 4*129
	case 0xda:
		return 2 + 1 + 2*4 + 3
	case 0xdd, 0xdc:
		return 4
	case 0xfe:
		return 0xffff
	}
	return 2 + 6 + 3*4 // SOFn, in a hierarchical frame
}
