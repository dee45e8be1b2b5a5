//go:build linux && (386 || arm)

package privdrop

import "golang.org/x/sys/unix"

// The system calls that change one thread's credentials: on 386 and arm
// the plain ones take 16-bit ids.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
