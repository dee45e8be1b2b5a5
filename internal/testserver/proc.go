package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is a server the test started, with its output going to a file.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startChild runs bin with args, its stdout and stderr appended to out.
func startChild(bin string, args []string, out string) (*child, error) {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &child{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = f, f
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %v", bin, err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends sig (the server's graceful stop) and waits for the exit; a
// server still there after 30 s is killed.
func (c *child) stop(sig syscall.Signal) {
	c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}
