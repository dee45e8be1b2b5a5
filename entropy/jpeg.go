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

// scanResult is what a scan's coded data showed.
type scanResult uint8

const (
	scanUnknown   scanResult = iota // too little of it to tell
	scanHolds                       // it decodes, or its stuffing holds, as far as the prefix goes
	scanBroken                      // what coded data cannot be
	scanNotWalked                   // a scan the Huffman walk does not cover
)

// jpegBits reads a scan's coded data bit by bit, taking out stuffed
// zeros; it stops at a marker (stop) or at the end of the data.
type jpegBits struct {
	d     []byte
	i     int
	acc   uint32
	n     uint
	stop  byte // the marker that stopped the reader
	since int  // bits read since the MCU began
	ones  bool // and all of them were 1
}

func (r *jpegBits) bit() (uint32, bool) {
	if r.n == 0 {
		for r.i+1 < len(r.d) && r.d[r.i] == 0xff && r.d[r.i+1] == 0xff {
			r.i++ // fill bytes before a marker
		}
		if r.i >= len(r.d) || r.d[r.i] == 0xff && r.i+1 >= len(r.d) {
			return 0, false
		}
		c := r.d[r.i]
		r.i++
		if c == 0xff {
			if m := r.d[r.i]; m != 0 {
				r.i--
				r.stop = m
				return 0, false
			}
			r.i++
		}
		r.acc, r.n = uint32(c), 8
	}
	r.n--
	r.since++
	b := r.acc >> r.n & 1
	r.ones = r.ones && b == 1
	return b, true
}

// decode reads one Huffman-coded symbol: -1 when the data stopped, -2 for
// a code the table does not hold.
func (r *jpegBits) decode(h *jpegHuff) int {
	code := int32(0)
	for l := 1; l <= 16; l++ {
		b, ok := r.bit()
		if !ok {
			return -1
		}
		code = code<<1 | int32(b)
		if code <= h.maxcode[l] {
			return int(h.vals[h.valptr[l]+code-h.mincode[l]])
		}
	}
	return -2
}

// receive reads an s-bit coefficient and extends its sign (T.81 F.2.2.1).
func (r *jpegBits) receive(s int) (int64, bool) {
	v := int64(0)
	for range s {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | int64(b)
	}
	if s > 0 && v < 1<<(s-1) {
		v -= 1<<s - 1
	}
	return v, true
}

// step is how one block's decoding ended.
type step uint8

const (
	stepDone step = iota
	stepStop      // the data stopped: a marker or its end
	stepBad       // a code, size or value no encoder writes
)

// walk decodes the first scan's blocks in d, MCU by MCU, for the frames
// and scans it covers: Huffman-coded sequential scans of all coefficients
// and the first DC scan of a progressive frame.
func (j *jpegInfo) walk(d []byte) scanResult {
	sequential := (j.sof == 0xc0 || j.sof == 0xc1) && j.ss == 0 && j.se == 63 && j.ah == 0 && j.al == 0
	dcFirst := j.sof == 0xc2 && j.ss == 0 && j.se == 0 && j.ah == 0
	if !sequential && !dcFirst || j.precision != 8 && j.precision != 12 {
		return scanNotWalked
	}
	// The blocks of one MCU: one when the scan has one component (A.2.2),
	// each component's H x V otherwise (A.2.3), ten at most.
	var blocks [10]byte // indexes into j.scan
	nb := 0
	for i := range j.ns {
		c := j.frameComp(j.scan[i].c)
		if c < 0 || !j.dc[j.scan[i].td&3].ok || j.scan[i].td > 3 || sequential && (j.scan[i].ta > 3 || !j.ac[j.scan[i].ta].ok) {
			return scanBroken
		}
		n := 1
		if j.ns > 1 {
			n = int(j.comp[c].h) * int(j.comp[c].v)
		}
		for range n {
			if nb == len(blocks) {
				return scanBroken
			}
			blocks[nb] = byte(i)
			nb++
		}
	}
	r := jpegBits{d: d}
	var pred [4]int64
	mcus := 0
	for {
		if j.restart > 0 && mcus > 0 && mcus%j.restart == 0 {
			// An RSTm marker after the byte's padding, m counting 0 to 7.
			r.n = 0
			if r.i+2 > len(d) {
				return cut(mcus)
			}
			if d[r.i] != 0xff || d[r.i+1] != 0xd0+byte(mcus/j.restart-1)&7 {
				if d[r.i] == 0xff && d[r.i+1] == 0xd9 {
					return scanHolds // the image ended with the interval
				}
				return scanBroken
			}
			r.i += 2
			pred = [4]int64{}
		}
		r.since, r.ones = 0, true
		for _, b := range blocks[:nb] {
			switch j.block(&r, int(b), &pred[b], sequential) {
			case stepBad:
				return scanBroken
			case stepStop:
				return j.stopped(&r, mcus)
			}
		}
		mcus++
	}
}

// cut is the verdict on data that ran out after mcus whole MCUs: a
// cipher stream hardly decodes as one (see TestRealHeadersBeforeRandom).
func cut(mcus int) scanResult {
	if mcus >= 1 {
		return scanHolds
	}
	return scanUnknown
}

