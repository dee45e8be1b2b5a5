package procfs

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/internal/testserver"
)

// TestOwnSockets: a connection this test makes over loopback, IPv4 and
// IPv6, is found in /proc/net with the addresses the sockets report, its
// inode among this process's descriptors, and the watcher attributes the
// flow to this process.
func TestOwnSockets(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Skipf("SKIPPED — no %s loopback: %v", network, err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := <-accepted
		defer s.Close()
		local := netip.MustParseAddrPort(c.LocalAddr().String())
		remote := netip.MustParseAddrPort(c.RemoteAddr().String())
		local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
		remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())

		var mine *Socket
		socks := ReadSockets("/proc", nil)
		for i := range socks {
			if socks[i].Proto == 6 && socks[i].Local == local && socks[i].Remote == remote {
				mine = &socks[i]
			}
		}
		if mine == nil || mine.Inode == 0 {
			t.Fatalf("%s %v -> %v not in /proc/net (%d sockets)", network, local, remote, len(socks))
		}
		if owners := Owners("/proc", map[uint64]bool{mine.Inode: true}); owners[mine.Inode] != os.Getpid() {
			t.Errorf("inode %d owned by %v, want pid %d", mine.Inode, owners, os.Getpid())
		}

		w := NewWatcher("/proc", time.Minute)
		w.Notice(6, local, remote)
		w.scan()
		o, r := w.Join(process.Flow{Proto: 6, Orig: local, Resp: remote})
		exe, _ := os.Executable()
		if o == nil || o.PID != int64(os.Getpid()) || o.Image != exe || r == nil || r.PID != int64(os.Getpid()) {
			t.Errorf("%s: orig %+v resp %+v, want this test (pid %d, %s) at both ends", network, o, r, os.Getpid(), exe)
		}
	}
}

func TestParseNetLine(t *testing.T) {
	// A line as the kernel prints it on little-endian machines:
	// 127.0.0.1:8080 -> 10.0.0.2:443, inode 12345.
	tab := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 0200000A:01BB 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1\n"
	s := ParseNet([]byte(tab), 6, nil)
	if len(s) != 1 || s[0].Local.String() != "127.0.0.1:8080" || s[0].Remote.String() != "10.0.0.2:443" || s[0].Inode != 12345 {
		t.Fatalf("%+v", s)
	}
}

func FuzzParseNet(f *testing.F) {
	f.Add([]byte("header\n   0: 0100007F:1F90 0200000A:01BB 01 00000000:00000000 00:00000000 00000000     0        0 12345 1\n"))
	f.Add([]byte("header\n   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 99\n"))
	if b, err := os.ReadFile("/proc/net/tcp"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range ParseNet(b, 6, nil) {
			if !s.Local.IsValid() || !s.Remote.IsValid() {
				t.Fatalf("invalid socket %+v", s)
			}
		}
	})
}

