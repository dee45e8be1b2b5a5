//go:build linux

package sensor

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUDPKernelDrops: datagrams the kernel drops on a listener whose buffer
// is full are counted from the socket itself (SO_RXQ_OVFL), as a NetFlow
// flood that outruns the collector would be.
func TestUDPKernelDrops(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.UDPConn).SetReadBuffer(4096) // the kernel makes it a few KiB
	r := newUDPReader(c)
	s, err := net.Dial("udp", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := make([]byte, 1000)
	for i := 0; i < 2000; i++ {
		s.Write(msg) // nothing reads meanwhile: most cannot be queued
	}
	// What was queued carries the count from before the buffer filled;
	// the next datagram after them carries the drops.
	buf := make([]byte, 2048)
	queued := 0
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		if _, _, err := r.read(buf); err != nil {
			break
		}
		queued++
	}
	c.SetReadDeadline(time.Time{})
	s.Write(msg)
	if _, from, err := r.read(buf); err != nil || !from.IsLoopback() {
		t.Fatalf("%v %v", from, err)
	}
	if d := r.drops.Load(); d == 0 || d+uint64(queued) != 2000 {
		t.Fatalf("%d datagrams queued, the kernel's drop count %d: want 2000 together", queued, d)
	}
}

// TestFlowListenerBuffer: buffer= sets the listener's receive buffer, as
// the kernel reports it (SO_RCVBUF, which Linux doubles); a size past
// net.core.rmem_max is granted to root (SO_RCVBUFFORCE) and otherwise
// logged with what was granted.
func TestFlowListenerBuffer(t *testing.T) {
	rmemMax, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	limit, _ := strconv.Atoi(strings.TrimSpace(string(rmemMax)))
	for _, c := range []struct {
		url  string
		want int
	}{
		{"netflow://127.0.0.1:0?buffer=64KiB", 64 << 10},
		{"netflow://127.0.0.1:0", DefaultSocketBuffer},
		{"netflow://127.0.0.1:0?buffer=256MiB", 256 << 20},
	} {
		logs := &lockedWriter{}
		sh := &core{log: slog.New(slog.NewTextHandler(logs, nil))}
		s, err := openCollect(CollectConfig{Listen: []string{c.url}}, sh)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := s.conns[0].(*net.UDPConn).SyscallConn()
		var got int
		rc.Control(func(fd uintptr) { got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
		closeAll(s.conns)
		got /= 2
		switch {
		case got == c.want:
			if strings.Contains(logs.String(), "smaller than asked") {
				t.Errorf("%s: granted in full, yet logged:\n%s", c.url, logs)
			}
		case os.Geteuid() != 0 && c.want > limit && got <= limit:
			if !strings.Contains(logs.String(), "granted="+strconv.Itoa(got)) {
				t.Errorf("%s: %d granted, not logged:\n%s", c.url, got, logs)
			}
		default:
			t.Errorf("%s: receive buffer %d, want %d (rmem_max %d, euid %d)", c.url, got, c.want, limit, os.Geteuid())
		}
	}
}
