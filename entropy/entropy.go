// Package entropy measures how random a byte stream looks, to tell a cipher
// stream from compressed or text data. It counts byte values over the first
// bytes of a stream and reports Shannon entropy (bits per byte), the sample
// size, and a chi-square statistic against the uniform distribution.
//
// Random and encrypted data is near-uniform on both measures. Compressed
// formats reach high entropy too but keep structure a chi-square test sees.
// Their magic bytes alone prove nothing (a cipher stream may start with any
// four bytes), so the first PrefixBytes of a stream that starts like a known
// container are kept and checked: it is compressed when it decodes or parses
// as that format, encrypted when it is an encrypted container (issue 15).
// Small samples read low: compare with ExpectedRandom for the same length,
// never with 8.0.
package entropy

import (
	"math"
	"sync"
	"sync/atomic"
)

// Counter accumulates byte frequencies over at most Limit bytes. It is a
// plain value of fixed size, meant to live in a preallocated pool.
type Counter struct {
	counts [256]uint32
	// seen lists the byte values counted so far, so that short samples
	// (most flows) are summarised and reset in a few steps, not 256.
	seen  [256]byte
	nSeen uint16
	n     uint32
	limit uint32
	head  [8]byte // the first bytes, for magic numbers
	// pre holds the first PrefixBytes when head looks like a container's
	// start; its storage is kept across Reset, so a pooled Counter
	// allocates it once.
	pre     []byte
	decided bool // head is complete and keep is set
	keep    bool
}

// PrefixBytes is how many of a stream's first bytes are kept to check a
// container's structure, for streams whose first bytes look like one.
const PrefixBytes = 1024

// Reset empties c and sets how many bytes it will count.
func (c *Counter) Reset(limit int) {
	for _, v := range c.seen[:c.nSeen] {
		c.counts[v] = 0
	}
	c.nSeen, c.n, c.limit, c.head = 0, 0, uint32(limit), [8]byte{}
	c.pre, c.decided, c.keep = c.pre[:0], false, false
}

// Add counts bytes from b until the limit and reports whether it is reached.
// b is only read.
func (c *Counter) Add(b []byte) bool {
	room := int(c.limit - c.n)
	if room <= 0 {
		return true
	}
	if len(b) > room {
		b = b[:room]
	}
	if c.n < PrefixBytes {
		c.retain(b)
	}
	for _, v := range b {
		if c.counts[v] == 0 {
			c.seen[c.nSeen] = v
			c.nSeen++
		}
		c.counts[v]++
	}
	c.n += uint32(len(b))
	return c.n >= c.limit
}

// retain copies the bytes at offset c.n into head and, for a stream that
// starts like a container, into pre.
func (c *Counter) retain(b []byte) {
	start := int(c.n)
	if start < len(c.head) {
		copy(c.head[start:], b)
	}
	end := start + len(b)
	if !c.decided {
		if end < len(c.head) {
			return
		}
		c.decided = true
		c.keep = mayBeContainer(&c.head)
		if !c.keep {
			return
		}
		if cap(c.pre) < PrefixBytes {
			c.pre = make([]byte, 0, PrefixBytes)
		}
		c.pre = append(c.pre[:0], c.head[:min(start, len(c.head))]...)
	}
	if c.keep && len(c.pre) < PrefixBytes {
		c.pre = append(c.pre, b[len(c.pre)-start:min(len(b), PrefixBytes-start)]...)
	}
}

// Prefix returns the first bytes kept for the container check (nil when
// the stream did not start like a container). It is borrowed until Reset.
func (c *Counter) Prefix() []byte { return c.pre }

// N returns how many bytes were counted.
func (c *Counter) N() int { return int(c.n) }

// Full reports whether the limit is reached.
func (c *Counter) Full() bool { return c.n >= c.limit }

// Shannon returns the entropy of the counted bytes in bits per byte:
// log2(n) - (1/n) sum k log2 k over the counts, with k log2 k from a table
// for the sample sizes inspection uses.
func (c *Counter) Shannon() float64 {
	if c.n == 0 {
		return 0
	}
	tab := kLog2kTable()
	s := 0.0
	for _, v := range c.seen[:c.nSeen] {
		k := c.counts[v]
		switch {
		case k <= 1:
		case int(k) < len(tab):
			s += tab[k]
		default:
			s += float64(k) * math.Log2(float64(k))
		}
	}
	n := float64(c.n)
	var log2n float64
	if int(c.n) < len(tab) && c.n > 1 {
		log2n = tab[c.n] / n // n log2 n, from the same table
	} else {
		log2n = math.Log2(n)
	}
	return log2n - s/n
}

// ChiSquare returns Pearson's statistic of the counts against a uniform
// distribution over 256 values (255 degrees of freedom: about 255 ± 23 for
// random data): sum k^2 / e - n, with e = n/256.
func (c *Counter) ChiSquare() float64 {
	if c.n == 0 {
		return 0
	}
	var sq uint64
	for _, v := range c.seen[:c.nSeen] {
		k := uint64(c.counts[v])
		sq += k * k
	}
	n := float64(c.n)
	return float64(sq)*256/n - n
}

// tableSize covers the default sample (4 KiB) and then some.
const tableSize = 1 << 14

var (
	kLog2kOnce sync.Once
	kLog2k     []float64
	expected   [4096]atomic.Uint64 // float64 bits; 0 is not yet computed
)

func kLog2kTable() []float64 {
	kLog2kOnce.Do(func() {
		kLog2k = make([]float64, tableSize)
		for k := 2; k < tableSize; k++ {
			kLog2k[k] = float64(k) * math.Log2(float64(k))
		}
	})
	return kLog2k
}

