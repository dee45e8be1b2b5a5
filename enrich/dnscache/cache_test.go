package dnscache

import (
	"net/netip"
	"testing"
	"time"
)

func TestLookupHonoursClientAndDeadline(t *testing.T) {
	c := New(Config{Grace: time.Minute})
	client, other := netip.MustParseAddr("10.0.0.5").AsSlice(), netip.MustParseAddr("10.0.0.6").AsSlice()
	addr := netip.MustParseAddr("2001:db8::1").AsSlice()
	t0 := int64(1_700_000_000) * int64(time.Second)
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

// TestSharedAddress: names that share an address (virtual hosting, a
// CDN) are told apart by when the client asked: a flow is named by the
// answer it had just before it.
func TestSharedAddress(t *testing.T) {
	c := New(DefaultConfig())
	client, addr := []byte{10, 0, 0, 2}, []byte{198, 51, 100, 10}
	s := int64(time.Second)
	c.Add(client, addr, []byte("a.example"), 300, 10*s)
	c.Add(client, addr, []byte("b.example"), 300, 20*s)
	c.Add(client, addr, []byte("c.example"), 300, 30*s)
	for at, want := range map[int64]string{11: "a.example", 25: "b.example", 31: "c.example", 5: "a.example"} {
		if got, ok := c.Lookup(nil, client, addr, at*s); !ok || string(got) != want {
			t.Errorf("at %ds: %q, want %s", at, got, want)
		}
	}
	// Asking again for a name moves its answer forward.
	c.Add(client, addr, []byte("a.example"), 300, 40*s)
	if got, _ := c.Lookup(nil, client, addr, 41*s); string(got) != "a.example" {
		t.Errorf("after a.example again: %q", got)
	}
	if got, _ := c.Lookup(nil, client, addr, 35*s); string(got) != "c.example" {
		t.Errorf("between: %q", got)
	}
}
