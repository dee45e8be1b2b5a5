//go:build !linux

package privdrop

import (
	"errors"
	"runtime"
)

var errUnsupported = errors.New("running as another user once the sockets are open is supported on Linux only, not on " + runtime.GOOS)

// Prepare is Linux's only.
func (u *User) Prepare(needs []Need) error { return errUnsupported }

// Drop is Linux's only.
func Drop(u *User) error { return errUnsupported }
