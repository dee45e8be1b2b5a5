//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the test can read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// need fails the test in CI when it cannot run here and skips it, loudly,
// elsewhere.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("live test cannot run: %s", what)
	}
	t.Skipf("SKIPPED — live test needs %s (in CI this fails)", what)
}

// capturing tells whether outflow live has said it is capturing: the line
// "outflow: capturing on IFACE", or the logger's record of it.
func capturing(stderr string) bool {
	return strings.Contains(stderr, "capturing on") || strings.Contains(stderr, "msg=capturing")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func readRecords(t *testing.T, path string) map[string]map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs := map[string]map[string]any{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		k := fmt.Sprintf("%v %v:%v > %v:%v", m["proto"], m["orig_h"], m["orig_p"], m["resp_h"], m["resp_p"])
		if _, dup := recs[k]; dup {
			t.Fatalf("%s: two records for %s", path, k)
		}
		recs[k] = m
	}
	return recs
}

// TestLiveMatchesReplay replays the bundled capture with tcpreplay into one
// end of a veth pair between two network namespaces made for the test, runs
// `outflow live` on the other end, stops it with SIGINT, and checks that its
// records equal `outflow replay` of the same file, flow by flow, with no
// kernel drops.
func TestLiveMatchesReplay(t *testing.T) {
	for _, workers := range []string{"1", "2"} {
		t.Run("workers="+workers, func(t *testing.T) { testLive(t, workers) })
	}
}

