//go:build linux

package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobody is the uid and gid the static binary runs as inside the chroot:
// an account that owns nothing there but the directory it writes.
const nobody = 65534

// TestStaticBinary builds outflow with scripts/build-static.sh, as the
// container image's builder does, and checks what a FROM scratch image
// relies on:
//
//   - ldd says "not a dynamic executable", where it lists libpcap for the
//     normal build;
//   - no Go code in it calls glibc's NSS: the cgo resolver and user lookup
//     symbols that the normal build has (net._C2func_getaddrinfo,
//     os/user._Cfunc_*) are absent, because of the netgo and osusergo tags;
//   - it says the same --version as the normal build (the same stamping);
//   - in a chroot holding only the binary, a config and the demo capture,
//     run as uid 65534 with an empty environment, it replays the capture
//     and writes flow records equal, line for line, to those of the normal
//     build on the same capture and config;
//   - there too, in a network namespace of its own, it captures live on lo
//     with a filter as uid 65534 holding CAP_NET_RAW alone, and is refused
//     without it.
//
// One build of each per run of the test; the Go build cache makes a second
// run take seconds.
func TestStaticBinary(t *testing.T) {
	need(t, os.Geteuid() == 0, "root (the build script installs Debian's static libraries; chroot and another uid)")
	_, err := exec.LookPath("ldd")
	need(t, err == nil, "ldd (Debian package libc-bin)")
	dir := t.TempDir()
	static, normal := filepath.Join(dir, "outflow-static"), filepath.Join(dir, "outflow")
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "build-static.sh"))
	if err != nil {
		t.Fatal(err)
	}
	run(t, "bash", script, static)
	run(t, "go", "build", "-o", normal, ".")

	t.Run("ldd", func(t *testing.T) {
		if out := lddOutput(t, static); !strings.Contains(out, "not a dynamic executable") {
			t.Errorf("ldd %s: %q, want \"not a dynamic executable\"", static, out)
		}
		// ldd sees the normal build's libraries, so its word on the
		// static one is not a failure to read it.
		if out := lddOutput(t, normal); !strings.Contains(out, "libpcap") {
			t.Errorf("ldd of the normal build names no libpcap: %q", out)
		}
	})

	t.Run("no NSS from Go", func(t *testing.T) {
		// The check would pass on any binary if the symbols were named
		// otherwise: the normal build must have them.
		if got := nssCallers(t, normal); len(got) == 0 {
			t.Fatal("the normal build has no net._C*/os/user._C* symbols: the check below would prove nothing")
		}
		if got := nssCallers(t, static); len(got) > 0 {
			t.Errorf("the static build calls C from net or os/user: %s", strings.Join(got, ", "))
		}
	})

	t.Run("version", func(t *testing.T) {
		if s, n := versionOf(t, static), versionOf(t, normal); s != n {
			t.Errorf("--version: static %q, normal build %q", s, n)
		}
	})

	// The chroot: the binary, a config, the demo capture, and a directory
	// nobody may write.
	root := filepath.Join(dir, "root")
	copyFile(t, static, filepath.Join(root, "outflow"), 0o755)
	copyFile(t, filepath.Join("..", "..", "pcaps", "detect-lab.yaml"), filepath.Join(root, "outflow.yaml"), 0o644)
	copyFile(t, demo, filepath.Join(root, "demo.pcap"), 0o644)
	if err := os.Mkdir(filepath.Join(root, "out"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "out"), nobody, nobody); err != nil {
		t.Fatal(err)
	}
	// After the chroot the process is nobody: it must be able to walk the
	// new root.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Run("replay in a chroot as nobody", func(t *testing.T) {
		cmd := chrooted(root, nil, "replay", "--config", "/outflow.yaml", "--flows", "/out/flows.json", "/demo.pcap")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("the static binary in the chroot: %v\n%s", err, stderr.String())
		}
		got := filepath.Join(root, "out", "flows.json")
		fi, err := os.Stat(got)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody {
			t.Errorf("flows.json is owned by uid %d, want %d: the binary did not run as nobody", st.Uid, nobody)
		}

		want := filepath.Join(dir, "flows-normal.json")
		run(t, normal, "replay", "--config", filepath.Join("..", "..", "pcaps", "detect-lab.yaml"), "--flows", want, demo)
		g, w := readLines(t, got), readLines(t, want)
		if len(w) == 0 {
			t.Fatal("the normal build wrote no flow records")
		}
		for i := 0; i < len(g) && i < len(w); i++ {
			if g[i] != w[i] {
				t.Fatalf("record %d differs:\nstatic: %s\nnormal: %s", i+1, g[i], w[i])
			}
		}
		if len(g) != len(w) {
			t.Fatalf("the static binary wrote %d records, the normal build %d", len(g), len(w))
		}
	})

	t.Run("live capture with CAP_NET_RAW alone", func(t *testing.T) {
		if err := inNewNetns(func() error { return liveAsNobody(root) }); err != nil {
			t.Fatal(err)
		}
	})
}

