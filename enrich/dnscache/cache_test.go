package dnscache

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

const sec = int64(time.Second)

func TestLookupHonoursClientAndDeadline(t *testing.T) {
	c := New(Config{Grace: time.Minute})
	client, other := netip.MustParseAddr("10.0.0.5").AsSlice(), netip.MustParseAddr("10.0.0.6").AsSlice()
	addr := netip.MustParseAddr("2001:db8::1").AsSlice()
	t0 := int64(1_700_000_000) * sec
	c.Add(client, addr, []byte("files.example.test"), 300, t0)
	if n, ok := c.Lookup(nil, client, addr, t0+int64(5*time.Minute)); !ok || string(n) != "files.example.test" {
		t.Fatalf("within TTL: %q %v", n, ok)
	}
	if _, ok := c.Lookup(nil, other, addr, t0); ok {
		t.Fatal("another client's answer was used")
	}
	if _, ok := c.Lookup(nil, client, addr, t0+int64(7*time.Minute)); ok {
		t.Fatal("found past TTL plus grace")
	}
}

// TestSharedAddress: names that share an address (virtual hosting, a
// CDN) are told apart by when the client asked: a flow is named by the
// answer it had just before it, never by one that came after it.
func TestSharedAddress(t *testing.T) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
	c.Add(client, addr, []byte("a.example"), 300, 10*sec)
	c.Add(client, addr, []byte("b.example"), 300, 20*sec)
	c.Add(client, addr, []byte("c.example"), 300, 30*sec)
	for at, want := range map[int64]string{10: "a.example", 11: "a.example", 25: "b.example", 31: "c.example"} {
		if got, ok := c.Lookup(nil, client, addr, at*sec); !ok || string(got) != want {
			t.Errorf("at %ds: %q, want %s", at, got, want)
		}
	}
	if got, ok := c.Lookup(nil, client, addr, 5*sec); ok {
		t.Errorf("a flow before every answer was named %q", got)
	}
	// Asking again for a name: flows after it get it, flows before keep
	// what they had.
	c.Add(client, addr, []byte("a.example"), 300, 40*sec)
	for at, want := range map[int64]string{41: "a.example", 35: "c.example", 15: "a.example", 25: "b.example"} {
		if got, _ := c.Lookup(nil, client, addr, at*sec); string(got) != want {
			t.Errorf("after a.example again, at %ds: %q, want %s", at, got, want)
		}
	}
}

// TestRunOfOneName: the same name answered again and again while valid
// is one entry, so a client refreshing one name does not push the
// others out; flows within the run and after it get that name.
func TestRunOfOneName(t *testing.T) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
	c.Add(client, addr, []byte("b.example"), 300, 1*sec)
	for i := int64(0); i < 200; i++ {
		c.Add(client, addr, []byte("a.example"), 60, (10+30*i)*sec)
	}
	if got, _ := c.Lookup(nil, client, addr, 5*sec); string(got) != "b.example" {
		t.Errorf("before the run: %q, want b.example", got)
	}
	for _, at := range []int64{10, 500, 10 + 30*199 + 60} {
		if got, _ := c.Lookup(nil, client, addr, at*sec); string(got) != "a.example" {
			t.Errorf("at %ds: %q, want a.example", at, got)
		}
	}
}

// TestOutOfOrderAdds: workers add answers in whatever order they reach
// them; the cache orders them by time, so the result is the same.
func TestOutOfOrderAdds(t *testing.T) {
	client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
	type answer struct {
		name string
		at   int64
	}
	var as []answer
	for i := range 15 {
		as = append(as, answer{"n" + strconv.Itoa(i) + ".example", int64(100+10*i) * sec})
	}
	as = append(as, answer{"n0.example", 300 * sec}) // a run split by the others
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		c := New(DefaultConfig())
		for _, i := range rng.Perm(len(as)) {
			c.Add(client, addr, []byte(as[i].name), 300, as[i].at)
		}
		for i := range 15 {
			want := "n" + strconv.Itoa(i) + ".example"
			if got, _ := c.Lookup(nil, client, addr, int64(105+10*i)*sec); string(got) != want {
				t.Errorf("round %d: at %ds: %q, want %s", round, 105+10*i, got, want)
			}
		}
		if got, _ := c.Lookup(nil, client, addr, 301*sec); string(got) != "n0.example" {
			t.Errorf("round %d: after the second n0: %q", round, got)
		}
	}
}

