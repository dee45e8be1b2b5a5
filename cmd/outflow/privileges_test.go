//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// privNeed skips a privilege test where it cannot run (not root, a tool
// missing) and fails it in CI, which runs as root with the tools.
func privNeed(t *testing.T, tools ...string) {
	t.Helper()
	need(t, os.Geteuid() == 0, "root (users, network namespaces, AF_PACKET)")
	for _, tool := range tools {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" (Debian packages iproute2, passwd, util-linux, curl, python3)")
	}
}

// privUser makes a system user for the test when there is none of that
// name, and removes it when the test ends. It returns the user's ids.
func privUser(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		run(t, "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name)
		t.Cleanup(func() { exec.Command("userdel", name).Run() })
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// privDir is a temporary directory other users can reach, and the binary
// built into it.
func privDir(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin = filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")
	return dir, bin
}

// procStatus reads the lines of /proc/PID/task/TID/status that say who a
// thread is, for every thread of a process, straight from the kernel.
func procStatus(t *testing.T, pid int) map[string]map[string]string {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of pid %d in /proc", pid)
	}
	out := map[string]map[string]string{}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		m := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				m[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		out[filepath.Base(filepath.Dir(p))] = m
	}
	return out
}

// privWait waits for a line in a command's stderr.
func privWait(t *testing.T, stderr *syncBuffer, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s: %s", what, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunDropsToUser runs `outflow run` as root with Privileges.User on a
// veth in a network namespace made for the test, a real web server on the
// far end. Once it says it captures, every thread of the process has the
// user's uids and gids and no capability (the kernel's /proc says so); curl
// connections across the veth are still recorded; a logrotate-style
// rename and SIGHUP make the process, now the user, create the new flow
// file, which the user owns; and at stop the state is saved by the user.
// `outflow live --user` does the same from flags.
func TestRunDropsToUser(t *testing.T) {
	privNeed(t, "ip", "curl", "python3", "useradd")
	for _, mode := range []string{"run", "live"} {
		t.Run(mode, func(t *testing.T) { testDropsToUser(t, mode) })
	}
}

func testDropsToUser(t *testing.T, mode string) {
	const name = "outflow-test"
	uid, gid := privUser(t, name)
	dir, bin := privDir(t)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o700)
	os.Chown(out, uid, gid)
	flows, alerts, state := filepath.Join(out, "flows.json"), filepath.Join(out, "alerts.json"), filepath.Join(out, "state")

	const client, server = "10.81.0.1", "10.81.0.2"
	a, b, _, vb := veth(t, "ofpriv", fmt.Sprintf("%d%s", os.Getpid()%10000, mode[:1]), client, server)
	www := filepath.Join(dir, "www")
	os.Mkdir(www, 0o755)
	os.WriteFile(filepath.Join(www, "page"), bytes.Repeat([]byte("outflow privileges test\n"), 400), 0o644)
	startIn(t, b, "python3", "-m", "http.server", "--bind", server, "--directory", www, "8080")

	cfg := filepath.Join(dir, "outflow.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Sources:
  Capture:
    Interfaces: [%s]
Outputs:
  Flows: [{Path: %s}]
  Alerts: [{Path: %s}]
Logging:
  StatsInterval: 0s
Privileges:
  User: %s
State:
  Path: %s
`, vb, flows, alerts, name, state)), 0o644)
	args := []string{"run", "--config", cfg}
	if mode == "live" {
		args = []string{"live", "-i", vb, "--flows", flows, "--alerts", alerts, "--state", state, "--user", name, "--stats-interval", "0s"}
	}
	var stderr syncBuffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", b, bin}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	privWait(t, &stderr, "the capture", capturing)

	// ip netns exec execs outflow: the pid is outflow's.
	threads := procStatus(t, cmd.Process.Pid)
	wantU, wantG := strings.Repeat(strconv.Itoa(uid)+" ", 3)+strconv.Itoa(uid), strings.Repeat(strconv.Itoa(gid)+" ", 3)+strconv.Itoa(gid)
	for tid, st := range threads {
		if st["Uid"] != wantU || st["Gid"] != wantG || st["Groups"] != strconv.Itoa(gid) {
			t.Errorf("thread %s: Uid %q Gid %q Groups %q, want %q %q %q", tid, st["Uid"], st["Gid"], st["Groups"], wantU, wantG, strconv.Itoa(gid))
		}
		for _, k := range []string{"CapEff", "CapPrm", "CapAmb"} {
			if st[k] != "0000000000000000" {
				t.Errorf("thread %s: %s %s, want no capability", tid, k, st[k])
			}
		}
	}
	t.Logf("%d threads run as %s (uid %d, gid %d) with CapEff %s", len(threads), name, uid, gid, threads[strconv.Itoa(cmd.Process.Pid)]["CapEff"])

	curl := func() int {
		t.Helper()
		for i := 0; ; i++ {
			o, err := exec.Command("ip", "netns", "exec", a, "curl", "-s", "-o", "/dev/null", "-w", "%{local_port}", "http://"+server+":8080/page").Output()
			if port, perr := strconv.Atoi(strings.TrimSpace(string(o))); err == nil && perr == nil && port > 0 {
				return port
			}
			if i == 100 {
				t.Fatalf("curl: %v %s", err, o)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	first := curl()
	// logrotate's create: the file is renamed, and SIGHUP makes the
	// sensor, no longer root, make a new one.
	if err := os.Rename(flows, flows+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	privWait(t, &stderr, "the reopen", func(s string) bool { return strings.Contains(s, "SIGHUP") })
	second := curl()
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("outflow %s: %v\n%s", mode, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("outflow %s did not stop on SIGINT: %s", mode, stderr.String())
	}

	for _, p := range []string{flows, filepath.Join(state, "metadata.bin")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s is owned by uid %d, want %d: it was not made by the user", p, st.Uid, uid)
		}
	}
	ports := map[int]string{}
	for _, p := range []string{flows + ".1", flows} {
		raw, _ := os.ReadFile(p)
		for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
			var r struct {
				Proto   string `json:"proto"`
				OrigP   int    `json:"orig_p"`
				RespH   string `json:"resp_h"`
				RespP   int    `json:"resp_p"`
				History string `json:"history"`
			}
			if json.Unmarshal(l, &r) == nil && r.Proto == "tcp" && r.RespH == server && r.RespP == 8080 && strings.Contains(r.History, "S") && strings.Contains(r.History, "h") {
				ports[r.OrigP] = filepath.Base(p)
			}
		}
	}
	if ports[first] == "" || ports[second] != filepath.Base(flows) {
		t.Errorf("curl from ports %d and %d: recorded %v (the second must be in the file made after SIGHUP)\n%s", first, second, ports, stderr.String())
	}
}

// TestRefusedAtStart: what a sensor must not start with is refused at
// start, exit status 1 (the command line is right, a file is not), with a
// sentence naming the file: a config anyone can write, a state in a
// directory writable by all, a state the user it becomes could not save,
// and, where the test can mount a read-only tmpfs, a state this process
// could not save.
func TestRefusedAtStart(t *testing.T) {
	privNeed(t, "useradd")
	const name = "outflow-test"
	uid, gid := privUser(t, name)
	dir, _ := privDir(t)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o700)
	os.Chown(out, uid, gid)
	caps := filepath.Join(dir, "captures")
	os.Mkdir(caps, 0o755)
	rootOnly := filepath.Join(dir, "root-only")
	os.Mkdir(rootOnly, 0o755)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o777)
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o755)
	mounted := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro).Run() == nil
	if mounted {
		t.Cleanup(func() { exec.Command("umount", ro).Run() })
	}

	config := func(file, user, state string, mode os.FileMode) string {
		p := filepath.Join(dir, file)
		os.WriteFile(p, []byte(fmt.Sprintf("Sources:\n  Directories: [{Path: %s}]\nOutputs:\n  Alerts: [{Path: %s}]\nPrivileges:\n  User: %q\nState:\n  Path: %s\n",
			caps, filepath.Join(out, "alerts.json"), user, state)), 0o600)
		os.Chmod(p, mode)
		return p
	}
	cases := []struct {
		name, cfg, want string
	}{
		{"world-writable config", config("world.yaml", name, filepath.Join(out, "state"), 0o666), " is writable by every user (mode 0666)"},
		{"state below a directory all can write", config("open.yaml", "", filepath.Join(open, "state"), 0o644), "State.Path " + filepath.Join(open, "state") + ": its directory " + open + " is writable by every user"},
		{"state the user cannot save", config("rootonly.yaml", name, filepath.Join(rootOnly, "state"), 0o644), "State.Path (saved in) " + rootOnly + ": user " + name + " cannot write in it (permission denied)"},
	}
	if mounted {
		cases = append(cases, struct{ name, cfg, want string }{"state on a read-only file system", config("ro.yaml", "", filepath.Join(ro, "state"), 0o644),
			"state " + filepath.Join(ro, "state") + " cannot be saved: this process cannot write in " + ro + " (read-only file system)"})
	} else {
		t.Log("mount -t tmpfs failed: the read-only state is not tried")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var so, se bytes.Buffer
			code := execute(ctx, []string{"run", "--config", c.cfg}, &so, &se, nil)
			if code != 1 || !strings.Contains(se.String(), c.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, se.String(), c.want)
			}
			if c.name == "world-writable config" && !strings.Contains(se.String(), "--config "+c.cfg) {
				t.Errorf("the config is not named: %s", se.String())
			}
			// Refused before any output is opened (the state this
			// process cannot save is found by the sensor, after).
			if _, err := os.Stat(filepath.Join(out, "alerts.json")); err == nil && !strings.HasPrefix(c.want, "state ") {
				t.Error("an output was opened by a start that was refused")
			}
		})
	}
}

// TestCaptureNeedsCapNetRaw: as nobody with no capability, capture says
// what it needs instead of "operation not permitted"; as nobody with
// CAP_NET_RAW alone (setpriv's ambient set) it captures with two workers,
// so a fanout group, and the interface is promiscuous while it runs.
func TestCaptureNeedsCapNetRaw(t *testing.T) {
	privNeed(t, "ip", "setpriv")
	dir, bin := privDir(t)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "live", "-i", "lo", "--flows", "-")
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	err := cmd.Run()
	want := "outflow: capturing on lo needs CAP_NET_RAW: run as root, or give the program that capability (`setcap cap_net_raw+ep " + bin + "`"
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("as nobody: %v, exit %d, stderr %q; want 1 and %q", err, code, stderr.String(), want)
	}

	ns, _, va, _ := veth(t, "ofcap", strconv.Itoa(os.Getpid()%100000), "", "")
	var se syncBuffer
	live := exec.Command("ip", "netns", "exec", ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=+net_raw", "--ambient-caps=+net_raw", bin, "live", "-i", va, "--workers", "2", "--flows", filepath.Join(dir, "flows.json"))
	live.Stderr = &se
	os.Chmod(dir, 0o777) // nobody writes the flows there
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Process.Kill()
	privWait(t, &se, "the capture", capturing)
	o, _ := exec.Command("ip", "-d", "-n", ns, "link", "show", va).Output()
	if !strings.Contains(string(o), "promiscuity 1") {
		t.Errorf("the interface is not promiscuous while nobody captures on it: %s", o)
	}
	live.Process.Signal(syscall.SIGINT)
	if err := live.Wait(); err != nil {
		t.Errorf("outflow live with CAP_NET_RAW alone: %v\n%s", err, se.String())
	}
	o, _ = exec.Command("ip", "-d", "-n", ns, "link", "show", va).Output()
	if !strings.Contains(string(o), "promiscuity 0") {
		t.Errorf("the interface stayed promiscuous: %s", o)
	}
}