// startIn starts a program in a network namespace, killed when the test
// ends.
func startIn(t *testing.T, ns string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// veth makes two network namespaces, named from prefix and id, joined by a
// veth pair whose ends are up (lo too), and removes them when the test
// ends. Addresses, when given, are put on the ends (a /24 each).
func veth(t *testing.T, prefix, id, addrA, addrB string) (a, b, va, vb string) {
	t.Helper()
	a, b, va, vb = prefix+"-a"+id, prefix+"-b"+id, prefix+"a"+id, prefix+"b"+id
	run(t, "ip", "netns", "add", a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", a).Run() })
	run(t, "ip", "netns", "add", b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", b).Run() })
	run(t, "ip", "link", "add", va, "type", "veth", "peer", "name", vb)
	run(t, "ip", "link", "set", va, "netns", a)
	run(t, "ip", "link", "set", vb, "netns", b)
	for _, e := range [][3]string{{a, va, addrA}, {b, vb, addrB}} {
		if e[2] != "" {
			run(t, "ip", "-n", e[0], "addr", "add", e[2]+"/24", "dev", e[1])
		}
		run(t, "ip", "-n", e[0], "link", "set", "lo", "up")
		run(t, "ip", "-n", e[0], "link", "set", e[1], "mtu", "1500", "up")
	}
	return a, b, va, vb
}

func testLive(t *testing.T, workers string) {
	need(t, os.Geteuid() == 0, "root (network namespaces and AF_PACKET)")
	for _, tool := range []string{"ip", "tcpreplay"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" (Debian packages iproute2, tcpreplay)")
	}
	demo, _ := filepath.Abs(filepath.Join("..", "..", "pcaps", "outflow-demo.pcap"))
	dir := t.TempDir()
	bin := filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")

	a, b, va, vb := veth(t, "oflt", fmt.Sprintf("%d%s", os.Getpid()%10000, workers), "", "")
	for _, nd := range [][2]string{{a, va}, {b, vb}} {
		exec.Command("ip", "netns", "exec", nd[0], "ethtool", "-K", nd[1], "tso", "off", "gso", "off", "gro", "off").Run()
	}

	liveOut := filepath.Join(dir, "live.json")
	var stderr syncBuffer
	cmd := exec.Command("ip", "netns", "exec", b, bin, "live", "-i", vb, "--workers", workers, "--flows", liveOut)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for !capturing(stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("outflow live did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a, "tcpreplay", "-i", va, "--pps", "20000", demo).CombinedOutput(); err != nil {
		t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("outflow live: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("outflow live did not stop on SIGINT: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "kernel drops 0") {
		t.Errorf("kernel drops: %s", stderr.String())
	}

	replayOut := filepath.Join(dir, "replay.json")
	run(t, bin, "replay", "--quiet", "--flows", replayOut, demo)
	want, got := readRecords(t, replayOut), readRecords(t, liveOut)
	for k, w := range want {
		g := got[k]
		if g == nil {
			t.Errorf("%s: no live record", k)
			continue
		}
		for _, f := range []string{"orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "orig_bytes", "resp_bytes", "orig_frame_bytes", "resp_frame_bytes", "history", "state", "community_id"} {
			if fmt.Sprint(g[f]) != fmt.Sprint(w[f]) {
				t.Errorf("%s: live %s %v, replay %v", k, f, g[f], w[f])
			}
		}
		delete(got, k)
	}
	for k, g := range got {
		// The test's own veths send IPv6 router solicitations and MLD reports.
		if !strings.HasPrefix(fmt.Sprint(g["orig_h"]), "fe80:") && !strings.HasPrefix(fmt.Sprint(g["orig_h"]), "::") {
			t.Errorf("%s: live record with no counterpart in replay", k)
		}
	}
	t.Logf("%d flows equal in live and replay; %s", len(want), strings.TrimSpace(stderr.String()))
}

// TestLiveOnHost: outflow live --on-host runs in the client's network
// namespace, beside real curl, wget and python3 clients talking through a
// veth to servers in another namespace, and attributes each connection to
// the pid and command line of the program that made it, one of them a
// connection of 30 ms from a client that exits at once.
func TestLiveOnHost(t *testing.T) {
	need(t, os.Geteuid() == 0, "root (network namespaces, AF_PACKET, /proc of other processes)")
	for _, tool := range []string{"ip", "curl", "wget", "python3"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" (Debian packages iproute2, curl, wget, python3)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")
	const clientAddr, server = "10.78.0.2", "198.51.100.20"
	a, b, va, vb := veth(t, "oflh", fmt.Sprintf("%d", os.Getpid()%100000), clientAddr, server)
	run(t, "ip", "-n", a, "route", "add", server+"/32", "dev", va)
	run(t, "ip", "-n", b, "route", "add", clientAddr+"/32", "dev", vb)

	www := filepath.Join(dir, "www")
	os.MkdirAll(www, 0o755)
	os.WriteFile(filepath.Join(www, "page.txt"), bytes.Repeat([]byte("outflow on-host test\n"), 500), 0o644)
	// The web server takes 100 ms to answer, as a server across the
	// Internet would; between namespaces it would take 1 ms, less than the
	// capture needs to hand over a connection's first packet.
	startIn(t, b, "python3", "-c",
		"import http.server,time,functools\n"+
			"class H(http.server.SimpleHTTPRequestHandler):\n"+
			" def do_GET(self):\n  time.sleep(0.1)\n  super().do_GET()\n"+
			"http.server.ThreadingHTTPServer(('"+server+"',8080),functools.partial(H,directory='"+www+"')).serve_forever()\n")
	startIn(t, b, "python3", "-c",
		"import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('"+server+"',9000))\ns.listen(16)\n"+
			"while True:\n c,_=s.accept()\n c.recv(4096)\n c.close()\n")

	out, alertsOut, cfg := filepath.Join(dir, "live.json"), filepath.Join(dir, "alerts.json"), filepath.Join(dir, "outflow.yaml")
	// Detection runs live too: with no history to wait for, every program
	// reaching the server, which no internal host reached before, is a
	// rare host, named with its process.
	os.WriteFile(cfg, []byte("Baseline:\n  ActivationAfter: 0d\n"), 0o644)
	var stderr syncBuffer
	live := exec.Command("ip", "netns", "exec", a, bin, "live", "-i", va, "--on-host", "--flows", out, "--alerts", alertsOut, "--config", cfg)
	live.Stderr = &stderr
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for !capturing(stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("outflow live did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Wait for the servers to listen.
	for i := 0; i < 100; i++ {
		if exec.Command("ip", "netns", "exec", a, "curl", "-s", "-o", "/dev/null", "http://"+server+":8080/").Run() == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)

	type client struct {
		args []string
		pid  int
	}
	clients := []*client{
		{args: []string{"curl", "-s", "-o", "/dev/null", "http://" + server + ":8080/page.txt"}},
		{args: []string{"wget", "-q", "-O", "/dev/null", "http://" + server + ":8080/page.txt"}},
		{args: []string{"python3", "-c", "import urllib.request; urllib.request.urlopen('http://" + server + ":8080/page.txt').read()"}},
		// A connection of 30 ms, and the client exits at once.
		{args: []string{"python3", "-c", "import socket,time; s=socket.create_connection(('" + server + "',9000)); s.sendall(b'x'); time.sleep(0.03); s.close()"}},
	}
	for _, c := range clients {
		cmd := exec.Command("ip", append([]string{"netns", "exec", a}, c.args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// ip netns exec execs the program: the pid is the client's.
		c.pid = cmd.Process.Pid
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	live.Process.Signal(syscall.SIGINT)
	if err := live.Wait(); err != nil {
		t.Fatalf("outflow live: %v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	byPid := map[int]map[string]any{}
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		if p, ok := m["orig_process"].(map[string]any); ok {
			if pid, ok := p["pid"].(float64); ok {
				byPid[int(pid)] = m
			}
		}
	}
	for _, c := range clients {
		r := byPid[c.pid]
		if r == nil {
			t.Errorf("%v (pid %d): no flow attributed to it; %s", c.args, c.pid, stderr.String())
			continue
		}
		p := r["orig_process"].(map[string]any)
		// The command line is the process's argv; argv[0] may be the
		// path a shim ran (pyenv's python3).
		cl, _ := p["command_line"].(string)
		first, rest, _ := strings.Cut(cl, " ")
		if rest != strings.Join(c.args[1:], " ") || filepath.Base(first) != c.args[0] || p["feed"] != "procfs" {
			t.Errorf("%v: process %v", c.args, p)
		}
		if r["resp_h"] != server {
			t.Errorf("%v: flow %v", c.args, r)
		}
		if strings.Contains(c.args[len(c.args)-1], "sleep(0.03)") && num(r["duration"]) >= 0.05 {
			// The premise, not the product: python3's 30 ms connection
			// takes longer on a machine busy with other work (99.5 ms
			// once with two fuzzers and a CI run on two cores). It was
			// still attributed, which is what is checked; say so.
			t.Logf("the short connection lasted %.1f ms on this busy machine, not under 50: attributed all the same", num(r["duration"])*1000)
		}
		t.Logf("%s: pid %d, %v:%v -> %v:%v, %.1f ms", c.args[0], c.pid, r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"], num(r["duration"])*1000)
	}
	// The alerts: one per program (the dedup key is host, program and
	// destination), each naming the program and the server, rated as the
	// Cortex XDR seed rates them: curl informational, wget and python as
	// UNIX LOLBINs low, the globally rare variation alike.
	raw, err = os.ReadFile(alertsOut)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"curl": "informational", "wget": "low", "python3": "low"}
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var a struct {
			Analytic, Severity string
			Process            struct{ Name string }
			Destination        struct{ IP string }
		}
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		for name, sev := range want {
			if strings.HasPrefix(a.Process.Name, name) && strings.HasPrefix(a.Analytic, "rare_host") && a.Destination.IP == server {
				if a.Severity != sev {
					t.Errorf("%s: severity %s, want %s", name, a.Severity, sev)
				}
				delete(want, name)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("no rare-host alert for %v in:\n%s", want, raw)
	}
}

func num(v any) float64 { f, _ := v.(float64); return f }

// splitConn is one short connection the no-split test made: the client's
// port, when curl was started and when it exited.
type splitConn struct {
	port       int
	start, end time.Time
}

// TestLiveNoSplit starts and stops `outflow live --workers 4` again and
// again on a busy link and checks that no start-up splits a connection
// between workers. The link is a veth pair between two network namespaces
// made for the test: four rate-limited downloads run the whole time (so
// flows are in progress at every start-up) beside a stream of short
// connections made by real curl processes. For each start-up:
//   - no TCP connection has two records: a 5-tuple (either way round) with
//     several records must be several connections, each opening with its
//     own SYN after the one before had closed (curl reuses a port when the
//     server closed first);
//   - every connection curl started after outflow said it was capturing
//     has a record whose history starts with the client's SYN (S, not ^), and,
//     when it ended well before the stop, holds the server's SYN-ACK (h).
//
// OUTFLOW_SPLIT_STARTS sets the number of start-ups (default 6); the issue's
// check is OUTFLOW_SPLIT_STARTS=50.
func TestLiveNoSplit(t *testing.T) {
	need(t, os.Geteuid() == 0, "root (network namespaces and AF_PACKET)")
	for _, tool := range []string{"ip", "curl", "python3"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" (Debian packages iproute2, curl, python3)")
	}
	starts := 6
	if v := os.Getenv("OUTFLOW_SPLIT_STARTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("OUTFLOW_SPLIT_STARTS=%q: want a positive number", v)
		}
		starts = n
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")

	const client, server = "10.79.0.1", "10.79.0.2"
	a, b, va, vb := veth(t, "ofsplit", fmt.Sprintf("%d", os.Getpid()%100000), client, server)
	for _, nd := range [][2]string{{a, va}, {b, vb}} {
		// Frames of at most the MTU, as on a wire: more packets per byte.
		exec.Command("ip", "netns", "exec", nd[0], "ethtool", "-K", nd[1], "tso", "off", "gso", "off", "gro", "off").Run()
	}

	www := filepath.Join(dir, "www")
	os.MkdirAll(www, 0o755)
	os.WriteFile(filepath.Join(www, "small"), bytes.Repeat([]byte("outflow split test\n"), 2000), 0o644)
	// A sparse file the downloads never finish.
	if err := os.WriteFile(filepath.Join(www, "big"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(www, "big"), 1<<40); err != nil {
		t.Fatal(err)
	}
	startIn(t, b, "python3", "-c",
		"import http.server,functools\n"+
			"class H(http.server.SimpleHTTPRequestHandler):\n"+
			" def log_message(self,*a): pass\n"+
			"http.server.ThreadingHTTPServer(('"+server+"',8080),functools.partial(H,directory='"+www+"')).serve_forever()\n")
	small := "http://" + server + ":8080/small"
	for i := 0; ; i++ {
		if exec.Command("ip", "netns", "exec", a, "curl", "-s", "-o", "/dev/null", small).Run() == nil {
			break
		}
		if i == 100 {
			t.Fatal("the test's web server did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The busy link: it runs across every start-up.
	ctx, cancel := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	var mu sync.Mutex
	var conns []splitConn
	curlErrs := 0
	t.Cleanup(func() { cancel(); traffic.Wait() })
	for range 4 {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			for ctx.Err() == nil {
				exec.CommandContext(ctx, "ip", "netns", "exec", a, "curl", "-s", "--limit-rate", "3M", "-o", "/dev/null", "http://"+server+":8080/big").Run()
			}
		}()
	}
	for range 3 {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			for ctx.Err() == nil {
				start := time.Now()
				out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a, "curl", "-s", "-o", "/dev/null", "-w", "%{local_port}", small).Output()
				end := time.Now()
				port, perr := strconv.Atoi(strings.TrimSpace(string(out)))
				mu.Lock()
				if err != nil || perr != nil {
					if ctx.Err() == nil {
						curlErrs++
					}
				} else {
					conns = append(conns, splitConn{port: port, start: start, end: end})
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)

	totalSplits, totalLate, totalChecked, failedStarts := 0, 0, 0, 0
	for i := range starts {
		out := filepath.Join(dir, fmt.Sprintf("live-%d.json", i))
		var stderr syncBuffer
		cmd := exec.Command("ip", "netns", "exec", b, bin, "live", "-i", vb, "--workers", "4", "--flows", out)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for !capturing(stderr.String()) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("start-up %d: outflow live did not start: %s", i, stderr.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		// Not before the capture was complete: outflow says so once every
		// socket has its group and filter, and the line takes a moment to
		// reach the test.
		ready := time.Now()
		time.Sleep(time.Second)
		stop := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("start-up %d: outflow live: %v\n%s", i, err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("start-up %d: outflow live did not stop on SIGINT: %s", i, stderr.String())
		}
		drops := !strings.Contains(stderr.String(), "kernel drops 0")

		// The records of the test's TCP connections, by 5-tuple either way
		// round.
		recs := readTCPRecords(t, out)
		splits, late, checked := 0, 0, 0
		for k, rs := range recs {
			if reason := splitIn(rs); reason != "" {
				splits++
				desc := make([]string, len(rs))
				for j, r := range rs {
					desc[j] = r.String()
				}
				t.Errorf("start-up %d: connection %s split (%s):\n  %s", i, k, reason, strings.Join(desc, "\n  "))
			}
		}
		mu.Lock()
		cs := append([]splitConn(nil), conns...)
		mu.Unlock()
		for _, c := range cs {
			if c.start.Before(ready) || c.start.After(stop) {
				continue
			}
			checked++
			// The record of this connection: the one whose first packet
			// came while this curl ran (a later connection may reuse the
			// port once this one has closed).
			var r *tcpRecord
			rs := recs[splitKey(client, c.port, server, 8080)]
			for j := range rs {
				if !rs[j].ts.Before(c.start) && !rs[j].ts.After(c.end) {
					r = &rs[j]
				}
			}
			ended := c.end.Before(stop.Add(-300 * time.Millisecond))
			var bad string
			switch {
			case r == nil && ended:
				bad = "no record"
			case r == nil:
			case !strings.HasPrefix(r.history, "S"):
				bad = "a record that does not start with the SYN: " + r.String()
			case ended && !strings.Contains(r.history, "h"):
				bad = "a record without the SYN-ACK: " + r.String()
			}
			if bad == "" {
				continue
			}
			late++
			// Kernel drops lose packets, not flows' owners: report them,
			// but they are not a split.
			msg := fmt.Sprintf("start-up %d: connection from port %d, started %v after capture began, has %s", i, c.port, c.start.Sub(ready).Round(time.Millisecond), bad)
			if drops {
				t.Logf("%s (with kernel drops)", msg)
			} else {
				t.Error(msg)
			}
		}
		discarded := "0"
		if _, after, ok := strings.Cut(stderr.String(), "discarded "); ok {
			discarded, _, _ = strings.Cut(after, " ")
		}
		var kernel string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, "kernel packets") {
				kernel = strings.TrimSpace(strings.TrimPrefix(l, "outflow: "))
			}
		}
		t.Logf("start-up %d: %d TCP connections recorded, %d split; %d started after capture began, %d of them wrong; %s frames discarded at start-up; %s",
			i, len(recs), splits, checked, late, discarded, kernel)
		if splits+late > 0 {
			failedStarts++
		}
		totalSplits += splits
		totalLate += late
		totalChecked += checked
		os.Remove(out)
	}
	mu.Lock()
	t.Logf("%d start-ups with --workers 4: %d with a split or a wrong record; %d split connections; %d of %d connections started after capture began recorded wrong; %d curl failures",
		starts, failedStarts, totalSplits, totalLate, totalChecked, curlErrs)
	mu.Unlock()
	if totalChecked == 0 {
		t.Error("no connection started while outflow captured: the link was not busy")
	}
}

// tcpRecord is what the no-split test reads of a TCP flow record.
type tcpRecord struct {
	ts, end time.Time
	flow    string // as the record has it: orig > resp
	history string
}

func (r tcpRecord) String() string {
	return fmt.Sprintf("%s %s %s", r.ts.Format(time.RFC3339Nano), r.flow, r.history)
}

// readTCPRecords reads a flow file's TCP records by 5-tuple (splitKey),
// in order of their first packet.
func readTCPRecords(t *testing.T, path string) map[string][]tcpRecord {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string][]tcpRecord{}
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m struct {
			TS      time.Time `json:"ts"`
			End     time.Time `json:"end_ts"`
			Proto   string    `json:"proto"`
			OrigH   string    `json:"orig_h"`
			RespH   string    `json:"resp_h"`
			OrigP   int       `json:"orig_p"`
			RespP   int       `json:"resp_p"`
			History string    `json:"history"`
		}
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%s: %v: %s", path, err, l)
		}
		if m.Proto != "tcp" {
			continue
		}
		k := splitKey(m.OrigH, m.OrigP, m.RespH, m.RespP)
		recs[k] = append(recs[k], tcpRecord{ts: m.TS, end: m.End, history: m.History,
			flow: fmt.Sprintf("%s:%d > %s:%d", m.OrigH, m.OrigP, m.RespH, m.RespP)})
	}
	for _, rs := range recs {
		sort.Slice(rs, func(i, j int) bool { return rs[i].ts.Before(rs[j].ts) })
	}
	return recs
}

// splitIn says why the records of one 5-tuple are one connection split,
// or "" when they are not. Several records are several connections only
// when each starts with its own SYN after the one before had closed (a FIN
// or a reset): a client may reuse its port once a connection has closed,
// as curl does here when the server closed first.
func splitIn(rs []tcpRecord) string {
	for j := 1; j < len(rs); j++ {
		prev, r := rs[j-1], rs[j]
		switch {
		case !strings.HasPrefix(r.history, "S"):
			return "a later record does not start with a SYN"
		case !strings.ContainsAny(prev.history, "FfRr"):
			return "a record follows one that had not closed"
		case r.ts.Before(prev.end):
			return "records overlap in time"
		}
	}
	return ""
}

// splitKey names a TCP connection by its 5-tuple, whichever side its
// record calls the originator.
func splitKey(h1 string, p1 int, h2 string, p2 int) string {
	x, y := fmt.Sprintf("%s:%d", h1, p1), fmt.Sprintf("%s:%d", h2, p2)
	if y < x {
		x, y = y, x
	}
	return "tcp " + x + " " + y
}
