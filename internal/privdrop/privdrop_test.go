//go:build linux

package privdrop

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needRoot skips a test that switches users where the tests do not run as
// root, and fails it in CI, which does.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, which CI has")
	}
	t.Skip("SKIPPED — this test switches users and needs root (in CI this fails)")
}

// openDir is a temporary directory that other users can reach.
func openDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func nobody(t *testing.T) *User {
	t.Helper()
	u, err := Lookup("nobody")
	if err != nil {
		t.Fatalf("the nobody user: %v", err)
	}
	return u
}

func owner(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// threadUIDs reads every thread's real uid of a process from /proc, as ps
// would, without the package's own parser.
func threadUIDs(t *testing.T, pid string) map[string]string {
	t.Helper()
	tasks, _ := filepath.Glob("/proc/" + pid + "/task/*/status")
	out := map[string]string{}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			for _, k := range []string{"Uid:", "CapEff:", "CapPrm:"} {
				if strings.HasPrefix(l, k) {
					out[p+" "+k] = strings.Join(strings.Fields(strings.TrimPrefix(l, k)), " ")
				}
			}
		}
	}
	return out
}

// TestPrepare: Prepare makes what is missing as the user (the kernel says
// who owns it), refuses what the user cannot use, naming the path, and
// leaves the process itself root on every thread.
func TestPrepare(t *testing.T) {
	needRoot(t)
	u := nobody(t)
	d := openDir(t)
	shared := filepath.Join(d, "shared")
	closed := filepath.Join(d, "closed")
	os.Mkdir(shared, 0o777)
	os.Chmod(shared, 0o777)
	os.Mkdir(closed, 0o700)
	secret := filepath.Join(d, "secret.yaml")
	os.WriteFile(secret, []byte("x"), 0o600)
	spool := filepath.Join(shared, "spool")
	os.Mkdir(spool, 0o777)
	os.Chmod(spool, 0o777)
	os.WriteFile(filepath.Join(spool, "00000001.seg"), []byte("x"), 0o600)

	// One path refused: nothing is made.
	err := u.Prepare([]Need{
		{What: "--flows", Path: filepath.Join(shared, "flows.json"), Access: Append},
		{What: "--state", Path: filepath.Join(shared, "state-dir", "deeper"), Access: Write},
		{What: "--config", Path: filepath.Join(d, "missing.yaml"), Access: Read},
	})
	if err == nil || !strings.Contains(err.Error(), "--config "+filepath.Join(d, "missing.yaml")) {
		t.Fatalf("a missing file to read: %v", err)
	}
	for _, p := range []string{filepath.Join(shared, "flows.json"), filepath.Join(shared, "state-dir")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was made by a Prepare that refused another path", p)
		}
	}
	if err := u.Prepare([]Need{
		{What: "--flows", Path: filepath.Join(shared, "flows.json"), Access: Append},
		{What: "--state", Path: filepath.Join(shared, "state-dir", "deeper"), Access: Write},
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(shared, "flows.json"), filepath.Join(shared, "state-dir"), filepath.Join(shared, "state-dir", "deeper")} {
		if got := owner(t, p); got != u.UID {
			t.Errorf("%s is owned by uid %d, want %d (made by the user)", p, got, u.UID)
		}
	}
	if fi, _ := os.Stat(filepath.Join(shared, "flows.json")); fi.Mode().Perm() != 0o640&^umask() {
		t.Errorf("flows.json mode %v", fi.Mode())
	}

	for _, c := range []struct {
		need Need
		want string
	}{
		{Need{What: "--flows", Path: filepath.Join(closed, "flows.json"), Access: Append}, "--flows " + filepath.Join(closed, "flows.json") + ": user nobody cannot write it (permission denied)"},
		{Need{What: "--state", Path: filepath.Join(closed, "state"), Access: Write}, "user nobody cannot write in it (permission denied)"},
		{Need{What: "--flows", Path: filepath.Join(d, "no-such-dir", "flows.json"), Access: Append}, "its directory " + filepath.Join(d, "no-such-dir") + " does not exist"},
		{Need{What: "--config", Path: secret, Access: Read}, "--config " + secret + ": user nobody cannot read it (permission denied)"},
		{Need{What: "--spool", Path: spool, Access: WriteAll}, "00000001.seg in it: permission denied"},
		{Need{What: "a directory", Path: closed, Access: Read}, "user nobody cannot read it"},
	} {
		err := u.Prepare([]Need{c.need})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.need, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(closed, "flows.json")); err == nil {
		t.Error("a file was made where the user cannot write")
	}
	if os.Geteuid() != 0 {
		t.Fatal("Prepare changed the process's uid")
	}
	time.Sleep(50 * time.Millisecond) // the checking threads end
	for k, v := range threadUIDs(t, "self") {
		if strings.HasSuffix(k, "Uid:") && v != "0 0 0 0" {
			t.Errorf("%s: %s after Prepare", k, v)
		}
		if strings.HasSuffix(k, "CapEff:") && strings.Trim(v, "0") == "" {
			t.Errorf("%s: no capability left after Prepare", k)
		}
	}
}

func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

// TestDrop runs a child that drops to nobody, starts more threads, and
// waits; the test reads the child's threads in /proc: each has nobody's
// uids and no capability.
func TestDrop(t *testing.T) {
	if os.Getenv("PRIVDROP_CHILD") == "1" {
		dropChild()
		return
	}
	needRoot(t)
	u := nobody(t)
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^TestDrop$")
	cmd.Env = append(os.Environ(), "PRIVDROP_CHILD=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "dropped" {
		t.Fatalf("the child said %q (%v)", line, err)
	}
	got := threadUIDs(t, strconv.Itoa(cmd.Process.Pid))
	threads := 0
	want := strings.Repeat(strconv.Itoa(u.UID)+" ", 3) + strconv.Itoa(u.UID)
	for k, v := range got {
		switch {
		case strings.HasSuffix(k, "Uid:"):
			threads++
			if v != want {
				t.Errorf("%s: %s, want %s", k, v, want)
			}
		case v != "0000000000000000":
			t.Errorf("%s: %s, want no capability", k, v)
		}
	}
	if threads < 2 {
		t.Errorf("the child has %d threads", threads)
	}
	t.Logf("%d threads of the child run as %s with no capability", threads, u)
}

// dropChild is TestDrop's child: it drops, makes the runtime start threads
// after the drop, says so and waits for its stdin to close.
func dropChild() {
	u, err := Lookup("nobody")
	if err == nil {
		err = Drop(u)
	}
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	done := make(chan struct{})
	for range 8 {
		go func() {
			// Blocking system calls make the runtime start threads.
			f, _ := os.Open("/dev/null")
			buf := make([]byte, 1)
			for range 100 {
				f.Read(buf)
				time.Sleep(time.Millisecond)
			}
			f.Close()
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	if err := Verify(u); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("dropped\n")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}
