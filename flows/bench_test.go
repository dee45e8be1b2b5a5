package flows

import (
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/internal/synth"
)

func discard(*Record) {}

// run decodes and accounts every frame once; the hot path under test.
func run(d *Decoder, t *Table, frames [][]byte, lt LinkType, ts *int64) {
	for _, f := range frames {
		*ts += 1000
		pkts, _ := d.Decode(f, lt, *ts)
		for i := range pkts {
			t.Update(&pkts[i])
		}
	}
}

func totalLen(frames [][]byte) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f))
	}
	return n
}

// TestDecodeUpdateAllocatesNothing keeps the per-packet path free of heap
// allocations once the table has seen its flows.
func TestDecodeUpdateAllocatesNothing(t *testing.T) {
	frames, lt := readAll(t, shared.Path(t, "zeek/testing/btest/Traces/ssh/ssh.pcap"))
	frames2, lt2 := readAll(t, shared.Path(t, "zeek/testing/btest/Traces/tunnels/vxlan.pcap"))
	d, tab := NewDecoder(), NewTable(DefaultConfig(), discard)
	var ts int64 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	run(d, tab, frames, lt, &ts)
	run(d, tab, frames2, lt2, &ts)
	allocs := testing.AllocsPerRun(5, func() {
		run(d, tab, frames, lt, &ts)
		run(d, tab, frames2, lt2, &ts)
	})
	if allocs != 0 {
		t.Fatalf("decode+update allocated %.1f times per pass over %d frames", allocs, len(frames)+len(frames2))
	}
}

// TestTableMemoryPerFlow fills a table with a million concurrent flows and
// measures the heap it holds per flow, index and records together.
func TestTableMemoryPerFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("1M flows")
	}
	const n = 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cfg := DefaultConfig()
	cfg.Capacity = n
	tab := NewTable(cfg, discard)
	var p Packet
	p.Proto, p.Flags, p.IPLen = 6, FlagSYN, 60
	p.TS = 1
	for i := 0; i < n; i++ {
		p.Src[0], p.Src[1], p.Src[2], p.Src[3] = 10, byte(i>>16), byte(i>>8), byte(i)
		p.Dst[0], p.Dst[1], p.Dst[2], p.Dst[3] = 198, 51, 100, 1
		p.SrcPort, p.DstPort = uint16(1024+i%60000), 443
		tab.Update(&p)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if tab.Len() != n {
		t.Fatalf("table holds %d flows, want %d (evicted %d)", tab.Len(), n, tab.Stats.Evicted)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f bytes of heap per tracked flow (Record %d bytes) with %d flows", per, unsafe.Sizeof(Record{}), n)
	if per > 256 {
		t.Fatalf("%.1f bytes per flow, budget 256", per)
	}
	runtime.KeepAlive(tab)
}

func benchFrames(b *testing.B, frames [][]byte, lt LinkType) {
	d, tab := NewDecoder(), NewTable(DefaultConfig(), discard)
	var ts int64
	run(d, tab, frames, lt, &ts) // warm: flows exist, layers sized
	b.SetBytes(totalLen(frames))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(d, tab, frames, lt, &ts)
	}
	b.ReportMetric(float64(len(frames))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkDecodeUpdateSmall: a million small packets in short flows.
func BenchmarkDecodeUpdateSmall(b *testing.B) {
	benchFrames(b, synth.Frames(1<<20/7, 6), LinkEthernet)
}

// BenchmarkDecodeUpdateLarge: full-size segments of one bulk transfer.
func BenchmarkDecodeUpdateLarge(b *testing.B) {
	benchFrames(b, synth.Bulk(100000, 1448), LinkEthernet)
}

// BenchmarkDecodeUpdateSSH: a real capture (Zeek's ssh.pcap, 1.3 MB).
func BenchmarkDecodeUpdateSSH(b *testing.B) {
	frames, lt := readAll(b, shared.Path(b, "zeek/testing/btest/Traces/ssh/ssh.pcap"))
	benchFrames(b, frames, lt)
}
