//go:build linux && !386 && !arm

package privdrop

import "golang.org/x/sys/unix"

// The system calls that change one thread's credentials, with 32-bit ids.
const (
	sysSetgroups = unix.SYS_SETGROUPS
	sysSetresgid = unix.SYS_SETRESGID
	sysSetresuid = unix.SYS_SETRESUID
)
