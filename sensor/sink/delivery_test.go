package sink

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// scripted is a transport whose receiver is up or down as the test says:
// the queue logic is tested here; the real transports are tested against
// real servers in their packages.
type scripted struct {
	mu      sync.Mutex
	up      bool
	got     []Record
	sends   int
	refuse  string // a value the receiver refuses outright
	partial int    // when > 0, a send delivers at most this many then fails
}

func (s *scripted) Name() string { return "scripted" }
func (s *scripted) Close() error { return nil }

func (s *scripted) Send(ctx context.Context, recs []Record) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends++
	if !s.up {
		return 0, errors.New("connection refused")
	}
	for i, r := range recs {
		if s.partial > 0 && i == s.partial {
			return i, errors.New("connection reset")
		}
		if string(r.Value) == s.refuse {
			return i, &Rejected{Err: errors.New("400 bad request")}
		}
		s.got = append(s.got, Record{Key: r.Key, Value: slices.Clone(r.Value)})
	}
	return len(recs), nil
}

func (s *scripted) set(f func(*scripted)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func (s *scripted) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v []string
	for _, r := range s.got {
		v = append(v, string(r.Value))
	}
	return v
}

func batchOf(from, to int) *Batch {
	var b Batch
	for i := from; i < to; i++ {
		b.Data = fmt.Appendf(b.Data, "r%d\n", i)
		b.End(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	return &b
}

func want(from, to int) []string {
	var v []string
	for i := from; i < to; i++ {
		v = append(v, fmt.Sprintf("r%d", i))
	}
	return v
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliveryInOrderAcrossOutage(t *testing.T) {
	tr := &scripted{}
	d := NewDelivery(DeliveryConfig{Transport: tr, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, BatchRecords: 7})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	d.WriteBatch(batchOf(0, 50))
	waitFor(t, "retries while down", func() bool { return d.Stats().Retries >= 3 })
	if st := d.Stats(); st.Queued != 50 || st.Lines != 0 {
		t.Fatalf("while down: %+v", st)
	}
	tr.set(func(s *scripted) { s.up, s.partial = true, 5 })
	d.WriteBatch(batchOf(50, 60))
	waitFor(t, "a partial send", func() bool { return len(tr.values()) >= 5 })
	tr.set(func(s *scripted) { s.partial = 0 })
	waitFor(t, "everything", func() bool { return d.Stats().Lines == 60 })
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := tr.values(); !slices.Equal(got, want(0, 60)) {
		t.Fatalf("received %v", got)
	}
	if k := tr.got[3].Key; k != netip.AddrFrom4([4]byte{10, 0, 0, 3}) {
		t.Errorf("key of r3: %v", k)
	}
}

func TestDeliveryMemoryBoundDropsAndCounts(t *testing.T) {
	tr := &scripted{}
	// Each record is 1 key-length byte, 4 key bytes and "rNN": 8 or 9
	// bytes; 100 bytes hold 11 of the first ones.
	d := NewDelivery(DeliveryConfig{Transport: tr, MaxQueue: 100, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, StopTimeout: 10 * time.Millisecond})
	d.Start()
	d.WriteBatch(batchOf(0, 40))
	st := d.Stats()
	if st.Queued+int(st.Dropped) != 40 || st.Dropped == 0 || st.Pending > 100 {
		t.Fatalf("bounded queue: %+v", st)
	}
	if err := d.Stop(); err == nil {
		t.Fatal("records left undelivered at stop must be an error")
	}
	if st := d.Stats(); st.Dropped != 40 {
		t.Fatalf("dropped at stop: %+v", st)
	}
}

func TestDeliveryRejectedIsSkipped(t *testing.T) {
	tr := &scripted{up: true, refuse: "r3"}
	d := NewDelivery(DeliveryConfig{Transport: tr, MinBackoff: time.Millisecond})
	d.Start()
	d.WriteBatch(batchOf(0, 6))
	waitFor(t, "delivery", func() bool { st := d.Stats(); return st.Lines+st.Rejected == 6 })
	d.Stop()
	if got := tr.values(); !slices.Equal(got, []string{"r0", "r1", "r2", "r4", "r5"}) {
		t.Fatalf("received %v", got)
	}
	if st := d.Stats(); st.Rejected != 1 || st.Retries != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Value: []byte(`{"a":1}`)},
		{Key: netip.MustParseAddr("192.0.2.1"), Value: []byte("x")},
		{Key: netip.MustParseAddr("2001:db8::1"), Value: nil},
	} {
		got := recordOf(entry(r))
		if got.Key != r.Key || string(got.Value) != string(r.Value) {
			t.Errorf("%v: got %v", r, got)
		}
	}
	// A damaged entry comes back as its bytes, never a panic.
	for _, e := range [][]byte{nil, {200}, {4, 1}, {16, 1, 2}} {
		_ = recordOf(e)
	}
}

// TestMemQueueOrder: entries come out in order through pushes, partial
// pops and compactions.
func TestMemQueueOrder(t *testing.T) {
	var q memQueue
	next, out := 0, 0
	for round := range 200 {
		for range round % 7 {
			q.push(Record{Key: netip.AddrFrom4([4]byte{10, 0, 0, byte(next)}), Value: fmt.Appendf(nil, "r%d", next)})
			next++
		}
		view := q.peek(nil, 3+round%5, 1<<20)
		for _, e := range view {
			r := recordOf(e)
			if string(r.Value) != fmt.Sprintf("r%d", out) || r.Key != netip.AddrFrom4([4]byte{10, 0, 0, byte(out)}) {
				t.Fatalf("round %d: got %q key %v, want r%d", round, r.Value, r.Key, out)
			}
			out++
		}
		q.pop(len(view))
	}
	if q.len() != next-out {
		t.Fatalf("len %d, want %d", q.len(), next-out)
	}
}

// BenchmarkMemQueue: flows queued in memory for a receiver allocate
// nothing once the queue has grown (push and pop as WriteBatch and the
// sender do, under the same lock).
func BenchmarkMemQueue(b *testing.B) {
	tr := &scripted{up: true}
	d := NewDelivery(DeliveryConfig{Transport: tr})
	batch := batchOf(0, 64)
	b.SetBytes(int64(len(batch.Data)))
	b.ReportAllocs()
	for b.Loop() {
		d.mu.Lock()
		for i := range batch.Len() {
			d.mem.push(batch.Record(i))
		}
		d.mem.pop(d.mem.len())
		d.mu.Unlock()
	}
}
