package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// ErrInterrupted is the error of a read that OpenFileContext's context
// ended.
var ErrInterrupted = errors.New("reading interrupted")

// OpenFileContext is OpenFileWith for a reader that a signal must be able
// to stop. A named pipe blocks in open until a writer comes and in each
// read until it writes, so a cancelled context went unheard there until the
// writer closed. Cancelling ctx now ends a pending open with ctx's error and
// a pending or later read with ErrInterrupted (a pipe is in Go's poller, so
// a read deadline in the past wakes it; regular files never block long).
func OpenFileContext(ctx context.Context, path string, opt FileOptions) (*FileSource, error) {
	f, err := openInterruptible(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: cannot open the capture: %w", path, fserr.Plain(err))
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	s, err := newFileSource(path, f, opt)
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	s.stop, s.ctx = stop, ctx
	return s, nil
}

// openInterruptible opens path for reading; a named pipe is opened aside,
// so that a cancelled ctx need not wait for its writer.
func openInterruptible(ctx context.Context, path string) (*os.File, error) {
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return os.Open(path)
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
	}
	// The open may not have reached the kernel yet, and a pipe with no
	// reader cannot be opened for writing without blocking: try until the
	// open returns.
	for {
		releasePipe(path)
		select {
		case o := <-ch:
			if o.f != nil {
				o.f.Close()
			}
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
