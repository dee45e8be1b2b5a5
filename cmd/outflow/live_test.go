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

	id := fmt.Sprintf("%d%s", os.Getpid()%10000, workers)
	a, b, va, vb := "oflt-a"+id, "oflt-b"+id, "oflta"+id, "ofltb"+id
	run(t, "ip", "netns", "add", a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", a).Run() })
	run(t, "ip", "netns", "add", b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", b).Run() })
	run(t, "ip", "link", "add", va, "type", "veth", "peer", "name", vb)
	run(t, "ip", "link", "set", va, "netns", a)
	run(t, "ip", "link", "set", vb, "netns", b)
	for _, nd := range [][2]string{{a, va}, {b, vb}} {
		run(t, "ip", "-n", nd[0], "link", "set", "lo", "up")
		run(t, "ip", "-n", nd[0], "link", "set", nd[1], "mtu", "1500", "up")
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
	for !strings.Contains(stderr.String(), "capturing on") {
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
