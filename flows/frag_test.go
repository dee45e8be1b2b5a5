package flows

import (
	"testing"
	"time"
)

// ipv4Fragment builds a raw IPv4 fragment of datagram id: offset in bytes
// (a multiple of 8), more set on all but the last fragment.
func ipv4Fragment(a, b [4]byte, id uint16, offset int, more bool, body []byte) []byte {
	n := 20 + len(body)
	fo := uint16(offset / 8)
	if more {
		fo |= 0x2000
	}
	f := []byte{0x45, 0, byte(n >> 8), byte(n), byte(id >> 8), byte(id), byte(fo >> 8), byte(fo), 64, 17, 0, 0}
	f = append(f, a[:]...)
	f = append(f, b[:]...)
	return append(f, body...)
}

// TestUnfinishedFragmentsAreAllOrphans floods the fragment cache with later
// fragments whose first never comes, far more datagrams than it has slots.
// Each one must be counted as an orphan: those pushed out of their slot by
// another datagram as well as those still held at the end (the count was once
// the cache's size, however many were sent). A datagram whose later fragment
// comes before its first still counts in full to its flow.
func TestUnfinishedFragmentsAreAllOrphans(t *testing.T) {
	const flood = 20000
	a, b := [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 7}
	cfg := DefaultConfig()
	cfg.FragmentSlots = 64
	var got []*Record
	tab := NewTable(cfg, func(r *Record) {
		if r.Final() {
			c := *r
			got = append(got, &c)
		}
	})
	d := NewDecoder()
	at := time.Second
	feed := func(frame []byte) {
		t.Helper()
		at += time.Microsecond
		pkts, err := d.Decode(frame, LinkRaw, int64(at))
		if err != nil || len(pkts) != 1 {
			t.Fatalf("%d packets, error %v", len(pkts), err)
		}
		tab.Update(&pkts[0])
	}
	// A real datagram, reordered: its last 100 bytes, then its first
	// fragment (UDP header declaring 1572 bytes of payload, and 1472 of them).
	first := append([]byte{0x13, 0x88, 0x00, 0x35, 0x06, 0x2c, 0, 0}, make([]byte, 1472)...)
	feed(ipv4Fragment(a, b, 7, 1480, false, make([]byte, 100)))
	feed(ipv4Fragment(a, b, 7, 0, true, first))
	for i := range flood {
		feed(ipv4Fragment(a, b, uint16(1000+i), 1480, false, make([]byte, 100)))
	}
	tab.Flush()
	if tab.Stats.FragOrphans != flood || tab.Stats.FragUnresolved != flood+1 {
		t.Errorf("orphans %d, unresolved %d; want %d and %d", tab.Stats.FragOrphans, tab.Stats.FragUnresolved, flood, flood+1)
	}
	if len(got) != 1 {
		t.Fatalf("%d flows, want the one datagram's", len(got))
	}
	if r := got[0]; r.OrigP != 5000 || r.RespP != 53 || r.Orig.Pkts != 1 || r.OrigBytes() != 1572 || r.Orig.IPBytes != 1500+100 {
		t.Errorf("the reordered datagram: %d -> %d, %d packets, %d payload bytes, %d IP bytes; want 5000 -> 53, 1, 1572 and 1600 as Zeek counts the reassembled datagram",
			r.OrigP, r.RespP, r.Orig.Pkts, r.OrigBytes(), r.Orig.IPBytes)
	}
}
