package flows

import (
	"encoding/json"
	"strconv"
	"testing"
)

// inspectPackets turns fuzz bytes into one flow's packets: a TCP handshake
// (or a UDP flow) and then segments whose direction, sequence offset and
// length come from the input, so reordering, overlap, holes and
// retransmission all happen.
func inspectPackets(data []byte, emit func(*Packet)) {
	if len(data) < 3 {
		return
	}
	var p Packet
	p.Src[0], p.Src[3], p.Dst[0], p.Dst[3] = 10, 1, 198, 2
	p.SrcPort, p.DstPort = 40000, uint16(data[1])<<8|uint16(data[2])
	p.Proto, p.IPLen = 6, 40
	udp := data[0]&1 == 1
	if udp {
		p.Proto = 17
	}
	ts := int64(1e9)
	send := func(orig bool, flags uint8, seq uint32, payload []byte) {
		q := p
		if !orig {
			q.Src, q.Dst, q.SrcPort, q.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		}
		ts += 1e6
		q.TS, q.Flags, q.Seq, q.Payload = ts, flags, seq, payload
		q.L4Len = uint32(len(payload))
		q.IPLen = 40 + q.L4Len
		if orig {
			q.Ack = 5001
		} else {
			q.Ack = 1001
		}
		emit(&q)
	}
	if !udp {
		send(true, FlagSYN, 1000, nil)
		send(false, FlagSYN|FlagACK, 5000, nil)
		send(true, FlagACK, 1001, nil)
	}
	var next [2]uint32
	for rest := data[3:]; len(rest) >= 3; {
		dir, back, n := rest[0]&1, rest[1], int(rest[2])
		rest = rest[3:]
		n = min(n, len(rest))
		seg := rest[:n]
		rest = rest[n:]
		off := next[dir] - uint32(back>>2) + uint32(back&3)*64 // some behind, some ahead
		isn := uint32(1001)
		if dir == 1 {
			isn = 5001
		}
		send(dir == 0, FlagACK|FlagPSH, isn+off, seg)
		if off+uint32(n) > next[dir] {
			next[dir] = off + uint32(n)
		}
	}
}

// FuzzInspect runs arbitrary segment sequences through a table with payload
// inspection on: nothing may panic and every record must encode to valid
// JSON.
func FuzzInspect(f *testing.F) {
	f.Add([]byte{0, 1, 187, 0, 0, 6, 22, 3, 1, 0, 200, 1})
	f.Add([]byte{0, 0, 80, 0, 0, 18, 'P', 'O', 'S', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n', '\r'})
	f.Add([]byte{1, 0, 53, 0, 0, 12, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 187, 0, 0, 9, 0xc3, 0, 0, 0, 1, 8, 1, 2, 3})
	cfg := DefaultConfig()
	cfg.Capacity = 16
	cfg.Inspect = DefaultInspectConfig()
	cfg.Inspect.MaxFlows = 4
	cfg.Inspect.StreamBytes = 512
	cfg.Inspect.EntropyBytes = 64
	cfg.Inspect.MaxHeldBytes = 2048 // four 512-byte buffers: the budget bites
	var tab *Table
	var buf []byte
	tab = NewTable(cfg, func(r *Record) {
		buf = append(buf[:0], `{"k":0`...)
		if s := tab.Inspection(r); s != nil {
			buf = s.AppendJSON(buf, s.RequestBodyBytes(r))
		}
		buf = append(buf, '}')
		if !json.Valid(buf) {
			panic("invalid JSON: " + string(buf))
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		inspectPackets(data, tab.Update)
		tab.Flush()
	})
}

// TestInspectSteadyStateAllocs: once a flow's handshake is parsed, its
// further packets cost inspection no allocation.
func TestInspectSteadyStateAllocs(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Inspect = DefaultInspectConfig()
	tab := NewTable(cfg, func(*Record) {})
	payload := make([]byte, 1400)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var p Packet
	p.Src[0], p.Src[3], p.Dst[0], p.Dst[3] = 10, 1, 198, 2
	p.SrcPort, p.DstPort, p.Proto = 40000, 9443, 6
	p.TS, p.Flags, p.Seq = 1, FlagSYN, 100
	tab.Update(&p)
	p.Flags, p.Seq, p.Payload, p.L4Len, p.IPLen = FlagACK, 101, payload, 1400, 1440
	allocs := testing.AllocsPerRun(1000, func() {
		p.TS++
		tab.Update(&p)
		p.Seq += 1400
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
}

func TestAppendFixed(t *testing.T) {
	for _, v := range []float64{0, 1, 7.94891234, 285.04999, 0.00004, 12345.6789, 3.99996, 1e20, -2.5} {
		for _, d := range []int{1, 4} {
			want := strconv.FormatFloat(v, 'f', d, 64)
			if got := string(appendFixed(nil, v, d)); got != want {
				t.Errorf("appendFixed(%v, %d) = %s, strconv %s", v, d, got, want)
			}
		}
	}
}
