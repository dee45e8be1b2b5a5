//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClosedStdout: `outflow replay ... --flows - | head` with the reader
// gone early: the run is not killed by SIGPIPE, the alerts file gets every
// alert, and the exit status (1) and one line say that stdout failed.
func TestClosedStdout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")
	lab, _ := filepath.Abs(filepath.Join("..", "..", "pcaps"))
	alerts := filepath.Join(dir, "alerts.json")
	args := []string{bin, "replay", "--config", filepath.Join(lab, "detect-lab.yaml"), "--flows", "-", "--alerts", alerts}
	for i := 0; i < 30; i++ { // enough records to outgrow the pipe's buffer
		args = append(args, filepath.Join(lab, "outflow-detect.pcap"))
	}
	script := `"$@" 2>"$ERRS" | head -c 100 >/dev/null; exit ${PIPESTATUS[0]}`
	cmd := exec.Command("bash", append([]string{"-c", script, "bash"}, args...)...)
	cmd.Env = append(os.Environ(), "ERRS="+filepath.Join(dir, "stderr"))
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	errs, _ := os.ReadFile(filepath.Join(dir, "stderr"))
	if code != 1 || !strings.Contains(string(errs), "outflow: stdout: broken pipe") {
		t.Fatalf("exit %d (want 1, not 141 for SIGPIPE)\n%s", code, errs)
	}
	// The same replay with stdout read whole: the alerts the file must hold.
	_, want, _ := outflow(append([]string{"replay", "--config", filepath.Join(lab, "detect-lab.yaml"), "--flows", os.DevNull, "--alerts", "-"}, args[8:]...)...)
	got, _ := os.ReadFile(alerts)
	if n, w := strings.Count(string(got), "\n"), strings.Count(want, "\n"); n != w || w == 0 {
		t.Errorf("%d alerts in the file, %d without the broken pipe", n, w)
	}
}
