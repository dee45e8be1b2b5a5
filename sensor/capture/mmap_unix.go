//go:build unix

package capture

import (
	"os"
	"syscall"
)

// mapFile maps a regular file read-only, or returns nil to have it read.
// Captures still being written are read, not mapped: a file shrinking under
// a mapping would fault.
func mapFile(f *os.File, size int64) []byte {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || size <= 0 || size != fi.Size() || int64(int(size)) != size {
		return nil
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	_ = syscall.Madvise(m, syscall.MADV_SEQUENTIAL)
	return m
}

func unmapFile(m []byte) { _ = syscall.Munmap(m) }
