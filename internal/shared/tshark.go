package shared

import (
	"bytes"
	"os/exec"
	"testing"
)

// TsharkFrames asks tshark, an independent reader, how many frames a
// capture has. Without tshark (Debian package tshark) the test fails in CI
// and is skipped elsewhere, as Missing does.
func TsharkFrames(t testing.TB, path string) int {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		Missing(t, "tshark (Debian package tshark)", err)
	}
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	return bytes.Count(out, []byte("\n"))
}
