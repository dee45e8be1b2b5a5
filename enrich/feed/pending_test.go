package feed

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// heapInUse is the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestPendingBudgetUnderUnfinishedRecords is issue 16's row 6 in bytes:
// 150 connections each begin a record and never finish it (an
// octet-counted syslog frame announcing 4,000,000 bytes, a newline-framed
// syslog line, an HTTP body line), sending 1 MiB of it and then holding
// the connection. Before the budget every connection kept its part: 150
// MiB here, gigabytes at MaxConns. Now the listener keeps at most its 8
// MiB budget, the rest is read and dropped as "budget", and a real sender
// (logger, then curl) is still read while the flood holds its
// connections.
func TestPendingBudgetUnderUnfinishedRecords(t *testing.T) {
	for _, tool := range []string{"logger", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	const budget = 8 << 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listen := func(url string) (*Source, *collector, string) {
		var c collector
		ready := make(chan net.Addr, 1)
		src := &Source{URL: url, Ready: func(a net.Addr) { ready <- a }, PendingBytes: budget, MaxConns: 128}
		go src.Run(ctx, c.add, func(*Error) {})
		return src, &c, (<-ready).String()
	}
	sys, sysGot, sysAddr := listen("syslog+tcp://127.0.0.1:0")
	web, webGot, webAddr := listen("http://127.0.0.1:0/events")
	before := heapInUse()
	chunk := strings.Repeat("x", 64<<10)
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr, head := sysAddr, "4000000 <13>1 2026-12-01T10:00:00Z h t - - - "
			switch i % 3 {
			case 1:
				head = "<13>1 2026-12-01T10:00:00Z h t - - - " // newline framing, never ended
			case 2:
				addr, head = webAddr, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			fmt.Fprint(c, head)
			for range 16 { // 1 MiB of the record, never finished
				if _, err := c.Write([]byte(chunk)); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// The flood's bytes are read (dropped or kept) once the listeners'
	// counts stop moving.
	waitFor(t, "the flood to be read", func() bool {
		return sys.pending.Used() >= budget-(1<<20) || web.pending.Used() >= budget-(1<<20)
	})
	time.Sleep(300 * time.Millisecond)
	grew := int64(heapInUse()) - int64(before)
	t.Logf("150 unfinished records of 1 MiB: the heap grew %d KiB; held syslog %d, http %d bytes of %d each",
		grew>>10, sys.pending.Used(), web.pending.Used(), budget)
	if sys.pending.Used() > budget || web.pending.Used() > budget {
		t.Errorf("held over the budget")
	}
	// Two budgets, each connection's own 64 KiB and read buffers (64 KiB
	// each, two per HTTP connection), and slack; 150 MiB without the
	// budget.
	if grew > 2*budget+150*(256<<10)+(16<<20) {
		t.Errorf("the heap grew by %d bytes under the flood", grew)
	}
	// A real sender still gets through on both listeners.
	_, port, _ := net.SplitHostPort(sysAddr)
	msgs := filepath.Join(t.TempDir(), "msgs")
	os.WriteFile(msgs, []byte(sysmonLines(t, 1)[0]+"\n"), 0o644)
	if out, err := exec.Command("logger", "-n", "127.0.0.1", "-P", port, "-T", "--rfc5424", "-S", "65536", "-t", "outflow-test", "-f", msgs).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v %s", err, out)
	}
	waitFor(t, "logger's event", func() bool { return sysGot.n() == 1 })
	if out, err := exec.Command("curl", "-sS", "--data-binary", "@"+msgs, "http://"+webAddr+"/events").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "1 events") {
		t.Fatalf("curl: %v %s", err, out)
	}
	waitFor(t, "curl's event", func() bool { return webGot.n() == 1 })
}

// TestReadLineBudget: a line past its own OwnBytes that the budget has no
// room for is read to its end and counted as "budget", the next line (a
// real event, within its own bytes) is read, and the budget is whole
// again after it.
func TestReadLineBudget(t *testing.T) {
	p := NewPending(1000)
	r := NewReader("test")
	r.Pending = p
	var got []string
	in := strings.Repeat("y", OwnBytes+5000) + "\n" + sysmonLines(t, 1)[0] + "\n"
	if err := r.Read(strings.NewReader(in), func(e *Event) { got = append(got, e.Image) }); err != nil {
		t.Fatal(err)
	}
	if r.Stats.Errors[ReasonBudget] != 1 || len(got) != 1 || r.Stats.Events != 1 || p.Used() != 0 {
		t.Fatalf("errors %v, events %v, %d bytes still held", r.Stats.Errors, got, p.Used())
	}
}

// TestIdleFloodMakesRoom is row 6's "a real POST waited 36 s": 300 idle
// connections to a listener that holds 16, with the default two-minute
// idle timeout, kept topped up. The listener closes the quietest to make
// room (counted as idle_closed), so logger's and curl's events get in at
// once instead of waiting behind the idle ones for minutes.
func TestIdleFloodMakesRoom(t *testing.T) {
	for _, tool := range []string{"logger", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listen := func(url string) (*Source, *collector, string) {
		var c collector
		ready := make(chan net.Addr, 1)
		src := &Source{URL: url, Ready: func(a net.Addr) { ready <- a }, MaxConns: 16}
		go src.Run(ctx, c.add, func(*Error) {})
		return src, &c, (<-ready).String()
	}
	sys, sysGot, sysAddr := listen("syslog+tcp://127.0.0.1:0")
	web, webGot, webAddr := listen("http://127.0.0.1:0/events")
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := range 300 {
		addr := sysAddr
		if i%2 == 1 {
			addr = webAddr
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	time.Sleep(firstBytes + 100*time.Millisecond)
	msgs := filepath.Join(t.TempDir(), "msgs")
	os.WriteFile(msgs, []byte(sysmonLines(t, 1)[0]+"\n"), 0o644)
	_, port, _ := net.SplitHostPort(sysAddr)
	if out, err := exec.Command("logger", "-n", "127.0.0.1", "-P", port, "-T", "--rfc5424", "-S", "65536", "-t", "outflow-test", "-f", msgs).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v %s", err, out)
	}
	// Each connection in the backlog before logger's closes an idle one
	// (16 at a time, once they have been silent for firstBytes): logger's
	// event comes within seconds, not the two minutes of the idle timeout.
	waitFor(t, "logger's event behind 150 idle connections", func() bool { return sysGot.n() == 1 })
	out, err := exec.Command("curl", "-sS", "--max-time", "30", "--data-binary", "@"+msgs, "http://"+webAddr+"/events").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "1 events") {
		t.Fatalf("curl behind 150 idle connections: %v %s", err, out)
	}
	waitFor(t, "curl's event", func() bool { return webGot.n() == 1 })
	if sys.Stats().Errors[ReasonIdleClosed] == 0 || web.Stats().Errors[ReasonIdleClosed] == 0 {
		t.Errorf("no connection was counted as closed for room: %v, %v", sys.Stats().Errors, web.Stats().Errors)
	}
}

// TestClosedConnectionsLeaveNothing: a sender that connects, sends a line
// and goes, 2,000 times, leaves no goroutine behind in the listener (each
// connection used to leave one waiting for the stop, holding the
// connection: 100,000 of them in the 10-minute soak).
func TestClosedConnectionsLeaveNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c collector
	ready := make(chan net.Addr, 1)
	src := &Source{URL: "syslog+tcp://127.0.0.1:0", Ready: func(a net.Addr) { ready <- a }}
	go src.Run(ctx, c.add, func(*Error) {})
	addr := (<-ready).String()
	before := runtime.NumGoroutine()
	line := sysmonLines(t, 1)[0]
	for range 2000 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "<13>1 2026-12-01T10:00:00Z h t - - - %s\n", line)
		conn.Close()
	}
	waitFor(t, "the 2,000 events", func() bool { return c.n() == 2000 })
	var n int
	waitFor(t, "the listener's goroutines to end", func() bool { n = runtime.NumGoroutine(); return n < before+20 })
	t.Logf("%d goroutines before, %d after 2,000 connections", before, n)
}