// chrooted is the static binary, /outflow in root, run there as nobody
// with an empty environment and the given ambient capabilities.
func chrooted(root string, caps []uintptr, args ...string) *exec.Cmd {
	cmd := exec.Command("/outflow", args...)
	cmd.Dir = "/"
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: nobody, Gid: nobody},
		AmbientCaps: caps}
	return cmd
}

// inNewNetns runs fn on an OS thread moved to a new network namespace whose
// loopback is up; processes fn starts are born there. The thread is never
// handed back to the runtime, so it ends with its namespace.
func inNewNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err == nil {
			err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
		}
		if err == nil {
			ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
			err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
		}
		if err != nil {
			errc <- fmt.Errorf("bringing lo up: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// liveAsNobody captures on lo, in the chroot, as nobody: refused without
// capabilities; with CAP_NET_RAW alone (what the image's file capability
// and the Kubernetes DaemonSet give) it compiles its filter with the static
// libpcap, makes lo promiscuous, and records UDP datagrams sent while it
// runs.
func liveAsNobody(root string) error {
	args := []string{"live", "-i", "lo", "--filter", "udp port 9", "--flows", "/out/live.json"}
	// The refusal is EPERM, which outflow may word as the capability missing.
	out, err := chrooted(root, nil, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "operation not permitted") && !strings.Contains(string(out), "CAP_NET_RAW") {
		return fmt.Errorf("without CAP_NET_RAW, live capture as nobody: %v, %q; want it refused", err, out)
	}

	cmd := chrooted(root, []uintptr{unix.CAP_NET_RAW}, args...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	giveUp := time.After(time.Minute)
	for !capturing(stderr.String()) {
		select {
		case err := <-exited:
			return fmt.Errorf("live capture as nobody with CAP_NET_RAW ended before capturing: %v\n%s", err, stderr.String())
		case <-giveUp:
			cmd.Process.Kill()
			return fmt.Errorf("live capture as nobody with CAP_NET_RAW did not start capturing in a minute\n%s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Unconnected, so the port unreachable answers refuse no later send.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	for range 5 {
		if _, err := conn.WriteTo([]byte("outflow static test"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
			return err
		}
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	conn.Close()
	cmd.Process.Signal(os.Interrupt)
	if err := <-exited; err != nil {
		return fmt.Errorf("live capture as nobody: %v\n%s", err, stderr.String())
	}
	for _, l := range readLinesErr(filepath.Join(root, "out", "live.json")) {
		var r struct {
			Proto string `json:"proto"`
			OrigP int    `json:"orig_p"`
			RespP int    `json:"resp_p"`
		}
		if json.Unmarshal([]byte(l), &r) == nil && r.Proto == "udp" && r.OrigP == port && r.RespP == 9 {
			return nil
		}
	}
	return fmt.Errorf("no record of the UDP flow 127.0.0.1:%d -> 127.0.0.1:9 in live.json\n%s", port, stderr.String())
}

// lddOutput is what ldd says of a binary; it exits 1 for a static one, so
// its status is not checked.
func lddOutput(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("ldd: %v", err)
	}
	return string(out)
}

// nssCallers are the binary's symbols of Go's cgo resolver and user
// lookups: the only Go code that calls glibc's NSS.
func nssCallers(t *testing.T, bin string) []string {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	var found []string
	for _, s := range syms {
		if strings.HasPrefix(s.Name, "net._C") || strings.HasPrefix(s.Name, "os/user._C") {
			found = append(found, s.Name)
		}
	}
	return found
}

func versionOf(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	return strings.TrimSpace(string(out))
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// readLines is a file's lines, without their newlines.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return readLinesErr(path)
}

// readLinesErr is readLines where a missing file has no lines.
func readLinesErr(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
