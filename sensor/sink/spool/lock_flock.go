//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// lockDir takes an exclusive lock on dir's lock file, so that two sensors
// given the same directory do not interleave their segments. The kernel
// drops the lock when the process dies, however it dies.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool %s: cannot open its lock file: %w", dir, fserr.Plain(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("spool %s is in use by another process (it holds %s)", dir, path)
		}
		return nil, fmt.Errorf("spool %s: cannot lock %s: %w", dir, path, err)
	}
	return f, nil
}
