package detect

import (
	"strings"
	"testing"
	"time"
)

// activeEngine is an engine whose baselines may alert at once.
func activeEngine(t *testing.T, yaml string) (*Engine, *collector) {
	t.Helper()
	cfg, err := ParseConfig("test.yaml", []byte("Baseline:\n  ActivationAfter: 0d\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	return newEngine(t, cfg, nil)
}

// TestRareHostSeedSeverities: each variation is rated as the seed (Cortex
// XDR's "A process connected to a rare external host") rates it: the base
// alert and curl informational, UNIX LOLBINs and VS Code extensions low, a
// LOLBIN spawned by Office and MSBuild high, MSBuild again under
// T1127.001 at medium; the globally rare variant the same; and each is a
// config key.
func TestRareHostSeedSeverities(t *testing.T) {
	type want struct{ technique, severity string }
	cases := []struct {
		name, image, parent, cmd string
		want                     []want
	}{
		{"no process", "", "", "", []want{{"T1071", Informational}}},
		{"an ordinary program", "/usr/lib/firefox/firefox", "", "", []want{{"T1071", Informational}}},
		{"curl", "/usr/bin/curl", "", "curl https://x", []want{{"T1071", Informational}}},
		{"wget, a UNIX LOLBIN", "/usr/bin/wget", "", "wget https://x", []want{{"T1071", Low}}},
		{"python3, a UNIX LOLBIN", "/usr/bin/python3.11", "", "python3 x.py", []want{{"T1071", Low}}},
		{"ssh, a UNIX LOLBIN", "/usr/bin/ssh", "", "ssh x", []want{{"T1071", Low}}},
		{"a VS Code extension", "/home/u/.vscode/extensions/ms-python.python-2024.1/bin/helper", "", "", []want{{"T1071", Low}}},
		{"a LOLBIN spawned by Word", `C:\Windows\System32\certutil.exe`, `C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`,
			"certutil -urlcache -f http://x", []want{{"T1071", High}}},
		{"MSBuild", `C:\Windows\Microsoft.NET\Framework64\v4.0.30319\MSBuild.exe`, `C:\Windows\explorer.exe`, "msbuild.exe x.csproj",
			[]want{{"T1071", High}, {"T1127.001", Medium}}},
	}
	for _, c := range cases {
		for _, global := range []bool{false, true} {
			e, col := activeEngine(t, "")
			at := day0
			if !global {
				// Another host reached it before: rare, not new.
				e.Flow(tcp(at, "10.0.0.9", "203.0.113.9", 443, 500, 700))
				col.alerts = nil
				at = at.Add(time.Hour)
			}
			f := tcp(at, "10.0.0.5", "203.0.113.9", 443, 500, 700)
			if c.image != "" {
				f.OrigProc = proc(c.image, c.cmd)
				f.OrigProc.ParentImage = c.parent
			}
			e.Flow(f)
			analytic := "rare_host"
			if global {
				analytic = "rare_host_global"
			}
			got := col.by(analytic)
			if len(got) != len(c.want) || len(col.alerts) != len(c.want) {
				t.Errorf("%s (global %v): %d alerts, want %d", c.name, global, len(col.alerts), len(c.want))
				continue
			}
			for i, w := range c.want {
				if got[i].Technique != w.technique || got[i].Severity != w.severity {
					t.Errorf("%s (global %v): %s %s, want %s %s", c.name, global, got[i].Technique, got[i].Severity, w.technique, w.severity)
				}
			}
		}
	}

	// Configurable per variation, and GlobalRaise puts the old step back.
	e, col := activeEngine(t, "RareHost:\n  GlobalRaise: true\n  Severities:\n    Curl: high\n    Base: low\n")
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 443, 500, 700)
	f.OrigProc = proc("/usr/bin/curl", "curl https://x")
	e.Flow(f)
	g := tcp(day0, "10.0.0.5", "203.0.113.10", 443, 500, 700)
	e.Flow(g)
	if a := col.by("rare_host_global"); len(a) != 2 || a[0].Severity != Critical || a[1].Severity != Medium {
		t.Fatalf("configured: %+v", a)
	}
	_, err := ParseConfig("x.yaml", []byte("RareHost:\n  Severities:\n    MSBuildT1127.001: severe\n"))
	if err == nil || !strings.Contains(err.Error(), `RareHost.Severities.MSBuildT1127.001: "severe": expected informational, low`) {
		t.Errorf("a bad severity: %v", err)
	}
}

// TestRareHostIgnoreServicesLearns: IgnoreServices silences a service's
// alerts but prevalence keeps learning it; taken off the list by a
// reload, a service three hosts use every day is not rare.
func TestRareHostIgnoreServicesLearns(t *testing.T) {
	cfg, err := ParseConfig("a.yaml", []byte("RareHost:\n  IgnoreServices: [intranet-sync.example]\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, c := newEngine(t, cfg, nil)
	reach := func(d int, host string) {
		f := tcp(day0.Add(time.Duration(d)*24*time.Hour+time.Minute), host, "198.51.100.7", 443, 900, 4000)
		f.ServerName = "intranet-sync.example"
		f.OrigProc = proc("/usr/bin/curl", "curl https://intranet-sync.example/")
		e.Flow(f)
	}
	for d := 0; d < 20; d++ {
		for _, h := range []string{"10.0.0.5", "10.0.0.6", "10.0.0.7"} {
			reach(d, h)
		}
	}
	if len(c.alerts) != 0 {
		t.Fatalf("an ignored service alerted: %s", c.alerts[0].Title)
	}
	cfg2, err := ParseConfig("b.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.Reconfigure(cfg2)
	reach(20, "10.0.0.5")
	reach(20, "10.0.0.8") // a fourth host: the service is common
	if len(c.alerts) != 0 {
		t.Fatalf("off the list, the service looks rare: %s", c.alerts[0].Title)
	}
	// The control: a service nobody reached before is rare, and new.
	f := tcp(day0.Add(20*24*time.Hour+time.Hour), "10.0.0.5", "198.51.100.8", 443, 900, 4000)
	f.ServerName = "elsewhere.example"
	e.Flow(f)
	if a := c.by("rare_host_global"); len(a) != 1 {
		t.Fatalf("control: %d alerts", len(c.alerts))
	}
}
