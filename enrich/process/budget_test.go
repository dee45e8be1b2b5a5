package process

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// labEvents reads the detection lab's recorded host events (pcaps/
// record-detect.sh: real curl, python3 and socat on one VM) into x, and
// returns their connect events: the flows a capture would show.
func labEvents(t *testing.T, x *Index) []*feed.Event {
	t.Helper()
	var conns []*feed.Event
	if _, err := feed.ReadFile("../../pcaps/outflow-detect.events.jsonl", func(e *feed.Event) {
		x.Add(e)
		if e.Kind == feed.KindConnect {
			c := *e
			conns = append(conns, &c)
		}
	}, nil); err != nil {
		t.Fatal(err)
	}
	if len(conns) != 12 {
		t.Fatalf("%d connect events in the lab's recording, want 12", len(conns))
	}
	return conns
}

// flood writes n forged connect events as Outflow host-event lines, on
// 99 made-up hosts and, when onLab, a quarter on the lab host "vm", for
// tuples no flow has, dated within the lab's seconds, with a command
// line each.
func flood(n int, onLab bool) []byte {
	var b bytes.Buffer
	base := time.Date(2026, 12, 1, 10, 59, 18, 0, time.UTC)
	for i := 0; i < n; i++ {
		host := "vm"
		if i%4 != 0 || !onLab {
			host = fmt.Sprintf("forged-%02d", i%99)
		}
		fmt.Fprintf(&b, `{"outflow_event":"connect","time":%q,"host":%q,"feed":"procfs","pid":%d,"image":"/usr/bin/forged",`+
			`"command_line":"forged --flood %d","proto":6,"src":"10.77.%d.%d","src_port":%d,"dst":"203.0.113.%d","dst_port":443,"initiated":true,"has_src_port":true}`+"\n",
			base.Add(time.Duration(i%6000)*time.Millisecond).Format(time.RFC3339Nano), host, 20000+i%30000, i,
			1+(i>>8)%250, 1+i%250, 1024+i%60000, 1+i%200)
	}
	return b.Bytes()
}

// TestFloodKeepsRealJoins is issue 16's row 5 on the index alone: the
// lab's recorded events, then a flood of forged connect events many times
// the budget, on the same host and others. Every recorded connection
// still joins its own process, the flood's cost is counted as refused,
// and the heap the index holds stays within the budget.
func TestFloodKeepsRealJoins(t *testing.T) {
	const budget = 16 << 20
	n := 300000
	if testing.Short() {
		n = 30000
	}
	lines := flood(n, true)
	x := New(Config{MaxBytes: budget})
	conns := labEvents(t, x)
	r := feed.NewReader("flood")
	if err := r.Read(bytes.NewReader(lines), x.Add); err != nil {
		t.Fatal(err)
	}
	lines = nil
	st := x.Snapshot()
	t.Logf("%d forged events: %d refused, %d evicted; %d bytes estimated (budget %d)",
		n, st.RefusedConnects, st.Evicted, st.Bytes, budget)
	if r.Stats.Events < uint64(n) {
		t.Fatalf("parsed %d of %d forged events", r.Stats.Events, n)
	}
	// The flood alone is over the budget many times: what was kept of it
	// is what fits.
	if int64(n)*(int64(unsafe.Sizeof(feed.Event{}))+connectOverhead) < 4*budget {
		t.Fatalf("a flood of %d is not four times the budget", n)
	}
	if st.RefusedConnects == 0 || st.Evicted < st.RefusedConnects {
		t.Errorf("refusals not counted: %+v", st)
	}
	if st.Bytes > budget {
		t.Errorf("%d bytes held, budget %d", st.Bytes, budget)
	}
	for _, c := range conns {
		f := Flow{Proto: c.Proto, Orig: netip.AddrPortFrom(c.Src, c.SrcPort), Resp: netip.AddrPortFrom(c.Dst, c.DstPort),
			Start: c.Time.Add(-5 * time.Millisecond)}
		o, _ := x.Join(f)
		if o == nil || o.PID != c.PID || o.Image != c.Image || len(o.Conflict) != 0 {
			t.Errorf("%v: joined %+v, want pid %d %s", f, o, c.PID, c.Image)
		}
	}
	// What the index holds is the heap it frees when it goes: its
	// structures with their map entries and slice slack, which the
	// estimate's overheads count (budget.go), and a part that does not
	// grow with the budget (7.5 to 9 MB for this flood over 100 hosts at
	// budgets of 4, 16 and 32 MiB: Go's maps keep the buckets of their
	// largest size).
	const fixed = 12 << 20
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(x)
	x = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	held := int64(with.HeapAlloc) - int64(without.HeapAlloc)
	t.Logf("the index held %d bytes of heap for a budget of %d", held, budget)
	if held > budget*5/4+fixed {
		t.Errorf("the index held %d bytes of heap, budget %d", held, budget)
	}
}

