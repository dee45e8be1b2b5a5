//go:build unix

package capture

import (
	"os"
	"syscall"
)

// releasePipe ends our own pending open of a named pipe for reading by
// opening it for writing, which does not block when a reader waits.
func releasePipe(path string) {
	if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		w.Close()
	}
}
