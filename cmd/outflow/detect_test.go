package main

import (
	"bytes"
	"context"
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
		var out, errs bytes.Buffer
		if err := replay(context.Background(), args, &out, &errs); err != nil {
			t.Fatalf("replay: %v\n%s", err, errs.String())
		}
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m map[string]any
			if l != "" && json.Unmarshal([]byte(l), &m) == nil {
				n++
			}
		}
		return n, errs.String()
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

// TestCheckConfig: outflow check names the key of every problem.
func TestCheckConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "outflow.yaml")
	os.WriteFile(bad, []byte("AN1511:\n  ExfilVolumeTreshold: 5MB\n"), 0o644)
	var out, errs bytes.Buffer
	err := check([]string{"--config", bad}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "AN1511.ExfilVolumeTreshold: unknown key") {
		t.Errorf("%v", err)
	}
	if err := check([]string{"--config", filepath.Join("..", "..", "deploy", "outflow.yaml")}, &out, &errs); err != nil {
		t.Error(err)
	}
}

// TestDemoCommand runs what scripts/demo.sh runs with no arguments, the
// README's first command, and reads alerts back.
func TestDemoCommand(t *testing.T) {
	lab := filepath.Join("..", "..", "pcaps")
	var out, errs bytes.Buffer
	err := replay(context.Background(), []string{"--config", filepath.Join(lab, "detect-lab.yaml"), "--host-events",
		filepath.Join(lab, "outflow-detect.events.jsonl"), "--flows", os.DevNull, "--alerts", "-",
		filepath.Join(lab, "outflow-detect.pcap")}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
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