// TestClockSkew: an answer stamped a little after the flow's start names
// it only when nothing came before, and only within the configured skew.
func TestClockSkew(t *testing.T) {
	c := New(Config{Grace: time.Minute, ClockSkew: 2 * time.Millisecond})
	client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
	ms := int64(time.Millisecond)
	c.Add(client, addr, []byte("late.example"), 300, 10*sec+ms)
	if got, ok := c.Lookup(nil, client, addr, 10*sec); !ok || string(got) != "late.example" {
		t.Errorf("1 ms after the flow, nothing before: %q %v", got, ok)
	}
	if got, ok := c.Lookup(nil, client, addr, 10*sec-2*ms); ok {
		t.Errorf("3 ms after the flow: named %q", got)
	}
	c.Add(client, addr, []byte("early.example"), 300, 9*sec)
	if got, _ := c.Lookup(nil, client, addr, 10*sec); string(got) != "early.example" {
		t.Errorf("with an answer before the flow: %q, want early.example", got)
	}
	strict := New(Config{Grace: time.Minute})
	strict.Add(client, addr, []byte("late.example"), 300, 10*sec+1)
	if got, ok := strict.Lookup(nil, client, addr, 10*sec); ok {
		t.Errorf("no skew allowed: named %q", got)
	}
}

// TestExpiredLatest: the latest answer before the flow has expired, an
// older one with a longer TTL still holds: the client may still be using
// that one.
func TestExpiredLatest(t *testing.T) {
	c := New(Config{})
	client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
	c.Add(client, addr, []byte("long.example"), 3600, 10*sec)
	c.Add(client, addr, []byte("short.example"), 5, 20*sec)
	if got, _ := c.Lookup(nil, client, addr, 22*sec); string(got) != "short.example" {
		t.Errorf("within the short TTL: %q", got)
	}
	if got, _ := c.Lookup(nil, client, addr, 100*sec); string(got) != "long.example" {
		t.Errorf("after the short TTL: %q", got)
	}
}

// TestHistoryBound: past MaxValueBytes, the oldest answers go; flows that
// needed them are left unnamed, not given a later name.
func TestHistoryBound(t *testing.T) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	fit := MaxValueBytes / (entryHead + maxName) // names of the longest
	for i := range fit + 4 {
		c.Add(client, addr, append([]byte(strconv.Itoa(i)+"."), long...), 3600, int64(10+i)*sec)
	}
	for i := range 4 {
		if got, ok := c.Lookup(nil, client, addr, int64(10+i)*sec); ok {
			t.Errorf("a dropped answer's flow was named %.20q", got)
		}
	}
	if got, ok := c.Lookup(nil, client, addr, 14*sec); !ok || string(got[:3]) != "4.x" {
		t.Errorf("the oldest kept: %.20q %v", got, ok)
	}
	got, ok := c.Lookup(nil, client, addr, int64(10+fit+3)*sec)
	if want := strconv.Itoa(fit+3) + "."; !ok || string(got[:len(want)]) != want || len(got) != maxName {
		t.Errorf("latest: %.20q (%d bytes) %v", got, len(got), ok)
	}
}

// TestZeroAllocs keeps the hot path free of allocations.
func TestZeroAllocs(t *testing.T) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 5}, []byte{198, 51, 100, 10}
	for i := range 16 {
		c.Add(client, addr, []byte(strconv.Itoa(i)+".example-storage.test"), 300, int64(i)*sec)
	}
	name := []byte("again.example-storage.test")
	buf := make([]byte, 0, 256)
	ts := 16 * sec
	if n := testing.AllocsPerRun(100, func() {
		ts += sec
		c.Add(client, addr, name, 300, ts)
		buf, _ = c.Lookup(buf[:0], client, addr, ts-sec/2)
	}); n != 0 {
		t.Errorf("%v allocations per Add and Lookup", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 5}, []byte{198, 51, 100, 10}
	c.Add(client, addr, []byte("files.example.test"), 300, 0)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = c.Lookup(buf[:0], client, addr, 1)
	}
}

// BenchmarkLookupFull looks up among a full history of names.
func BenchmarkLookupFull(b *testing.B) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 5}, []byte{198, 51, 100, 10}
	for i := range 16 {
		c.Add(client, addr, []byte(strconv.Itoa(i)+".example-storage.test"), 300, int64(i)*sec)
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = c.Lookup(buf[:0], client, addr, 7*sec+1)
	}
}

func BenchmarkAdd(b *testing.B) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 5}, []byte{198, 51, 100, 10}
	names := [][]byte{[]byte("a.example-storage.test"), []byte("b.example-storage.test"), []byte("c.example-storage.test")}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		c.Add(client, addr, names[i%3], 300, i*sec)
		i++
	}
}
