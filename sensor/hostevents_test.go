package sensor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/internal/shared"
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

func replayHostEvents(t *testing.T, dir string) ([]map[string]any, ReplayStats) {
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
	var out, errs bytes.Buffer
	st, err := Replay(context.Background(), ReplayConfig{Files: pcaps, HostEvents: logs, Table: inspectConfig(), Flows: &out, Errors: &errs})
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		recs = append(recs, m)
	}
	return recs, st
}

func procEnd(v any) (string, string, map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", "", nil
	}
	pid := ""
	if p, ok := m["pid"].(float64); ok {
		pid = strings.TrimSuffix(strings.TrimSuffix(jsonNumber(p), ".0"), "")
	}
	return feed.ImageName(str(m["image"])), pid, m
}

func jsonNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
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
			byCID := map[string]map[string]any{}
			for _, r := range recs {
				byCID[str(r["community_id"])] = r
			}
			for _, row := range rows {
				r := byCID[row.cid]
				if r == nil {
					t.Errorf("%s: no flow", row.cid)
					continue
				}
				want := row.ends()
				got := map[string]bool{}
				for _, side := range []string{"orig_process", "resp_process"} {
					name, pid, m := procEnd(r[side])
					if m == nil {
						continue
					}
					key := name + " " + pid
					if !want[key] && !want[name+" "] {
						t.Errorf("%s %s: %s %v, want one of %v", row.cid, side, key, m, want)
					}
					got[key] = true
				}
				if len(got) != len(want) {
					t.Errorf("%s (%v:%v -> %v:%v): %d ends attributed %v, want %d %v", row.cid, r["orig_h"], r["orig_p"],
						r["resp_h"], r["resp_p"], len(got), got, len(want), want)
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
		if str(r["community_id"]) != "1:RBV8hO8h14a/qvHOZFjEyd2PQeM=" {
			continue
		}
		p, _ := r["orig_process"].(map[string]any)
		if p == nil || p["image"] != "/bin/bash" || p["command_line"] != "bash -i" || p["pid"] != 17806.0 {
			t.Errorf("reverse shell: %v", p)
		}
		if par, _ := p["parent"].(map[string]any); par == nil || par["command_line"] != "bash -i" {
			t.Errorf("reverse shell's parent: %v", p["parent"])
		}
		return
	}
	t.Error("no reverse shell flow")
}
