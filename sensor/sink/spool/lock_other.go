//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package spool

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// lockDir only creates the lock file here: this system has no flock, so
// two processes given the same directory are not kept apart.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool %s: cannot open its lock file: %w", dir, fserr.Plain(err))
	}
	return f, nil
}
