package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayStateFile: --state saves what detection learnt, the next run
// loads it, and a corrupt or missing state file is reported and training
// starts afresh, the replay going on.
func TestReplayStateFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	lab := filepath.Join("..", "..", "pcaps")
	args := []string{"--flows", os.DevNull, "--alerts", "-", "--config", filepath.Join(lab, "detect-lab.yaml"), "--state", state,
		"--host-events", filepath.Join(lab, "outflow-detect.events.jsonl"), filepath.Join(lab, "outflow-detect.pcap")}
	run := func() (int, string) {
		code, out, errs := outflow(append([]string{"replay"}, args...)...)
		if code != 0 {
			t.Fatalf("replay: exit %d\n%s", code, errs)
		}
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var m map[string]any
			if l != "" && json.Unmarshal([]byte(l), &m) == nil {
				n++
			}
		}
		return n, errs
	}
	first, errs := run()
	if first == 0 || !strings.Contains(errs, "training starts afresh") {
		t.Fatalf("first run: %d alerts; %s", first, errs)
	}
	// The same capture again, with the state: every alert's dedup key is
	// still live (a day), and the first upload is not the first any more.
	again, errs := run()
	if again != 0 || strings.Contains(errs, "afresh") {
		t.Errorf("second run: %d alerts; %s", again, errs)
	}
	// A corrupt state: reported, not fatal, and training starts afresh.
	files, _ := filepath.Glob(filepath.Join(state, "*"))
	if len(files) == 0 {
		t.Fatal("no state saved")
	}
	for _, f := range files {
		os.WriteFile(f, []byte("garbage"), 0o644)
	}
	third, errs := run()
	if third != first || !strings.Contains(errs, "training starts afresh") {
		t.Errorf("after corruption: %d alerts (first run %d); %s", third, first, errs)
	}
}

// TestCheckConfig: outflow check names the line and key of every problem
// of a file in one run.
func TestCheckConfig(t *testing.T) {
	five := filepath.Join(t.TempDir(), "five.yaml")
	os.WriteFile(five, []byte("AN1511:\n  ExfilVolumeTreshold: 5MB\n  TimeWindow: banana\nRareHost:\n  RarePrevalence: -3\nHomeNets: [10.0.0.0/33]\nPeerGroups:\n  lab: [foo]\n"), 0o644)
	code, _, errs := outflow("check", "--config", five)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
		got = append(got, strings.TrimPrefix(l, "outflow: "))
	}
	want := []string{
		five + ":2: AN1511.ExfilVolumeTreshold: unknown key",
		five + ":3: AN1511.TimeWindow: \"banana\" is not a duration",
		five + ":5: RareHost.RarePrevalence: at least 1",
		five + ":6: HomeNets[0]: \"10.0.0.0/33\" is not a CIDR prefix",
		five + ":8: PeerGroups.lab[0]: \"foo\" is neither an address nor a CIDR prefix",
	}
	if code != 1 || len(got) != len(want) {
		t.Fatalf("exit %d, %d lines, want 5:\n%s", code, len(got), errs)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d: %q, want %q...", i+1, got[i], want[i])
		}
	}
	bad := filepath.Join(t.TempDir(), "outflow.yaml")
	os.WriteFile(bad, []byte("AN1511:\n  ExfilVolumeTreshold: 5MB\n"), 0o644)
	if code, _, errs := outflow("check", "--config", bad); code != 1 || !strings.Contains(errs, "AN1511.ExfilVolumeTreshold: unknown key") {
		t.Errorf("exit %d: %s", code, errs)
	}
	if code, out, errs := outflow("check", "--config", filepath.Join("..", "..", "deploy", "outflow.yaml")); code != 0 || !strings.HasSuffix(out, ": ok\n") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

// TestDemoCommand runs what scripts/demo.sh runs with no arguments, the
// README's first command, and reads alerts back.
func TestDemoCommand(t *testing.T) {
	lab := filepath.Join("..", "..", "pcaps")
	code, out, errs := outflow("replay", "--config", filepath.Join(lab, "detect-lab.yaml"), "--host-events",
		filepath.Join(lab, "outflow-detect.events.jsonl"), "--flows", os.DevNull, "--alerts", "-",
		filepath.Join(lab, "outflow-detect.pcap"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		n++
	}
	if n < 5 {
		t.Errorf("%d alerts", n)
	}
}