// stopped judges where the reader stopped: at the end of the data, or at
// a marker, which must end the scan at an MCU's start after at most a
// byte's padding of 1 bits (F.1.2.3), and be followed by what a JPEG
// holds there: the end of the image, or a segment of a plausible length
// that parses when it is whole.
func (j *jpegInfo) stopped(r *jpegBits, mcus int) scanResult {
	if r.stop == 0 {
		return cut(mcus)
	}
	if r.since >= 8 || !r.ones || mcus == 0 {
		return scanBroken
	}
	d := r.d[r.i:] // the marker, then what follows it
	switch m := r.stop; {
	case m == 0xd9: // EOI: the stream ends, or another image starts
		if len(d) == 2 || len(d) >= 4 && d[2] == 0xff && d[3] == 0xd8 {
			return scanHolds
		}
		return scanBroken
	case m == 0xdc || jpegSegment(m) && m < 0xe0:
		if len(d) < 4 {
			return scanUnknown
		}
		n := int(binary.BigEndian.Uint16(d[2:]))
		if n < 2 || n > maxSegment(m) {
			return scanBroken
		}
		if 2+n > len(d) {
			return scanHolds
		}
		var next jpegInfo
		next.sof = j.sof
		if m != 0xdc && !next.segment(m, d[4:2+n]) || m == 0xdc && n != 4 {
			return scanBroken
		}
		return scanHolds
	}
	return scanBroken // an RST out of turn, an APPn mid-image, or no marker at all
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

func (j *jpegInfo) frameComp(id byte) int {
	for i := range j.ncomp {
		if j.comp[i].id == id {
			return i
		}
	}
	return -1
}

// block decodes one block of scan component sc: the DC difference and,
// in a sequential scan, the AC coefficients to the end of block (F.2.2).
// Every coefficient times its quantiser must be one a block of samples
// of the frame's precision can give.
func (j *jpegInfo) block(r *jpegBits, sc int, pred *int64, sequential bool) step {
	s := &j.scan[sc]
	q := &j.q[j.comp[j.frameComp(s.c)].tq]
	lim := int64(1024) << (j.precision - 8)
	// The FDCT is orthonormal: a block's coefficients, each within half a
	// quantiser of its value, hold no more energy than its 64 samples of
	// at most 2^(P-1) in magnitude; a tenth is left for rounding.
	maxEnergy := (int64(64) << (2 * (j.precision - 1))) * 11 / 10
	energy := int64(0)
	t := r.decode(&j.dc[s.td])
	switch {
	case t == -1:
		return stepStop
	case t < 0 || t > 11+j.precision-8:
		return stepBad
	}
	diff, ok := r.receive(t)
	if !ok {
		return stepStop
	}
	*pred += diff
	if v := *pred << j.al; q[0] != 0 {
		if abs64(v)*int64(q[0]) > lim+int64(q[0]) {
			return stepBad
		}
		energy += share(v, q[0])
	}
	if !sequential {
		return stepDone
	}
	for k := 1; k < 64; {
		rs := r.decode(&j.ac[s.ta])
		switch {
		case rs == -1:
			return stepStop
		case rs < 0:
			return stepBad
		}
		run, size := rs>>4, rs&15
		if size == 0 {
			if run == 15 { // sixteen zeros
				k += 16
				if k > 64 {
					return stepBad
				}
				continue
			}
			if run != 0 {
				return stepBad // EOBn is for progressive scans
			}
			return stepDone
		}
		k += run
		if k > 63 || size > 10+j.precision-8 {
			return stepBad
		}
		v, ok := r.receive(size)
		if !ok {
			return stepStop
		}
		if q[k] != 0 {
			if abs64(v)*int64(q[k]) > lim+int64(q[k]) {
				return stepBad
			}
			if energy += share(v, q[k]); energy > maxEnergy {
				return stepBad
			}
		}
		k++
	}
	return stepDone
}

// share is the least energy a coefficient v quantised by q stands for.
func share(v int64, q uint16) int64 {
	e := max(0, abs64(v)*int64(q)-int64(q)/2)
	return e * e
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// jpegScan checks only the byte stuffing of d, a scan's coded data and
// what follows it in the prefix (T.81 B.1.1.5, F.1.2.3): a 0xff is
// followed by a stuffed 0x00, a restart marker in turn (when restart
// says they appear), or the marker that ends the scan. Two stuffed bytes
// or restart markers, or an EOI that ends the stream, are the evidence (a
// cipher tail shows two at about 1 in 65536).
func jpegScan(d []byte, restart bool) scanResult {
	marks, rst := 0, 0
	for i := 0; i+1 < len(d); i++ {
		if d[i] != 0xff {
			continue
		}
		m := d[i+1]
		switch {
		case m == 0x00:
			marks++
			i++
		case m == 0xff: // fill bytes before a marker
		case m >= 0xd0 && m <= 0xd7:
			if !restart || int(m-0xd0) != rst&7 {
				return scanBroken
			}
			rst++
			marks++
			i++
		case m == 0xd9: // EOI: the image ends, and with it the stream
			if i+2 == len(d) || marks >= 2 {
				return scanHolds
			}
			return scanUnknown
		case jpegSegment(m) || m == 0xdc: // the scan ends (DNL, or the next scan's tables)
			if marks >= 2 {
				return scanHolds
			}
			return scanUnknown
		default:
			return scanBroken
		}
	}
	if marks >= 2 {
		return scanHolds
	}
	return scanUnknown
}
