package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var demo = filepath.Join("..", "..", "pcaps", "outflow-demo.pcap")

// outflow runs one command line as the binary would and returns its exit
// status, stdout and stderr.
func outflow(args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = execute(context.Background(), args, &out, &errs, nil)
	return code, out.String(), errs.String()
}

// TestReplayCommand runs the README's first command (as a function call) on
// the bundled capture and reads its output back.
func TestReplayCommand(t *testing.T) {
	code, out, errs := outflow("replay", demo)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 20 {
		t.Fatalf("%d records", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
	}
	if !strings.Contains(errs, "1 files (0 with errors)") {
		t.Errorf("summary: %q", errs)
	}
}

// TestCommandLine: the command line behaves as users of Zeek, Suricata
// and tcpdump expect: flags before or after file names, help and version
// exit 0, a mistake in the command line exits 2 with one sentence naming
// the flag, and an input that could not be read exits 1 while the rest is
// still read and written.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "notes.txt")
	os.WriteFile(bad, []byte("not a capture"), 0o644)
	// The demo capture cut inside a record, as a capture still being
	// written or a copy that stopped: what it holds is written, and the
	// exit status says it was not read to its end (it was 0).
	whole, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, whole[:3000000], 0o644)
	// The record the cut falls in, walking the records' headers (16 bytes,
	// the captured length at 8) from the end of the file header.
	last := 24
	for last+16+int(binary.LittleEndian.Uint32(whole[last+8:])) <= 3000000 {
		last += 16 + int(binary.LittleEndian.Uint32(whole[last+8:]))
	}
	flows := filepath.Join(dir, "flows.json")
	for _, c := range []struct {
		args   []string
		code   int
		stdout string // a substring of stdout
		stderr string // a substring of stderr
		file   bool   // flows.json holds records
	}{
		{args: []string{"--help"}, code: 0, stdout: "replay"},
		{args: nil, code: 0, stdout: "Commands:"},
		{args: []string{"replay", "--help"}, code: 0, stdout: "--workers"},
		{args: []string{"live", "--help"}, code: 0, stdout: "--interface"},
		{args: []string{"--version"}, code: 0, stdout: "outflow "},
		{args: []string{"replay", demo, "--flows", flows, "--workers", "2"}, code: 0, file: true},
		{args: []string{"replay", "--workers", "0", demo}, code: 2, stderr: "--workers must be between 1 and 256, not 0"},
		{args: []string{"replay", "--max-flows", "10", demo}, code: 2, stderr: "--max-flows must be between 1024 and 67108864, not 10"},
		{args: []string{"replay", "--workers", "two", demo}, code: 2, stderr: `--workers: expected a valid 64 bit int but got "two"`},
		{args: []string{"replay", "--home-nets", "10.0.0.0/33", demo}, code: 2, stderr: `--home-nets: "10.0.0.0/33" is not a CIDR prefix`},
		{args: []string{"replay", "--pace", "slow", demo}, code: 2, stderr: `--pace must be one of "max","realtime" but got "slow"`},
		{args: []string{"replay", "--flwos", flows, demo}, code: 2, stderr: `unknown flag --flwos, did you mean "--flows"?`},
		{args: []string{"replay"}, code: 2, stderr: "missing <FILE> ..."},
		{args: []string{"replay", "--state", dir, demo}, code: 2, stderr: "--state needs --alerts"},
		{args: []string{"live"}, code: 2, stderr: "missing flags: --interface"},
		{args: []string{"frobnicate"}, code: 2, stderr: "unexpected argument frobnicate"},
		{args: []string{"replay", bad}, code: 1, stderr: bad + ": offset 0"},
		{args: []string{"replay", cut, "--flows", flows}, code: 1, stderr: fmt.Sprintf("%s: offset %d: truncated record", cut, last), file: true},
		{args: []string{"replay", filepath.Join(dir, "missing.pcap"), demo, "--flows", flows}, code: 1,
			stderr: "missing.pcap: cannot open the capture: no such file or directory", file: true},
		{args: []string{"replay", "--flows", filepath.Join(dir, "no", "such", "dir.json"), demo}, code: 1,
			stderr: "--flows: cannot open " + filepath.Join(dir, "no", "such", "dir.json") + " for writing: no such file or directory"},
		{args: []string{"check"}, code: 2, stderr: "--config FILE is required"},
		{args: []string{"collect", "--listen", "netflow://127.0.0.1:0", "--host-events", "sylog+udp://:5514"}, code: 2,
			stderr: `--host-events "sylog+udp://:5514": not a file, -, syslog+udp://, syslog+tcp://, http:// or kafka://`},
		{args: []string{"collect", "--listen", "netflow://127.0.0.1:0", "--host-events", "http://127.0.0.1/events"}, code: 2,
			stderr: `--host-events "http://127.0.0.1/events": give a port`},
	} {
		os.Remove(flows)
		code, out, errs := outflow(c.args...)
		if code != c.code || !strings.Contains(out, c.stdout) || !strings.Contains(errs, c.stderr) {
			t.Errorf("outflow %s: exit %d (want %d)\nstdout %.300q (want %q)\nstderr %.600q (want %q)",
				strings.Join(c.args, " "), code, c.code, out, c.stdout, errs, c.stderr)
		}
		if c.file {
			if b, _ := os.ReadFile(flows); !bytes.Contains(b, []byte(`"community_id"`)) {
				t.Errorf("outflow %s: no records in %s", strings.Join(c.args, " "), flows)
			}
		}
		if strings.Contains(errs, "strconv.") || strings.Contains(errs, "netip.") || strings.Contains(errs, ": open /") {
			t.Errorf("outflow %s: a Go internal in %q", strings.Join(c.args, " "), errs)
		}
	}
}

// TestReplayHomeNets: --home-nets decides which side is home.
func TestReplayHomeNets(t *testing.T) {
	flows := filepath.Join(t.TempDir(), "flows.json")
	if code, _, errs := outflow("replay", "--flows", flows, "--workers", "2", "--home-nets", "10.77.0.0/16", demo); code != 0 {
		t.Fatal(errs)
	}
	if b, _ := os.ReadFile(flows); !bytes.Contains(b, []byte(`"direction":"outbound"`)) {
		t.Errorf("records in %s lack an outbound flow", flows)
	}
}

// TestHostEventListenerBusy: a host-event listener whose port is taken is
// an error of the start, exit 1 with one sentence naming the source (it
// was logged and the sensor ran on without it).
func TestHostEventListenerBusy(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for _, spec := range []string{"syslog+udp://" + udp.LocalAddr().String(), "syslog+tcp://" + tcp.Addr().String(), "http://" + tcp.Addr().String() + "/events"} {
		code, _, errs := outflow("collect", "--listen", "netflow://127.0.0.1:0", "--host-events", spec, "--flows", os.DevNull)
		if code != 1 || !strings.Contains(errs, "host events "+spec) || !strings.Contains(errs, "address already in use") || strings.Count(errs, "outflow: ") != 1 {
			t.Errorf("%s: exit %d, want 1 with the source named\n%s", spec, code, errs)
		}
	}
}
