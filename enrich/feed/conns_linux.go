package feed

import "golang.org/x/sys/unix"

// pendingBytes is the bytes a socket has received and not yet been read
// (SIOCINQ).
func pendingBytes(fd uintptr) int {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
