//go:build linux

package sensor

import (
	"net"
	"testing"
	"time"
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
