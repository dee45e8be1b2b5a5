//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCollectRotation runs the outflow binary as a sensor is run: real
// NetFlow exports from softflowd arrive over loopback, Debian's logrotate
// rotates the flow file twice (create with a SIGHUP from postrotate, then
// copytruncate, which needs no signal), and SIGTERM ends it. Records must
// show in the file while it runs, before any signal; afterwards the
// rotated and current files together hold every record exactly once, and
// the exit status is 0.
func TestCollectRotation(t *testing.T) {
	for _, tool := range []string{"softflowd", "logrotate"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" (Debian packages softflowd, logrotate)")
	}
	demo, _ := filepath.Abs(demo)
	dir := t.TempDir()
	bin := filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")
	port := freeUDPPort(t)
	flowsPath := filepath.Join(dir, "flows.json")
	config := filepath.Join(dir, "outflow.yaml")
	os.WriteFile(config, []byte("AN1512:\n  DataVolumeThreshold: 20MB\n"), 0o644)
	var stderr syncBuffer
	cmd := exec.Command(bin, "collect", "--listen", fmt.Sprintf("netflow://127.0.0.1:%d", port), "--flows", flowsPath,
		"--config", config, "--alerts", filepath.Join(dir, "alerts.json"))
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 10*time.Second, "the collector to listen", func() bool { return strings.Contains(stderr.String(), "collecting") })

	// Every TCP session of the capture, as replay sees it: the independent
	// list each round of exports must reproduce.
	code, out, errs := outflow("replay", demo)
	if code != 0 {
		t.Fatal(errs)
	}
	var sessions []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r map[string]any
		json.Unmarshal([]byte(l), &r)
		if r["proto"] == "tcp" {
			sessions = append(sessions, sessionKey(r))
		}
	}
	slices.Sort(sessions)

	export := func() {
		t.Helper()
		// softflowd reads the capture and exports IPFIX biflows at its end.
		c := exec.Command("softflowd", "-r", demo, "-n", fmt.Sprintf("127.0.0.1:%d", port), "-d", "-c", "none",
			"-p", filepath.Join(dir, "softflowd.pid"), "-v", "10", "-b")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("softflowd: %v\n%s", err, out)
		}
	}
	// Round 1: records arrive while the sensor runs, with no signal sent.
	export()
	var round []string
	waitFor(t, 4*time.Second, "the first round's records in "+flowsPath, func() bool {
		round = tcpKeys(t, flowsPath)
		return len(round) >= len(sessions)
	})
	if !isSubset(sessions, round) {
		t.Fatalf("round 1: %d TCP records, replay's sessions %d:\n%v\n%v", len(round), len(sessions), round, sessions)
	}
	time.Sleep(1500 * time.Millisecond) // any straggler of the round lands
	round = tcpKeys(t, flowsPath)

	logrotate := func(conf string) {
		t.Helper()
		path := filepath.Join(dir, "logrotate.conf")
		os.WriteFile(path, []byte(conf), 0o644)
		if out, err := exec.Command("logrotate", "-f", "-s", filepath.Join(dir, "logrotate.state"), path).CombinedOutput(); err != nil {
			t.Fatalf("logrotate: %v\n%s", err, out)
		}
	}
	// Round 2 after a rotation by renaming, with SIGHUP from postrotate;
	// the config was broken meanwhile: the reload is refused, with the
	// key named, and the sensor goes on with the config it has.
	os.WriteFile(config, []byte("AN1512:\n  DataVolumeTreshold: 1MB\n"), 0o644)
	logrotate(fmt.Sprintf("%s {\n  rotate 5\n  create\n  postrotate\n    kill -HUP %d\n  endscript\n}\n", flowsPath, cmd.Process.Pid))
	waitFor(t, 5*time.Second, "SIGHUP to be handled", func() bool { return strings.Contains(stderr.String(), "config reload refused") })
	if !strings.Contains(stderr.String(), "AN1512.DataVolumeTreshold") {
		t.Errorf("the refusal does not name the key:\n%s", stderr.String())
	}
	export()
	waitFor(t, 10*time.Second, "the second round in the new file", func() bool { return len(tcpKeys(t, flowsPath)) >= len(round) })
	time.Sleep(1500 * time.Millisecond)

	// Round 3 after copytruncate: the file is copied and emptied in place;
	// opened for appending, the sensor's next line lands at its start.
	logrotate(fmt.Sprintf("%s {\n  rotate 5\n  copytruncate\n}\n", flowsPath))
	export()
	waitFor(t, 10*time.Second, "the third round after copytruncate", func() bool { return len(tcpKeys(t, flowsPath)) >= len(round) })

	// A valid config on the next SIGHUP is put in force.
	os.WriteFile(config, []byte("AN1512:\n  DataVolumeThreshold: 1MB\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "the config to be reloaded", func() bool { return strings.Contains(stderr.String(), "config reloaded") })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, stderr.String())
	}
	// logrotate numbers the newest rotation .1: round 1 was renamed to .1
	// and then moved on to .2; round 2, copied out by copytruncate, is .1;
	// round 3 went to the emptied file.
	for i, f := range []string{flowsPath + ".2", flowsPath + ".1", flowsPath} {
		if got := tcpKeys(t, f); !slices.Equal(got, round) {
			t.Errorf("round %d (%s): %d TCP records, round 1 had %d", i+1, f, len(got), len(round))
		}
		if b, _ := os.ReadFile(f); bytes.IndexByte(b, 0) >= 0 {
			t.Errorf("%s holds NUL bytes: written at a stale offset", f)
		}
	}
	if _, err := os.Stat(flowsPath + ".3"); err == nil {
		t.Errorf("%s.3 exists: more rotations than logrotate made", flowsPath)
	}
}

func sessionKey(r map[string]any) string {
	return fmt.Sprintf("%v %v:%v %v:%v", r["proto"], r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"])
}

// tcpKeys reads a JSON-lines file and returns its TCP records' session
// keys, sorted.
func tcpKeys(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("%s: not JSON: %q", path, sc.Text())
			continue
		}
		if r["proto"] == "tcp" {
			keys = append(keys, sessionKey(r))
		}
	}
	slices.Sort(keys)
	return keys
}

func isSubset(small, big []string) bool {
	for _, k := range small {
		if _, ok := slices.BinarySearch(big, k); !ok {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
