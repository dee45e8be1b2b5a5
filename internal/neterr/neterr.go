// Package neterr words network errors for messages that name the peer
// themselves: Go's errors repeat the operation, both addresses and, for
// HTTP, the method and the whole URL, whose query may hold a secret.
package neterr

import (
	"errors"
	"net"
	"net/url"
	"os"
)

// Plain is the reason alone: "connection refused", not "dial tcp
// 127.0.0.1:6514: connect: connection refused".
func Plain(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return err
}
