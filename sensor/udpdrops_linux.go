//go:build linux

package sensor

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// udpReader reads datagrams from a listener together with the kernel's
// count of datagrams it dropped on that socket for want of buffer room
// (SO_RXQ_OVFL, Linux): a flood that outruns the collector is then a
// number in the statistics, not a silence.
type udpReader struct {
	c     *net.UDPConn
	oob   []byte
	drops atomic.Uint64 // the kernel's count, as of the latest datagram
	ovfl  bool          // SO_RXQ_OVFL is on
}

func newUDPReader(c net.PacketConn) *udpReader {
	r := &udpReader{oob: make([]byte, unix.CmsgSpace(4))}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return r
	}
	r.c = uc
	if raw, err := uc.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			r.ovfl = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1) == nil
		})
	}
	return r
}

// read reads one datagram into buf.
func (r *udpReader) read(buf []byte) (int, netip.Addr, error) {
	n, oobn, _, from, err := r.c.ReadMsgUDPAddrPort(buf, r.oob)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	if r.ovfl && oobn > 0 {
		if msgs, err := unix.ParseSocketControlMessage(r.oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
					r.drops.Store(uint64(binary.NativeEndian.Uint32(m.Data)))
				}
			}
		}
	}
	return n, from.Addr().Unmap(), nil
}

// setReadBuffer asks for n bytes of receive buffer and returns what the
// kernel granted. Past net.core.rmem_max only SO_RCVBUFFORCE (with
// CAP_NET_ADMIN) is heard; Linux reports double what it grants, its own
// bookkeeping included.
func setReadBuffer(c *net.UDPConn, n int) int {
	rc, err := c.SyscallConn()
	if err != nil {
		_ = c.SetReadBuffer(n)
		return n
	}
	got := n
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
			got = v / 2
		}
	})
	return got
}
