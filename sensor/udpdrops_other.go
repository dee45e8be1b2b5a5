//go:build !linux

package sensor

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// udpReader reads datagrams; the kernel's drop count is Linux's only.
type udpReader struct {
	c     net.PacketConn
	drops atomic.Uint64
}

func newUDPReader(c net.PacketConn) *udpReader { return &udpReader{c: c} }

func (r *udpReader) read(buf []byte) (int, netip.Addr, error) {
	n, from, err := r.c.ReadFrom(buf)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	var a netip.Addr
	if ua, ok := from.(*net.UDPAddr); ok {
		a, _ = netip.AddrFromSlice(ua.IP)
	}
	return n, a.Unmap(), nil
}

// setReadBuffer asks for n bytes of receive buffer; what is granted is not
// known here.
func setReadBuffer(c *net.UDPConn, n int) int {
	_ = c.SetReadBuffer(n)
	return n
}
