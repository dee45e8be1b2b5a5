package flows

import "testing"

// FuzzDecode feeds arbitrary frames of any link type through the decoder and
// the table: nothing may panic, and every packet handed out must be one the
// table can account. The decoder and table live across inputs, so the fuzzer
// also explores the state earlier frames leave behind; the table's
// bookkeeping is checked after every input, so that a state bug fails at the
// frame that caused it rather than as a hang some frames later (a one-way
// ICMP flow overwriting its reverse flow's slot did, see
// TestOneWayICMPIntoFullTableKeepsReverseFlow). Such a failure needs the
// inputs before it; FuzzDecodeSequence reproduces from one input alone.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{}, uint16(LinkEthernet))
	d := NewDecoder()
	cfg := DefaultConfig()
	cfg.Capacity = 64
	tab := NewTable(cfg, func(r *Record) { _ = r.ConnState(); _ = r.OrigBytes() + r.RespBytes() })
	var ts int64
	f.Fuzz(func(t *testing.T, data []byte, lt uint16) {
		ts += 1e6
		decodeInto(t, d, tab, data, LinkType(lt), ts)
	})
}

// FuzzDecodeSequence is FuzzDecode over a whole sequence of frames in one
// input, through a fresh decoder and a table of four flows, so a failure that
// depends on earlier frames reproduces from the input alone. The input is a
// series of records: a byte of seconds since the previous frame (timeouts
// are a minute or more), a byte of length, and that many bytes of frame.
func FuzzDecodeSequence(f *testing.F) {
	f.Add(oneWayICMPSequence(), uint16(LinkRaw))
	f.Fuzz(func(t *testing.T, seq []byte, lt uint16) {
		d := NewDecoder()
		cfg := DefaultConfig()
		cfg.Capacity = 4
		cfg.FragmentSlots = 16 // a fresh table per input: keep it small
		tab := NewTable(cfg, func(r *Record) { _ = r.ConnState(); _ = r.OrigBytes() + r.RespBytes() })
		ts := int64(1e9)
		for len(seq) >= 2 {
			ts += int64(seq[0]) * 1e9
			n := min(int(seq[1]), len(seq)-2)
			frame := seq[2 : 2+n]
			seq = seq[2+n:]
			ts += 1e6
			decodeInto(t, d, tab, frame, LinkType(lt), ts)
		}
		tab.Flush()
		if tab.Len() != 0 {
			t.Fatalf("%d flows left after a flush", tab.Len())
		}
	})
}

// decodeInto decodes one frame and accounts its packets, checking what the
// fuzz targets promise.
func decodeInto(t *testing.T, d *Decoder, tab *Table, data []byte, lt LinkType, ts int64) {
	t.Helper()
	pkts, err := d.Decode(data, lt, ts)
	if err != nil {
		if _, ok := err.(Reason); !ok {
			t.Fatalf("error %v is not a Reason", err)
		}
	}
	if len(pkts) > MaxDepth {
		t.Fatalf("%d packets from one frame", len(pkts))
	}
	for i := range pkts {
		tab.Update(&pkts[i])
	}
	if err := tab.Check(); err != nil {
		t.Fatalf("flow table unsound: %v", err)
	}
}

// oneWayICMPSequence is the regression sequence in FuzzDecodeSequence's
// format, for its four-flow table: an ICMP 1/3 flow, three UDP flows to fill
// the table, the ICMP flow again, the one-way 3/1 message the other way, and
// a frame two minutes later, when every flow expires.
func oneWayICMPSequence() []byte {
	a, b := [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 7}
	frames := [][]byte{icmpFrame(b, a, 1, 3)}
	for i := range 3 {
		frames = append(frames, udpFrame(a, b, uint16(20000+i), 9))
	}
	frames = append(frames, icmpFrame(b, a, 1, 3), icmpFrame(a, b, 3, 1))
	var seq []byte
	for _, fr := range frames {
		seq = append(append(seq, 0, byte(len(fr))), fr...)
	}
	fr := udpFrame(a, b, 30000, 9)
	return append(append(seq, 120, byte(len(fr))), fr...)
}