// TestFloodThenRealEvents: the forged events of other hosts first, the
// real ones after; the flooding hosts pay, the real events still come in.
// (Forged events that claim the real host itself and come first fill
// its share: its events inside the horizon are refused, counted, until
// the forged ones age past it.)
func TestFloodThenRealEvents(t *testing.T) {
	const budget = 8 << 20
	x := New(Config{MaxBytes: budget})
	r := feed.NewReader("flood")
	if err := r.Read(bytes.NewReader(flood(100000, false)), x.Add); err != nil {
		t.Fatal(err)
	}
	for _, c := range labEvents(t, x) {
		o, _ := x.Join(Flow{Proto: c.Proto, Orig: netip.AddrPortFrom(c.Src, c.SrcPort), Resp: netip.AddrPortFrom(c.Dst, c.DstPort),
			Start: c.Time})
		if o == nil || o.PID != c.PID {
			t.Errorf("%s:%d: joined %+v, want pid %d", c.Src, c.SrcPort, o, c.PID)
		}
	}
	if st := x.Snapshot(); st.RefusedConnects == 0 || st.Bytes > budget {
		t.Errorf("%+v", st)
	}
}

// TestOldEventsGoFirst: with the budget full, connect events older than
// the horizon are evicted (counted as such) before anything is refused.
func TestOldEventsGoFirst(t *testing.T) {
	x := New(Config{MaxBytes: 64 << 10, Window: 10 * time.Second})
	for i := 0; i < 2000; i++ {
		local := netip.AddrPortFrom(client.Addr(), uint16(1024+i))
		x.Add(connectOf("vm", int64(i), "/usr/bin/curl", feed.FeedProcfs, local, upload, t0.Add(time.Duration(i)*time.Second)))
	}
	st := x.Snapshot()
	if st.EvictedConnects == 0 || st.RefusedConnects != 0 || st.Bytes > 64<<10 {
		t.Errorf("%+v", st)
	}
	last := netip.AddrPortFrom(client.Addr(), uint16(1024+1999))
	if o, _ := x.Join(Flow{Proto: 6, Orig: last, Resp: upload, Start: t0.Add(1999 * time.Second)}); o == nil || o.PID != 1999 {
		t.Errorf("the newest connect event is gone: %+v", o)
	}
}

// TestCommandLineCapped: a command line past MaxCommandLine is cut on a
// character boundary, marked, and counted; the caller's event is intact.
func TestCommandLineCapped(t *testing.T) {
	x := New(Config{MaxCommandLine: 64})
	long := "python3 -c " + strings.Repeat("é", 100)
	e := start("vm", 42, "/usr/bin/python3", long, t0)
	x.Add(e)
	x.Add(connectOf("vm", 42, "/usr/bin/python3", feed.FeedProcfs, client, upload, t0))
	o, _ := x.Join(uploadFl)
	if o == nil || len(o.Command) > 64 || !strings.HasPrefix(long, o.Command) || !o.CommandTruncated {
		t.Fatalf("%+v", o)
	}
	if !strings.HasSuffix(o.Command, "é") {
		t.Errorf("cut inside a character: %q", o.Command)
	}
	if e.Command != long {
		t.Error("the caller's event was changed")
	}
	if x.Snapshot().Truncated != 1 {
		t.Errorf("Truncated = %d", x.Snapshot().Truncated)
	}
	if b := AppendJSON(nil, "orig_process", o); !bytes.Contains(b, []byte(`"command_line_truncated":true`)) {
		t.Errorf("record: %s", b)
	}
}
