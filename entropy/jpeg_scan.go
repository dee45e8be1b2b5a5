package entropy

import "encoding/binary"

// The walk of a JPEG's first scan (jpeg.go says why): its Huffman-coded
// blocks decoded with the tables the segments before it gave, symbol by
// symbol, no image built.

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
