package metrics_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
	"golang.org/x/sys/unix"
)

// netns makes a network namespace of its own with its loopback up, so a
// capture on its lo sees only what the test sends; it is deleted at the
// end of the test. It needs root and ip (iproute2).
func netns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		shared.Missing(t, "root (a network namespace and AF_PACKET capture)", errors.New("not running as root"))
	}
	if _, err := exec.LookPath("ip"); err != nil {
		shared.Missing(t, "ip (Debian package iproute2)", err)
	}
	ns := fmt.Sprintf("ofmetrics-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up in %s: %v: %s", ns, err, out)
	}
	return ns
}

// inNetns runs f on an OS thread that entered the namespace ns, and
// returns f's error. Sockets f opens stay in ns. The thread is never
// given back: it ends with its goroutine, so no other goroutine runs in
// ns by chance.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not undone: the thread dies with the goroutine
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("entering the network namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