// expectedFor is ExpectedRandom, remembered per size up to 4 KiB, the sizes
// classified again and again. Each size is computed on first use (tens of
// microseconds), so a short replay pays only for the sizes it meets.
func expectedFor(n int) float64 {
	if n > len(expected) || n <= 0 {
		return ExpectedRandom(n)
	}
	if b := expected[n-1].Load(); b != 0 {
		return math.Float64frombits(b)
	}
	v := ExpectedRandom(n)
	expected[n-1].Store(math.Float64bits(v))
	return v
}

// ExpectedRandom returns the Shannon entropy that n uniformly random bytes
// give on average: 8 bits less the plug-in estimator's bias, computed exactly
// from the binomial distribution of each value's count (a plain 8.0 would
// call every short cipher stream non-random).
func ExpectedRandom(n int) float64 {
	if n <= 0 {
		return 0
	}
	// E[H] = -256 * E[(X/n) log2(X/n)] with X ~ Binomial(n, 1/256).
	const p = 1.0 / 256
	lq := math.Log(1 - p)
	lp := math.Log(p)
	sum := 0.0
	// log of C(n,k) p^k q^(n-k), walked k = 1.. while it matters.
	logPk := float64(n) * lq // k = 0
	for k := 1; k <= n; k++ {
		logPk += math.Log(float64(n-k+1)/float64(k)) + lp - lq
		pk := math.Exp(logPk)
		if pk < 1e-17 && float64(k) > float64(n)*p {
			break
		}
		x := float64(k) / float64(n)
		sum += pk * x * math.Log2(x)
	}
	return -256 * sum
}

// Class is what a payload looks like.
type Class uint8

// Payload classes.
const (
	Unknown Class = iota
	Text
	Compressed
	Encrypted
	Mixed
)

var classNames = [...]string{"unknown", "text", "compressed", "encrypted", "mixed"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// Thresholds of Classify; exported so a configuration can show them.
const (
	MinSample      = 64   // fewer bytes say nothing
	RandomMargin   = 0.25 // bits per byte below ExpectedRandom still counted random
	TextBelow      = 6.0  // entropy under which printable data is text
	UniformChi2Max = 400  // beyond this the bytes are not uniform (p < 1e-8 at 255 dof)
)

// Classify says whether the counted bytes look like text, a compressed
// format, a cipher stream, or something mixed. It is Judge's class, with
// decoders that live for the call.
func (c *Counter) Classify() Class {
	_, _, class, _ := c.Judge(nil)
	return class
}

// Summary returns Shannon, ChiSquare and Classify, each computed once.
func (c *Counter) Summary() (bits, chi2 float64, class Class) {
	bits, chi2, class, _ = c.Judge(nil)
	return bits, chi2, class
}

// Judge returns Shannon, ChiSquare, the payload class and what decided it.
// A stream that starts like a container is checked with x's decoders (a
// nil x uses fresh ones): a container whose data decodes or parses is
// compressed, an encrypted container is encrypted. A magic followed by
// bytes that are not that format, a 7z archive whose packed data no coder
// explains and a container whose data has no structure to check (stored,
// or past the prefix) take the class the statistics give to the bytes
// after the container's header: a long genuine header's names and zeros
// must not make a cipher stream behind it look compressed (issue 15).
// bits and chi2 are always those of the whole sample.
func (c *Counter) Judge(x *Examiner) (bits, chi2 float64, class Class, reason Reason) {
	bits, chi2 = c.Shannon(), c.ChiSquare()
	class = c.classify(bits, chi2)
	if class == Unknown || len(c.pre) == 0 {
		return bits, chi2, class, ByStatistics
	}
	if x == nil {
		x = new(Examiner)
	}
	v := x.Examine(c.pre)
	switch {
	case v.Reason == ByStatistics:
	case v.Class == Encrypted && class == Text:
		// A header of an encrypted format before plain text is not one.
		reason = MagicWithoutStructure
	case v.Class != Unknown:
		class, reason = v.Class, v.Reason
	default:
		class, reason = c.classifyAfter(c.pre[:min(max(v.Header, 0), len(c.pre))]), v.Reason
	}
	return bits, chi2, class, reason
}

// classifyAfter is the verdict of the statistics over the counted bytes
// after h, the first bytes counted. It takes h's bytes out of the counts
// and puts them back, so it allocates nothing.
func (c *Counter) classifyAfter(h []byte) Class {
	for _, v := range h {
		c.counts[v]--
	}
	c.n -= uint32(len(h))
	class := c.classify(c.Shannon(), c.ChiSquare())
	for _, v := range h {
		c.counts[v]++
	}
	c.n += uint32(len(h))
	return class
}

// classify is the verdict of the statistics alone.
func (c *Counter) classify(h, chi2 float64) Class {
	if c.n < MinSample {
		return Unknown
	}
	if h >= expectedFor(int(c.n))-RandomMargin {
		if chi2 <= UniformChi2Max*max(1, float64(c.n)/65536) {
			return Encrypted
		}
		return Compressed
	}
	if h < TextBelow && c.printable() >= 0.95 {
		return Text
	}
	return Mixed
}

func (c *Counter) printable() float64 {
	var k uint32
	for _, v := range c.seen[:c.nSeen] {
		if v == '\t' || v == '\n' || v == '\r' || (v >= 0x20 && v < 0x7f) {
			k += c.counts[v]
		}
	}
	return float64(k) / float64(c.n)
}