// TestAncestorChain: a real chain, sh -c 'sh -c "socat ..."' started by
// this test, connects socat to a loopback listener. The watcher finds
// socat at the socket and reads its ancestors from /proc up to the
// default depth: the inner sh, the outer sh (the pid os/exec started),
// this test (os.Getpid) and its parent (os.Getppid); the attribution and
// the host events name each one, the events once per process: a second
// connection, from this test, adds no process start.
func TestAncestorChain(t *testing.T) {
	socat := testserver.Need(t, "socat")
	sh := testserver.Need(t, "sh")
	socatExe, _ := filepath.EvalSymlinks(socat)
	shExe, _ := filepath.EvalSymlinks(sh)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	script := `sh -c "` + socat + ` -u STDIN TCP:` + ln.Addr().String() + `; true"; true`
	cmd := exec.Command(sh, "-c", script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // socat reads EOF and exits, then both shells
		_ = cmd.Wait()
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := netip.MustParseAddrPort(c.RemoteAddr().String())
	server := netip.MustParseAddrPort(c.LocalAddr().String())

	var evs []feed.Event
	w := NewWatcher("/proc", time.Minute)
	w.OnEvents = func(e []feed.Event) { evs = append(evs, e...) }
	w.Notice(6, client, server)
	w.scan()
	o, _ := w.Join(process.Flow{Proto: 6, Orig: client, Resp: server})
	if o == nil || o.Image != socatExe {
		t.Fatalf("orig = %+v, want socat (%s)", o, socatExe)
	}
	test, _ := os.Executable()
	want := []struct {
		pid   int64
		image string
	}{{-1, shExe}, {int64(cmd.Process.Pid), shExe}, {int64(os.Getpid()), test}, {int64(os.Getppid()), ""}}
	if len(o.Ancestors) != len(want) {
		t.Fatalf("ancestors %+v, want %d", o.Ancestors, len(want))
	}
	for i, w := range want {
		a := o.Ancestors[i]
		if w.pid >= 0 && a.PID != w.pid || w.image != "" && a.Image != w.image || a.Start.IsZero() {
			t.Errorf("ancestor %d = %d %s (started %v), want %d %s", i, a.PID, a.Image, a.Start, w.pid, w.image)
		}
	}
	if a := o.Ancestors[0]; a.PID == int64(cmd.Process.Pid) || !strings.Contains(a.Command, "socat") {
		t.Errorf("the inner sh is %d %q", a.PID, a.Command)
	}
	// The events: one start for each of socat and its ancestors, the
	// ancestors' before socat's, each naming its parent by pid; then
	// socat's connection. (The listener's end is this test's socket:
	// its own process and ancestors are reported too.)
	startAt := map[int64]int{}
	connectAt := -1
	for i, e := range evs {
		switch {
		case e.Kind == feed.KindProcessStart:
			if _, dup := startAt[e.PID]; dup {
				t.Errorf("pid %d started twice", e.PID)
			}
			startAt[e.PID] = i
		case e.Kind == feed.KindConnect && e.PID == o.PID:
			connectAt = i
			if !e.Initiated || netip.AddrPortFrom(e.Src, e.SrcPort) != client {
				t.Errorf("socat's connect %+v", e)
			}
		}
	}
	if connectAt < 0 {
		t.Fatalf("no connect event of socat among %d events", len(evs))
	}
	chain := append([]process.Ancestor{{PID: o.PID, Image: o.Image}}, o.Ancestors...)
	for i, a := range chain {
		at, ok := startAt[a.PID]
		if !ok {
			t.Errorf("no start event for pid %d (%s)", a.PID, a.Image)
			continue
		}
		e := evs[at]
		if e.Image != a.Image {
			t.Errorf("start of pid %d names %s, want %s", a.PID, e.Image, a.Image)
		}
		if i+1 < len(chain) {
			if e.PPID != chain[i+1].PID {
				t.Errorf("start of pid %d: ppid %d, want %d", a.PID, e.PPID, chain[i+1].PID)
			}
			if pa, ok := startAt[chain[i+1].PID]; ok && pa > at {
				t.Errorf("pid %d's start is written before its parent's", a.PID)
			}
		}
		if at > connectAt && a.PID == o.PID {
			t.Errorf("socat's start after its connection")
		}
	}

	// The events, read back as a recording is (outflow replay
	// --host-events), give the process index the same chain.
	x := process.New(process.DefaultConfig())
	for i := range evs {
		x.Add(&evs[i])
	}
	ro, _ := x.Join(process.Flow{Proto: 6, Orig: client, Resp: server, Start: evs[connectAt].Time})
	if ro == nil || ro.PID != o.PID || len(ro.Ancestors) != len(o.Ancestors) {
		t.Fatalf("replayed: %+v, want socat with %d ancestors", ro, len(o.Ancestors))
	}
	for i, a := range ro.Ancestors {
		if a.PID != o.Ancestors[i].PID || a.Image != o.Ancestors[i].Image || a.Command != o.Ancestors[i].Command {
			t.Errorf("replayed ancestor %d = %d %s %q, want %+v", i, a.PID, a.Image, a.Command, o.Ancestors[i])
		}
	}

	// A second connection, from this test: its process and ancestors were
	// reported already.
	c2, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	evs = nil
	w.Notice(6, netip.MustParseAddrPort(c2.LocalAddr().String()), server)
	w.scan()
	for _, e := range evs {
		if e.Kind == feed.KindProcessStart {
			t.Errorf("process %d (%s) started again", e.PID, e.Image)
		}
	}
	if len(evs) != 2 || evs[0].PID != int64(os.Getpid()) || evs[1].PID != int64(os.Getpid()) {
		t.Errorf("second connection: %+v, want its two ends' connects alone", evs)
	}
}
