package testserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// packages are the Debian packages that install the programs tests run.
var packages = map[string]string{
	"rsyslogd": "rsyslog",
	"nginx":    "nginx",
	"openssl":  "openssl",
	"editcap":  "wireshark-common (installed with tshark)",
	"tshark":   "tshark",
}

// Need returns the path of a program a test runs, looked up in PATH and
// then in /usr/sbin and /sbin (daemons live there and a test's PATH may
// lack them). Missing, it fails the test when CI=true and skips it, loudly,
// elsewhere.
func Need(t testing.TB, prog string) string {
	t.Helper()
	if p, err := exec.LookPath(prog); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	what := prog
	if pkg := packages[prog]; pkg != "" {
		what += " (Debian package " + pkg + ")"
	}
	Missing(t, what)
	return ""
}

// Missing fails the test when CI=true and skips it, loudly, elsewhere:
// what a test needs is not on this machine.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: install it (CI runs every test)", what)
	}
	t.Skipf("SKIPPED — %s is missing (in CI this fails)", what)
}

// FreePort returns a loopback port that is free now for network ("tcp" or
// "udp"), below the kernel's ephemeral range: no outgoing connection takes
// it as its own port while the test's server is down, and a client that
// keeps connecting to it while nothing listens cannot end up connected to
// itself (a TCP simultaneous open, possible on an ephemeral port).
func FreePort(t testing.TB, network string) int {
	t.Helper()
	low := ephemeralLow()
	const first = 10000
	for range 200 {
		port := first
		if low > first+1 {
			port = first + rand.IntN(low-first)
		}
		if portFree(network, port) {
			return port
		}
	}
	t.Fatalf("no free %s port found on 127.0.0.1 between %d and %d", network, first, low-1)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 1024 {
				return n
			}
		}
	}
	return 32768
}

func portFree(network string, port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// listens says whether the process pid has a socket bound to
// 127.0.0.1:port in /proc/net/PROTO, in state (hex, as the kernel writes
// it: 0A a TCP listener, 07 a bound UDP socket). Asking the kernel this way
// takes nothing from the server; binding the port to find out could take it
// at the wrong moment, and a socket of another process on the port does
// not count.
func listens(pid int, proto, state string, port int) (bool, error) {
	b, err := os.ReadFile("/proc/net/" + proto)
	if err != nil {
		return false, fmt.Errorf("cannot tell whether the server listens: %v", err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	var inodes []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[3] == state {
			inodes = append(inodes, f[9])
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, nil // exited; the caller sees it
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for _, ino := range inodes {
			if l == "socket:["+ino+"]" {
				return true, nil
			}
		}
	}
	return false, nil
}
