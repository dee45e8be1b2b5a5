//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestReplayNamedPipeSignals replays a named pipe whose writer sent the demo
// capture and then keeps the pipe open, as `tcpdump -w pipe` does between
// packets, and one whose writer never came. Each time SIGTERM or SIGINT
// must end the run at once with exit 0, and the frames read before it must
// be all the writer sent, as tshark counts them (replay once waited for the
// writer to close, so a signal went unheard).
func TestReplayNamedPipeSignals(t *testing.T) {
	frames := shared.TsharkFrames(t, demo)
	capture, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildOutflow(t)
	dir := t.TempDir()

	// stopped sends sig to the run and returns its exit status and stderr
	// once it ends; a run that does not end within the bound fails.
	stopped := func(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer, sig syscall.Signal) (int, string) {
		t.Helper()
		ended := make(chan error, 1)
		go func() { ended <- cmd.Wait() }()
		cmd.Process.Signal(sig)
		select {
		case err := <-ended:
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			return code, stderr.String()
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-ended
			t.Fatalf("still running 10 s after %v\n%s", sig, stderr.String())
		}
		return 0, ""
	}
	start := func(t *testing.T, pipe, flows string) (*exec.Cmd, *bytes.Buffer) {
		t.Helper()
		cmd := exec.Command(bin, "replay", "--flows", flows, pipe)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}

	t.Run("writer holds the pipe", func(t *testing.T) {
		pipe := filepath.Join(dir, "held")
		if err := unix.Mkfifo(pipe, 0o600); err != nil {
			t.Fatal(err)
		}
		flows := filepath.Join(dir, "held.json")
		cmd, stderr := start(t, pipe, flows)
		w, err := os.OpenFile(pipe, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close() // only after the run ended
		if _, err := w.Write(capture); err != nil {
			t.Fatal(err)
		}
		waitDrained(t, w, cmd.Process.Pid)
		code, errs := stopped(t, cmd, stderr, syscall.SIGTERM)
		if code != 0 || !strings.Contains(errs, "1 files (0 with errors), "+strconv.Itoa(frames)+" frames") {
			t.Fatalf("exit %d, want 0 and the %d frames tshark reads\n%s", code, frames, errs)
		}
		if b, _ := os.ReadFile(flows); bytes.Count(b, []byte("\n")) == 0 {
			t.Errorf("no flow records written")
		}
	})

	t.Run("no writer", func(t *testing.T) {
		pipe := filepath.Join(dir, "empty")
		if err := unix.Mkfifo(pipe, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd, stderr := start(t, pipe, filepath.Join(dir, "empty.json"))
		time.Sleep(300 * time.Millisecond) // to be in open(2), which the test cannot see
		if code, errs := stopped(t, cmd, stderr, syscall.SIGINT); code != 0 {
			t.Fatalf("exit %d, want 0\n%s", code, errs)
		}
	})
}

// waitDrained waits until the reader took everything from the pipe and is
// idle: nothing left in the pipe and no CPU used over half a second.
func waitDrained(t *testing.T, w *os.File, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	cpu := func() string {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		return f[11] + "+" + f[12] // utime and stime
	}
	last, still := "", 0
	for time.Now().Before(deadline) {
		n, err := unix.IoctlGetInt(int(w.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if c := cpu(); n == 0 && c == last {
			if still++; still == 5 {
				return
			}
		} else {
			last, still = c, 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the reader did not drain the pipe within a minute")
}
