package entropy

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"math"
	"testing"
)

// plain computes Shannon entropy and chi-square the obvious way, with a map,
// as an independent check of Counter.
func plain(b []byte) (h, chi float64) {
	m := map[byte]int{}
	for _, v := range b {
		m[v]++
	}
	n := float64(len(b))
	for _, k := range m {
		p := float64(k) / n
		h += -p * math.Log(p) / math.Ln2
	}
	e := n / 256
	for v := 0; v < 256; v++ {
		d := float64(m[byte(v)]) - e
		chi += d * d / e
	}
	return h, chi
}

func counted(b []byte, limit int) *Counter {
	var c Counter
	c.Reset(limit)
	for len(b) > 0 {
		n := min(len(b), 1460)
		c.Add(b[:n])
		b = b[n:]
	}
	return &c
}

func TestAgainstPlainComputation(t *testing.T) {
	random := make([]byte, 10000)
	rand.Read(random)
	text := bytes.Repeat([]byte("the quarterly figures are attached; please review before friday.\n"), 200)
	for _, in := range [][]byte{random, text, {0, 0, 0, 0}, []byte("a")} {
		for _, limit := range []int{1, 100, 4096, 1 << 20} {
			c := counted(in, limit)
			n := min(len(in), limit)
			h, chi := plain(in[:n])
			if c.N() != n || math.Abs(c.Shannon()-h) > 1e-9 || math.Abs(c.ChiSquare()-chi) > 1e-6*max(1, chi) {
				t.Errorf("limit %d on %d bytes: n=%d H=%v chi=%v, plain H=%v chi=%v", limit, len(in), c.N(), c.Shannon(), c.ChiSquare(), h, chi)
			}
		}
	}
}

// TestExpectedRandom compares the exact expectation with the average over
// samples from crypto/rand.
func TestExpectedRandom(t *testing.T) {
	for _, n := range []int{64, 256, 1440, 4096} {
		const trials = 400
		sum := 0.0
		b := make([]byte, n)
		for i := 0; i < trials; i++ {
			rand.Read(b)
			sum += counted(b, n).Shannon()
		}
		got, want := sum/trials, ExpectedRandom(n)
		if math.Abs(got-want) > 0.01 {
			t.Errorf("n=%d: random data averages %.4f bits, ExpectedRandom %.4f", n, got, want)
		}
	}
	// The large-sample bias is (K-1)/(2 n ln 2) (Miller-Madow).
	if got, want := ExpectedRandom(1<<16), 8-255/(2*65536*math.Ln2); math.Abs(got-want) > 1e-3 {
		t.Errorf("n=65536: %.5f, Miller-Madow %.5f", got, want)
	}
}

func TestClassify(t *testing.T) {
	random := make([]byte, 4096)
	rand.Read(random)
	text := bytes.Repeat([]byte("Dear team, the report for Q3 is attached. Regards, Alice.\r\n"), 100)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(random[:3000])
	w.Write(text)
	w.Close()
	for _, c := range []struct {
		name string
		in   []byte
		want Class
	}{
		{"random", random, Encrypted},
		{"text", text, Text},
		{"gzip", gz.Bytes(), Compressed},
		{"short", random[:10], Unknown},
		{"half text half random", append(append([]byte{}, text[:2048]...), random[:2048]...), Mixed},
	} {
		if got := counted(c.in, 4096).Classify(); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	buf := make([]byte, 1460)
	rand.Read(buf)
	var c Counter
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Reset(1 << 30)
		c.Add(buf)
	}
}
