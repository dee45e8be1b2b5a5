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

// TestReplayCommand runs the README's first command (as a function call) on
// the bundled capture and reads its output back.
func TestReplayCommand(t *testing.T) {
	var out, errs bytes.Buffer
	if err := replay(context.Background(), []string{filepath.Join("..", "..", "pcaps", "outflow-demo.pcap")}, &out, &errs); err != nil {
		t.Fatalf("replay: %v\n%s", err, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 20 {
		t.Fatalf("%d records", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
	}
	if !strings.Contains(errs.String(), "1 files (0 with errors)") {
		t.Errorf("summary: %q", errs.String())
	}
}

// TestReplayBadInput: a file that is not a capture is named in the error
// output, the others are still read, and bad flags are refused.
func TestReplayBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(bad, []byte("not a capture"), 0o644)
	demo := filepath.Join("..", "..", "pcaps", "outflow-demo.pcap")
	var out, errs bytes.Buffer
	if err := replay(context.Background(), []string{"--flows", "-", bad, demo}, &out, &errs); err != nil {
		t.Fatalf("one good file should be enough: %v", err)
	}
	if !strings.Contains(errs.String(), bad) || !strings.Contains(errs.String(), "offset 0") || out.Len() == 0 {
		t.Errorf("stderr %q, %d bytes of records", errs.String(), out.Len())
	}
	for _, args := range [][]string{{}, {"--pace", "slow", demo}, {"--home-nets", "10.0.0.0/33", demo}, {bad}} {
		if err := replay(context.Background(), args, &out, &errs); err == nil {
			t.Errorf("replay %v: no error", args)
		}
	}
	flows := filepath.Join(t.TempDir(), "flows.json")
	if err := replay(context.Background(), []string{"--flows", flows, "--workers", "2", "--home-nets", "10.77.0.0/16", demo}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(flows); !bytes.Contains(b, []byte(`"direction":"outbound"`)) {
		t.Errorf("records in %s lack an outbound flow", flows)
	}
}
