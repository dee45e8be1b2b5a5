package process

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/internal/shared"
)

// lsassLog is the largest real log at hand: 948 Sysmon and Security
// records in PowerShell's flattened JSON.
func lsassLog(b testing.TB) []byte {
	raw, err := os.ReadFile(shared.Path(b, "hostlogs/otrf-lsass-metasploit/metasploit_logonpasswords_lsass_memory_dump.subset.json"))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkParseAndIndex: host events parsed and indexed per second, one
// core.
func BenchmarkParseAndIndex(b *testing.B) {
	raw := lsassLog(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var events uint64
	for i := 0; i < b.N; i++ {
		x := New(DefaultConfig())
		r := feed.NewReader("bench")
		if err := r.Read(bytes.NewReader(raw), x.Add); err != nil {
			b.Fatal(err)
		}
		events += r.Stats.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkJoin: the cost of attributing one flow (both ends), against
// the LSASS fixture's index.
func BenchmarkJoin(b *testing.B) {
	x := New(DefaultConfig())
	var flows []Flow
	r := feed.NewReader("bench")
	if err := r.Read(bytes.NewReader(lsassLog(b)), func(e *feed.Event) {
		x.Add(e)
		if e.Kind == feed.KindConnect && e.Feed == feed.FeedSysmon {
			flows = append(flows, Flow{Proto: e.Proto, Orig: netip.AddrPortFrom(e.Src, e.SrcPort),
				Resp: netip.AddrPortFrom(e.Dst, e.DstPort), Start: e.Time.Add(-100 * time.Millisecond)})
		}
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	joined := 0
	for i := 0; i < b.N; i++ {
		if o, _ := x.Join(flows[i%len(flows)]); o != nil {
			joined++
		}
	}
	if joined == 0 {
		b.Fatal("nothing joined")
	}
}

// TestIndexMemoryPerProcess measures the heap an index holds per tracked
// process, with a connect event each.
func TestIndexMemoryPerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100k processes")
	}
	const n = 100000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := New(DefaultConfig())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		e := feed.Event{Kind: feed.KindProcessStart, Feed: feed.FeedSysmon, Host: "host", PID: int64(i + 100),
			GUID: "{81056205-565c-64dc-2304-000000000800}" + string(rune('a'+i%26)) + itoaI(i), Time: base.Add(time.Duration(i) * time.Millisecond),
			Image: `C:\Windows\System32\svchost.exe`, Command: `C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule`,
			User: `NT AUTHORITY\SYSTEM`, PPID: 4, ParentImg: `C:\Windows\System32\services.exe`}
		x.Add(&e)
		c := e
		c.Kind, c.Proto, c.Initiated, c.HasSrcPort = feed.KindConnect, 6, true, true
		c.Src, c.SrcPort = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(1024+i%60000)
		c.Dst, c.DstPort = netip.AddrFrom4([4]byte{198, 51, 100, 1}), 443
		x.Add(&c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes of heap per process with one connect event (strings included)", per)
	runtime.KeepAlive(x)
	_ = filepath.Join
}

func itoaI(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

// BenchmarkJoinLineage: attributing one flow whose process has a chain of
// ancestors deeper than LineageDepth (4 are walked and kept).
func BenchmarkJoinLineage(b *testing.B) {
	x := New(DefaultConfig())
	fl := chain(x, 10)
	b.ReportAllocs()
	for b.Loop() {
		x.Join(fl)
	}
}
