package syslog

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// peerState is what a look at a connection's socket found.
type peerState int

const (
	peerUnknown peerState = iota // no way to look
	peerIdle                     // open, nothing waiting
	peerSent                     // bytes waiting to be read
	peerClosed                   // FIN or RST received
)

// peek looks at c's socket without blocking and without taking a byte.
func peek(c net.Conn) peerState {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peerUnknown
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peerClosed
	}
	var b [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // looked once; never wait
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return peerUnknown
	case err != nil:
		return peerClosed
	case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		return peerIdle
	case rerr != nil, n == 0:
		return peerClosed
	}
	return peerSent
}
