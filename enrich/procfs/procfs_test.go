package procfs

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
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
