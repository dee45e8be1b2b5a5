package flows

import (
	"testing"
	"time"
)

// tcp builds a TCP packet from 10.0.0.1:port to 198.51.100.1:443 (or back).
func tcp(ts time.Duration, port uint16, back bool, flags uint8, seq, ack uint32, n uint32) *Packet {
	p := &Packet{TS: int64(ts), Proto: 6, Flags: flags, Seq: seq, Ack: ack, L4Len: n, IPLen: 40 + n, FrameLen: 54 + n, Window: 1000}
	c, s := [16]byte{10, 0, 0, 1}, [16]byte{198, 51, 100, 1}
	p.Src, p.Dst, p.SrcPort, p.DstPort = c, s, port, 443
	if back {
		p.Src, p.Dst, p.SrcPort, p.DstPort = s, c, 443, port
	}
	return p
}

type collected struct{ recs []Record }

func (c *collected) emit(r *Record) { c.recs = append(c.recs, *r) }

func handshake(t *Table, at time.Duration, port uint16) {
	t.Update(tcp(at, port, false, FlagSYN, 100, 0, 0))
	t.Update(tcp(at+time.Millisecond, port, true, FlagSYN|FlagACK, 500, 101, 0))
	t.Update(tcp(at+2*time.Millisecond, port, false, FlagACK, 101, 501, 0))
}

// TestActiveTimeoutEmitsInterims: a flow that lasts past the active timeout
// gets interim records (final false) with running totals, then its final one.
func TestActiveTimeoutEmitsInterims(t *testing.T) {
	var out collected
	cfg := DefaultConfig()
	cfg.ActiveTimeout = 10 * time.Second
	tab := NewTable(cfg, out.emit)
	handshake(tab, time.Second, 40000)
	seq := uint32(101)
	for i := 0; i < 25; i++ { // one data segment a second for 25 s
		tab.Update(tcp(time.Duration(2+i)*time.Second, 40000, false, FlagACK|FlagPSH, seq, 501, 100))
		seq += 100
	}
	tab.Flush()
	if len(out.recs) != 3 {
		t.Fatalf("%d records, want 2 interims and 1 final", len(out.recs))
	}
	for i, r := range out.recs {
		if r.Final() != (i == 2) {
			t.Errorf("record %d: final %v", i, r.Final())
		}
	}
	if b := out.recs[2].OrigBytes(); b != 2500 {
		t.Errorf("final orig_bytes %d, want 2500", b)
	}
	if a, b := out.recs[0].Orig.Pkts, out.recs[1].Orig.Pkts; !(a < b && b < out.recs[2].Orig.Pkts) {
		t.Errorf("interim packet counts %d, %d do not grow to %d", a, b, out.recs[2].Orig.Pkts)
	}
}

// TestCapacityEvictsTheIdlest: past its capacity the table ends the flow
// idle longest, counts it, and marks its record.
func TestCapacityEvictsTheIdlest(t *testing.T) {
	var out collected
	cfg := DefaultConfig()
	cfg.Capacity = 4
	tab := NewTable(cfg, out.emit)
	for i := 0; i < 4; i++ {
		handshake(tab, time.Duration(i)*time.Millisecond*10, uint16(40000+i))
	}
	handshake(tab, time.Second, 40010)
	if tab.Stats.Evicted != 1 || len(out.recs) != 1 || !out.recs[0].Evicted() || out.recs[0].OrigP != 40000 {
		t.Fatalf("evicted %d, records %d, first %+v", tab.Stats.Evicted, len(out.recs), out.recs)
	}
	if tab.Len() != 4 {
		t.Errorf("%d flows after eviction, want 4", tab.Len())
	}
}

// TestReusedTupleStartsANewFlow: a SYN on a closed connection's 5-tuple is a
// new flow, as in Zeek; a retransmitted SYN on an open one is not.
func TestReusedTupleStartsANewFlow(t *testing.T) {
	var out collected
	tab := NewTable(DefaultConfig(), out.emit)
	handshake(tab, 0, 40000)
	tab.Update(tcp(time.Second, 40000, false, FlagSYN, 100, 0, 0)) // retransmission: same ISN
	if tab.Stats.Reused != 0 {
		t.Fatalf("a retransmitted SYN started a new flow")
	}
	tab.Update(tcp(2*time.Second, 40000, false, FlagFIN|FlagACK, 101, 501, 0))
	tab.Update(tcp(2*time.Second+time.Millisecond, 40000, true, FlagFIN|FlagACK, 501, 102, 0))
	tab.Update(tcp(2*time.Second+2*time.Millisecond, 40000, false, FlagACK, 102, 502, 0))
	handshake(tab, 3*time.Second, 40000)
	tab.Flush()
	if tab.Stats.Reused != 1 || len(out.recs) != 2 {
		t.Fatalf("reused %d, %d records", tab.Stats.Reused, len(out.recs))
	}
	if s := out.recs[0].ConnState(); s != "SF" {
		t.Errorf("first connection %s, want SF", s)
	}
	if h := string(out.recs[1].History()); h != "ShA" {
		t.Errorf("second connection history %q, want ShA", h)
	}
}

// TestIdleTimeoutsByState: an unanswered SYN ends 5 s after it was sent, a
// closed connection 5 s after its last packet, an established one after 5
// minutes of silence, a UDP flow after a minute.
func TestIdleTimeoutsByState(t *testing.T) {
	var out collected
	tab := NewTable(DefaultConfig(), out.emit)
	tab.Update(tcp(0, 1, false, FlagSYN, 1, 0, 0))
	tab.Update(tcp(3*time.Second, 1, false, FlagSYN, 1, 0, 0)) // retransmitted, same attempt
	handshake(tab, 0, 2)
	udp := &Packet{TS: 0, Proto: 17, SrcPort: 5000, DstPort: 53, IPLen: 60, L4Len: 32}
	udp.Src, udp.Dst = [16]byte{10, 0, 0, 1}, [16]byte{198, 51, 100, 1}
	tab.Update(udp)
	ended := func(at time.Duration) []uint16 {
		out.recs = out.recs[:0]
		tab.Expire(int64(at))
		var ports []uint16
		for _, r := range out.recs {
			ports = append(ports, r.OrigP)
		}
		return ports
	}
	if p := ended(4 * time.Second); len(p) != 0 {
		t.Errorf("at 4 s ended %v", p)
	}
	if p := ended(6 * time.Second); len(p) != 1 || p[0] != 1 {
		t.Errorf("at 6 s ended %v, want the attempt (port 1)", p)
	}
	if p := ended(61 * time.Second); len(p) != 1 || p[0] != 5000 {
		t.Errorf("at 61 s ended %v, want the UDP flow", p)
	}
	if p := ended(299 * time.Second); len(p) != 0 {
		t.Errorf("at 299 s ended %v", p)
	}
	if p := ended(301 * time.Second); len(p) != 1 || p[0] != 2 {
		t.Errorf("at 301 s ended %v, want the established flow (port 2)", p)
	}
}
