package flows

import (
	"testing"
	"time"
)

// rawIPv4 builds a raw IPv4 frame (LinkRaw) from a to b carrying l4, with
// IP protocol proto.
func rawIPv4(a, b [4]byte, proto uint8, l4 []byte) []byte {
	n := 20 + len(l4)
	f := []byte{0x45, 0, byte(n >> 8), byte(n), 0, 1, 0, 0, 64, proto, 0, 0}
	f = append(f, a[:]...)
	f = append(f, b[:]...)
	return append(f, l4...)
}

func icmpFrame(a, b [4]byte, typ, code uint8) []byte {
	return rawIPv4(a, b, 1, []byte{typ, code, 0, 0, 0, 0, 0, 0})
}

func udpFrame(a, b [4]byte, sport, dport uint16) []byte {
	return rawIPv4(a, b, 17, []byte{byte(sport >> 8), byte(sport), byte(dport >> 8), byte(dport), 0, 8, 0, 0})
}

// TestOneWayICMPIntoFullTableKeepsReverseFlow is the sequence behind a
// FuzzDecode hang. An ICMP message without a reply type (3/1 here) is keyed
// in its own direction only, so it does not match the flow of a 1/3 message
// sent the other way, though both share one hash. When it came to a full
// table, the insertion point was looked up again after the eviction as if
// the key went both ways: it found that reverse flow's slot and overwrote it.
// The reverse flow then had no slot, and ending it (on expiry, eviction or
// flush) searched the slots for it forever.
func TestOneWayICMPIntoFullTableKeepsReverseFlow(t *testing.T) {
	const capacity = 64
	a, b := [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 7}
	cfg := DefaultConfig()
	cfg.Capacity = capacity
	var ended int
	tab := NewTable(cfg, func(r *Record) {
		if r.Final() {
			ended++
		}
	})
	d := NewDecoder()
	at := time.Second
	feed := func(what string, frame []byte) {
		t.Helper()
		at += time.Millisecond
		pkts, err := d.Decode(frame, LinkRaw, int64(at))
		if err != nil || len(pkts) != 1 {
			t.Fatalf("%s: %d packets, error %v", what, len(pkts), err)
		}
		tab.Update(&pkts[0])
		if err := tab.Check(); err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
	}
	feed("ICMP 1/3 from b", icmpFrame(b, a, 1, 3))
	for i := range capacity - 1 {
		feed("UDP filler", udpFrame(a, b, uint16(20000+i), 9))
	}
	// Seen again, the ICMP flow is not the one eviction picks.
	feed("ICMP 1/3 from b again", icmpFrame(b, a, 1, 3))
	feed("ICMP 3/1 from a into the full table", icmpFrame(a, b, 3, 1))
	if tab.Len() != capacity || tab.Stats.Evicted != 1 {
		t.Fatalf("%d flows, %d evicted; want %d and 1", tab.Len(), tab.Stats.Evicted, capacity)
	}
	// Two minutes on every flow has expired (UDP and ICMP time out after
	// one): the reverse ICMP flow must end like the rest.
	at += 2 * time.Minute
	feed("UDP after the timeouts", udpFrame(a, b, 30000, 9))
	tab.Flush()
	if want := capacity + 2; ended != want {
		t.Errorf("%d flows ended, want %d", ended, want)
	}
}

// TestResetMendsABrokenTable: a table whose slots lost a live flow (as the
// one-way ICMP bug left one) fails Check, and Reset drops its flows,
// counted, leaving a table that takes new flows and ends them all.
func TestResetMendsABrokenTable(t *testing.T) {
	a, b := [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 7}
	cfg := DefaultConfig()
	cfg.Capacity = 64
	cfg.Inspect = DefaultInspectConfig()
	var ended int
	tab := NewTable(cfg, func(r *Record) {
		if r.Final() {
			ended++
		}
	})
	d := NewDecoder()
	feed := func(frame []byte) {
		t.Helper()
		pkts, err := d.Decode(frame, LinkRaw, int64(time.Second))
		if err != nil || len(pkts) != 1 {
			t.Fatal(err)
		}
		tab.Update(&pkts[0])
	}
	for i := range 10 {
		feed(udpFrame(a, b, uint16(20000+i), 53))
	}
	if err := tab.Check(); err != nil {
		t.Fatalf("a sound table: %v", err)
	}
	for i, s := range tab.slots { // lose one flow's slot
		if s != 0 {
			tab.slots[i] = 0
			break
		}
	}
	if err := tab.Check(); err == nil {
		t.Fatal("a table that lost a flow's slot passes Check")
	}
	if n := tab.Reset(); n != 10 || tab.Len() != 0 || tab.Stats.Discarded != 10 || tab.Check() != nil {
		t.Fatalf("reset dropped %d (discarded %d), %d flows left, check %v", n, tab.Stats.Discarded, tab.Len(), tab.Check())
	}
	for i := range 70 { // past the capacity: evictions work again
		feed(udpFrame(a, b, uint16(30000+i), 53))
	}
	tab.Flush()
	if ended != 70 || tab.Len() != 0 || tab.Check() != nil {
		t.Fatalf("%d flows ended of 70, %d left", ended, tab.Len())
	}
}
