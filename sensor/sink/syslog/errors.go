package syslog

import (
	"errors"
	"net"
	"os"
)

// plain drops what Go's network errors add to the reason, the operation
// and both addresses ("write tcp 127.0.0.1:5->127.0.0.1:6: write: broken
// pipe"), for messages that name the receiver themselves.
func plain(err error) error {
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
