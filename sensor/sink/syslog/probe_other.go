//go:build !linux

package syslog

import "net"

// peerState is what a look at a connection's socket found.
type peerState int

const (
	peerUnknown peerState = iota // no way to look
	peerIdle                     // open, nothing waiting
	peerSent                     // bytes waiting to be read
	peerClosed                   // FIN or RST received
)

// peek cannot look without blocking here: a receiver's restart is noticed
// by the write after the one it makes fail.
func peek(net.Conn) peerState { return peerUnknown }
