//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	unitPath      = "../../deploy/systemd/outflow.service"
	logrotatePath = "../../deploy/systemd/outflow.logrotate"
)

// exposureFigure is the exposure level the READMEs give for the unit; both
// must give the same.
var exposureFigure = regexp.MustCompile(`exposure level \*\*(\d+\.\d)\*\*`)

// TestSystemdUnit: systemd's own checker accepts deploy/systemd/outflow.service
// without a word (its ExecStart pointed at a binary built for the test, the
// rest as shipped), and `systemd-analyze security` rates it at the exposure
// level deploy/systemd/README.md and README.md give, with the threshold set
// there too.
func TestSystemdUnit(t *testing.T) {
	_, err := exec.LookPath("systemd-analyze")
	need(t, err == nil, "systemd-analyze (Debian package systemd)")
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")
	const exec0 = "ExecStart=/usr/local/bin/outflow run --config /etc/outflow/outflow.yaml\n"
	if strings.Count(string(unit), exec0) != 1 || strings.Count(string(unit), "ExecStart=") != 1 {
		t.Fatalf("%s: want one %q", unitPath, exec0)
	}
	copyUnit := filepath.Join(dir, "outflow.service")
	os.WriteFile(copyUnit, []byte(strings.Replace(string(unit), "/usr/local/bin/outflow", bin, 1)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", copyUnit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	var figure string
	for _, readme := range []string{"../../deploy/systemd/README.md", "../../README.md"} {
		b, _ := os.ReadFile(readme)
		m := exposureFigure.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s gives no exposure level **N.N**", readme)
		}
		if figure != "" && string(m[1]) != figure {
			t.Errorf("%s gives %s, the other README %s", readme, m[1], figure)
		}
		figure = string(m[1])
	}
	f, _ := strconv.ParseFloat(figure, 64)
	threshold := strconv.Itoa(int(f*10 + 0.5)) // tenths
	cmd := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold="+threshold, unitPath)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security --threshold=%s (the README's %s): %v\n%s", threshold, figure, err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for outflow.service: (\d+\.\d)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	if string(m[1]) != figure {
		t.Errorf("systemd-analyze rates the unit %s, the READMEs say %s: update them", m[1], figure)
	}
	t.Logf("systemd-analyze security: exposure level %s", m[1])
}

// TestLogrotate: logrotate reads deploy/systemd/outflow.logrotate without
// an error (its user, outflow, made for the test when missing), and a real
// rotation by the same snippet, pointed at a directory of the test's, moves
// the file aside and makes a new empty one, 0640 and the user's, for the
// sensor to reopen on SIGHUP.
func TestLogrotate(t *testing.T) {
	need(t, os.Geteuid() == 0, "root (logrotate's su and create)")
	for _, tool := range []string{"logrotate", "useradd"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" (Debian packages logrotate, passwd)")
	}
	uid, gid := privUser(t, "outflow")
	dir := t.TempDir()
	out, err := exec.Command("logrotate", "-d", "-s", filepath.Join(dir, "state-d"), logrotatePath).CombinedOutput()
	if err != nil || strings.Contains(string(out), "error:") {
		t.Fatalf("logrotate -d: %v\n%s", err, out)
	}

	for _, p := range []string{filepath.Dir(dir), dir} {
		os.Chmod(p, 0o755) // logrotate works as the user there
	}
	logs := filepath.Join(dir, "log")
	os.Mkdir(logs, 0o755)
	os.Chown(logs, uid, gid)
	flows := filepath.Join(logs, "flows.json")
	os.WriteFile(flows, []byte("{\"line\":1}\n"), 0o640)
	os.Chown(flows, uid, gid)
	snippet, _ := os.ReadFile(logrotatePath)
	conf := filepath.Join(dir, "outflow.logrotate")
	os.WriteFile(conf, []byte(strings.Replace(string(snippet), "/var/log/outflow/", logs+"/", 1)), 0o644)
	if out, err := exec.Command("logrotate", "-f", "-s", filepath.Join(dir, "state"), conf).CombinedOutput(); err != nil {
		t.Fatalf("logrotate -f: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(flows + ".1"); err != nil || string(b) != "{\"line\":1}\n" {
		t.Errorf("flows.json.1: %q %v", b, err)
	}
	fi, err := os.Stat(flows)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Size() != 0 || fi.Mode().Perm() != 0o640 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("the new flows.json: size %d, mode %v, owner %d:%d; want 0, 0640, %d:%d", fi.Size(), fi.Mode(), st.Uid, st.Gid, uid, gid)
	}
}
