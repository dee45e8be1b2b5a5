package conformance

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/sensor"
)

// expectedJoin is one row of an EXPECTED_JOINS.md: a flow's Community ID
// and the processes the research script matched to it, as name and pid
// ("" when the feed did not give one).
type expectedJoin struct {
	cid   string
	procs [][2]string
}

var (
	joinRow   = regexp.MustCompile("^\\| [0-9-]+ [0-9:.]+ \\| [^|]+ \\| `([^`]+)` \\| (.+) \\|$")
	joinEvent = regexp.MustCompile(`image=(.+?) pid=(\S+)`)
)

func readExpectedJoins(t *testing.T, path string) []expectedJoin {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []expectedJoin
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := joinRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		row := expectedJoin{cid: m[1]}
		for _, ev := range strings.Split(m[2], "<br>") {
			if e := joinEvent.FindStringSubmatch(ev); e != nil {
				pid := e[2]
				if pid == "(absent)" {
					pid = ""
				}
				row.procs = append(row.procs, [2]string{feed.ImageName(e[1]), pid})
			}
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no rows", path)
	}
	return rows
}

// ends groups a row's processes into the flow ends they stand for: reports
// of one process by two feeds (Sysmon 3 and Security 5156) are one end.
func (j expectedJoin) ends() map[string]bool {
	pids := map[string][]string{}
	for _, p := range j.procs {
		if p[1] != "" {
			pids[p[0]] = append(pids[p[0]], p[1])
		}
	}
	ends := map[string]bool{}
	for _, p := range j.procs {
		switch {
		case p[1] != "":
			ends[p[0]+" "+p[1]] = true
		case len(pids[p[0]]) == 0:
			ends[p[0]+" "] = true
		}
	}
	return ends
}

func replayHostEvents(t *testing.T, dir string) ([]Flow, sensor.ReplayStats) {
	t.Helper()
	var pcaps, logs []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch filepath.Ext(e.Name()) {
		case ".pcap", ".pcapng", ".cap":
			pcaps = append(pcaps, p)
		case ".json":
			logs = append(logs, p)
		}
	}
	sort.Strings(pcaps)
	return replay(t, options{files: pcaps, hostEvents: logs, table: inspectConfig()})
}

// procEnd is the name and pid ("" when the record has none) of an end's
// process, and the process, nil when the end has none.
func procEnd(p *Process) (string, string, *Process) {
	if p == nil {
		return "", "", nil
	}
	pid := ""
	if p.PID != nil {
		pid = strconv.FormatInt(*p.PID, 10)
	}
	return feed.ImageName(p.Image), pid, p
}

// TestHostEventJoins: for each OTRF fixture (a capture and the host logs
// of the same activity), replay with --host-events attributes every flow
// of its EXPECTED_JOINS.md to the processes listed there, at both ends of
// internal flows where both hosts were instrumented, across clocks that
// disagree by milliseconds (Sysmon on Windows, 87 ms), seconds (Security
// 5156, NXLog), hours and days (the LSASS fixture's three clocks).
func TestHostEventJoins(t *testing.T) {
	for _, fixture := range []string{"otrf-log4shell-windows", "otrf-log4shell-linux", "otrf-empire-psremoting", "otrf-lsass-metasploit"} {
		t.Run(fixture, func(t *testing.T) {
			dir := shared.Path(t, filepath.Join("hostlogs", fixture))
			rows := readExpectedJoins(t, filepath.Join(dir, "EXPECTED_JOINS.md"))
			recs, st := replayHostEvents(t, dir)
			byCID := map[string]*Flow{}
			for i, r := range recs {
				byCID[r.CommunityID] = &recs[i]
			}
			for _, row := range rows {
				r := byCID[row.cid]
				if r == nil {
					t.Errorf("%s: no flow", row.cid)
					continue
				}
				want := row.ends()
				got := map[string]bool{}
				for _, side := range []struct {
					name string
					p    *Process
				}{{"orig_process", r.OrigProcess}, {"resp_process", r.RespProcess}} {
					name, pid, m := procEnd(side.p)
					if m == nil {
						continue
					}
					key := name + " " + pid
					if !want[key] && !want[name+" "] {
						t.Errorf("%s %s: %s %+v, want one of %v", row.cid, side.name, key, *m, want)
					}
					got[key] = true
				}
				if len(got) != len(want) {
					t.Errorf("%s (%v:%v -> %v:%v): %d ends attributed %v, want %d %v", row.cid, r.OrigH, r.OrigP,
						r.RespH, r.RespP, len(got), got, len(want), want)
				}
			}
			t.Logf("%d expected joins; %+v", len(rows), st.HostEvents.Index)
		})
	}
}

// TestHostEventQuirks: the cases the fixtures' notes single out.
func TestHostEventQuirks(t *testing.T) {
	dir := shared.Path(t, "hostlogs/otrf-log4shell-linux")
	recs, st := replayHostEvents(t, dir)
	// 17 of the 93 Sysmon for Linux records are not well-formed XML.
	for _, f := range st.HostEvents.Files {
		if strings.Contains(f.Path, "syslog_sysmon") {
			if f.Stats.Errors[feed.ReasonXML] != 17 || f.Stats.Lines != 93 {
				t.Errorf("Linux Sysmon: %d records, %d malformed XML; the fixture has 93 and 17", f.Stats.Lines, f.Stats.Errors[feed.ReasonXML])
			}
		}
	}
	// Fork then exec: the reverse shell's connect event names "bash" and
	// no user; its process is /bin/bash "bash -i", child of another.
	for _, r := range recs {
		if r.CommunityID != "1:RBV8hO8h14a/qvHOZFjEyd2PQeM=" {
			continue
		}
		p := r.OrigProcess
		if p == nil || p.Image != "/bin/bash" || p.CommandLine != "bash -i" || p.PID == nil || *p.PID != 17806 {
			t.Errorf("reverse shell: %+v", p)
		}
		if p == nil || p.Parent == nil || p.Parent.CommandLine != "bash -i" {
			if p != nil {
				t.Errorf("reverse shell's parent: %+v", p.Parent)
			} else {
				t.Errorf("reverse shell's parent: %v", nil)
			}
		}
		return
	}
	t.Error("no reverse shell flow")
}
