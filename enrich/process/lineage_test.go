package process

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/internal/shared"
)

const log4shellLinux = "hostlogs/otrf-log4shell-linux"

// rawProc is a process start as a test reads it from a log by itself,
// without the feed parsers.
type rawProc struct {
	pid, ppid                int64
	guid, parentGUID         string
	image, cmd, pImage, pCmd string
}

// logRows returns the SyslogMessage (or EventData) of every row of a Log
// Analytics Syslog export.
func logRows(t *testing.T, rel, field string) []string {
	t.Helper()
	f, err := os.Open(shared.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var row map[string]any
		if json.Unmarshal(sc.Bytes(), &row) != nil {
			continue
		}
		if s, ok := row[field].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// sysmonXML is a Sysmon record as encoding/xml reads it.
type sysmonXML struct {
	EventID int `xml:"System>EventID"`
	Data    []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"EventData>Data"`
}

// sysmonStarts reads the Sysmon for Linux records of the Log4Shell fixture
// with encoding/xml, without the feed parsers: the event 1 records by
// ProcessGuid, and the ProcessId of the event 3 for the tuple given (that
// event's ProcessGuid is the parent's: Sysmon for Linux names the
// process that forked, the pid is the child's). A record that is not
// well-formed XML (17 of 93: cut at the syslog line limit, or an entity
// without its ';') says nothing.
func sysmonStarts(t *testing.T, src, dst netip.AddrPort) (map[string]rawProc, string) {
	t.Helper()
	starts := map[string]rawProc{}
	owner := ""
	for _, m := range logRows(t, sysmonLinux, "SyslogMessage") {
		var ev sysmonXML
		if xml.Unmarshal([]byte(m), &ev) != nil {
			continue
		}
		d := map[string]string{}
		for _, kv := range ev.Data {
			if kv.Value != "-" {
				d[kv.Name] = kv.Value
			}
		}
		switch ev.EventID {
		case 1:
			pid, _ := strconv.ParseInt(d["ProcessId"], 10, 64)
			ppid, _ := strconv.ParseInt(d["ParentProcessId"], 10, 64)
			starts[d["ProcessGuid"]] = rawProc{pid: pid, ppid: ppid, guid: d["ProcessGuid"], parentGUID: d["ParentProcessGuid"],
				image: d["Image"], cmd: d["CommandLine"], pImage: d["ParentImage"], pCmd: d["ParentCommandLine"]}
		case 3:
			if d["SourceIp"] == src.Addr().String() && d["SourcePort"] == strconv.Itoa(int(src.Port())) &&
				d["DestinationIp"] == dst.Addr().String() && d["DestinationPort"] == strconv.Itoa(int(dst.Port())) {
				owner = d["ProcessId"]
			}
		}
	}
	return starts, owner
}

// link is one ancestor as a test expects it.
type link struct {
	pid        int64
	image, cmd string
}

// walkGUIDs is the chain above p as the log says it, walked by
// ParentProcessGuid, up to the default depth; a parent without a start
// record of its own is known by p's Parent fields and ends it.
func walkGUIDs(starts map[string]rawProc, p rawProc) []link {
	var out []link
	for len(out) < DefaultLineageDepth {
		q, ok := starts[p.parentGUID]
		if !ok {
			if p.pImage != "" {
				out = append(out, link{p.ppid, p.pImage, p.pCmd})
			}
			break
		}
		out = append(out, link{q.pid, q.image, q.cmd})
		p = q
	}
	return out
}

// checkChain compares an attribution's ancestors with the log's chain.
func checkChain(t *testing.T, got []Ancestor, want []link) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("ancestors %+v, want %+v", got, want)
	}
	for i, w := range want {
		a := got[i]
		if a.PID != w.pid || a.Image != w.image || a.Command != w.cmd {
			t.Errorf("ancestor %d = %d %q %q, want %d %q %q", i, a.PID, a.Image, a.Command, w.pid, w.image, w.cmd)
		}
	}
}

const sysmonLinux = log4shellLinux + "/syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"

// TestLineageSysmonLinux: the Log4Shell reverse shell's connection to
// 192.168.2.6:443 (EXPECTED_JOINS.md: bash -i, pid 17806) has the
// ancestors the Sysmon log's own event 1 records give by
// ParentProcessGuid, read here with encoding/xml: bash -i (17794), then
// bash (17790). EXPECTED_JOINS.md's chain goes on to java (1340), but the
// log's event 1 of 17790 is cut at the syslog line limit and is no
// record: 17790 is known only by its child's ParentImage and
// ParentCommandLine, and ends the chain.
func TestLineageSysmonLinux(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.168.2.5:39634"), netip.MustParseAddrPort("192.168.2.6:443")
	starts, ownerPID := sysmonStarts(t, src, dst)
	var cur rawProc
	for _, p := range starts {
		if strconv.FormatInt(p.pid, 10) == ownerPID {
			cur = p
		}
	}
	if ownerPID == "" || cur.guid == "" {
		t.Fatalf("the log has no event 3 (pid %q) and event 1 for the reverse shell", ownerPID)
	}
	want := walkGUIDs(starts, cur)
	if len(want) != 2 || want[0].pid != 17794 || want[1].pid != 17790 {
		t.Fatalf("the log's own chain is %+v, not EXPECTED_JOINS.md's 17794, 17790 (then 1340, in a cut record)", want)
	}

	at := time.Date(2022, 5, 11, 18, 10, 22, 131e6, time.UTC)
	x := New(DefaultConfig())
	if _, err := feed.ReadFile(shared.Path(t, sysmonLinux), x.Add, nil); err != nil {
		t.Fatal(err)
	}
	orig, _ := x.Join(Flow{Proto: 6, Orig: src, Resp: dst, Start: at})
	if orig == nil || orig.PID != 17806 {
		t.Fatalf("orig = %+v, want bash -i (17806)", orig)
	}
	checkChain(t, orig.Ancestors, want)
	// The record names them, nearest first, beside the parent.
	var rec struct {
		P struct {
			Parent    struct{ Image string }
			Ancestors []struct {
				PID         int64
				Name        string
				CommandLine string `json:"command_line"`
			}
		} `json:"orig_process"`
	}
	b := append([]byte(`{"x":1`), AppendJSON(nil, "orig_process", orig)...)
	if err := json.Unmarshal(append(b, '}'), &rec); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if len(rec.P.Ancestors) != 2 || rec.P.Ancestors[0].PID != 17794 || rec.P.Ancestors[0].CommandLine != "bash -i" ||
		rec.P.Ancestors[1].Name != "bash" || rec.P.Parent.Image != "/bin/bash" {
		t.Errorf("record: %s", b)
	}

	// A depth of 1 is the parent alone; a negative depth none; past the
	// chain's end, the chain.
	for _, c := range []struct{ depth, n int }{{1, 1}, {-1, 0}, {2, 2}, {100, 2}} {
		cfg := DefaultConfig()
		cfg.LineageDepth = c.depth
		y := New(cfg)
		if _, err := feed.ReadFile(shared.Path(t, sysmonLinux), y.Add, nil); err != nil {
			t.Fatal(err)
		}
		o, _ := y.Join(Flow{Proto: 6, Orig: src, Resp: dst, Start: at})
		if o == nil || len(o.Ancestors) != c.n {
			t.Errorf("LineageDepth %d: %+v, want %d ancestors", c.depth, o, c.n)
		}
	}
}

// TestLineageSysmonWindows: the Windows Log4Shell fixture's Empire
// launcher (EXPECTED_JOINS.md: powershell.exe, pid 2084, to
// 192.168.3.5:443) has the ancestors the Sysmon log's own event 1
// records give, read here with encoding/json from the Log Analytics rows:
// tomcat9.exe (3936), whose start the log does not hold, so it ends the
// chain by its child's ParentImage and ParentCommandLine.
func TestLineageSysmonWindows(t *testing.T) {
	rel := "hostlogs/otrf-log4shell-windows/sysmon_log4shell_cve2021_44228_java_serialized_object_2022-05-13045800.json"
	src, dst := netip.MustParseAddrPort("192.168.2.5:54226"), netip.MustParseAddrPort("192.168.3.5:443")
	f, err := os.Open(shared.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	starts := map[string]rawProc{}
	owner := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var row struct {
			EventID   int
			EventData string
		}
		d := map[string]string{}
		if json.Unmarshal(sc.Bytes(), &row) != nil || json.Unmarshal([]byte(row.EventData), &d) != nil {
			continue
		}
		for k, v := range d {
			if v == "-" {
				delete(d, k)
			}
		}
		switch row.EventID {
		case 1:
			pid, _ := strconv.ParseInt(d["ProcessId"], 10, 64)
			ppid, _ := strconv.ParseInt(d["ParentProcessId"], 10, 64)
			starts[d["ProcessGuid"]] = rawProc{pid: pid, ppid: ppid, guid: d["ProcessGuid"], parentGUID: d["ParentProcessGuid"],
				image: d["Image"], cmd: d["CommandLine"], pImage: d["ParentImage"], pCmd: d["ParentCommandLine"]}
		case 3:
			if d["SourceIp"] == src.Addr().String() && d["SourcePort"] == strconv.Itoa(int(src.Port())) && d["DestinationPort"] == "443" {
				owner = d["ProcessGuid"]
			}
		}
	}
	cur, ok := starts[owner]
	if !ok || cur.pid != 2084 {
		t.Fatalf("the log has no event 1 of the event 3's process %q (%+v)", owner, cur)
	}
	want := walkGUIDs(starts, cur)
	if len(want) != 1 || want[0].pid != 3936 || !strings.HasSuffix(want[0].image, `\tomcat9.exe`) {
		t.Fatalf("the log's own chain is %+v, not tomcat9.exe (3936)", want)
	}

	x := New(DefaultConfig())
	if _, err := feed.ReadFile(shared.Path(t, rel), x.Add, nil); err != nil {
		t.Fatal(err)
	}
	orig, _ := x.Join(Flow{Proto: 6, Orig: src, Resp: dst, Start: time.Date(2022, 5, 13, 8, 54, 9, 477e6, time.UTC)})
	if orig == nil || orig.PID != 2084 {
		t.Fatalf("orig = %+v, want powershell.exe (2084)", orig)
	}
	checkChain(t, orig.Ancestors, want)
}

var auomsField = regexp.MustCompile(`(\w+)=("[^"]*"|\S*)`)

// TestLineageAUOMS: the same reverse shell from the AUOMS execve records,
// which carry pid and ppid and no GUID. The connection is the one
// EXPECTED_JOINS.md gives (bash pid 17806 to 192.168.2.6:443; the AUOMS
// log holds no connect records). Its ancestors are what the log's
// successful execve records say, read here by a regular expression:
// 17794 and 17790; java (1340) has no execve of its own and no image in
// its child's record, so the chain ends at 17790.
func TestLineageAUOMS(t *testing.T) {
	rel := log4shellLinux + "/syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"
	execs := map[int64]rawProc{}
	for _, m := range logRows(t, rel, "SyslogMessage") {
		if !strings.Contains(m, "type=AUOMS_EXECVE") || !strings.Contains(m, " success=yes ") {
			continue
		}
		d := map[string]string{}
		for _, kv := range auomsField.FindAllStringSubmatch(m, -1) {
			if _, dup := d[kv[1]]; !dup {
				d[kv[1]] = strings.Trim(kv[2], `"`)
			}
		}
		pid, _ := strconv.ParseInt(d["pid"], 10, 64)
		ppid, _ := strconv.ParseInt(d["ppid"], 10, 64)
		execs[pid] = rawProc{pid: pid, ppid: ppid, image: d["exe"]}
	}
	var want []int64
	for p := execs[17806]; len(want) < DefaultLineageDepth; {
		q, ok := execs[p.ppid]
		if !ok {
			break
		}
		want = append(want, q.pid)
		p = q
	}
	if len(want) != 2 || want[0] != 17794 || want[1] != 17790 {
		t.Fatalf("the log's own chain is %v, not EXPECTED_JOINS.md's 17794, 17790", want)
	}

	x := New(DefaultConfig())
	if _, err := feed.ReadFile(shared.Path(t, rel), x.Add, nil); err != nil {
		t.Fatal(err)
	}
	src, dst := netip.MustParseAddrPort("192.168.2.5:39634"), netip.MustParseAddrPort("192.168.2.6:443")
	at := time.Date(2022, 5, 11, 18, 10, 22, 139e6, time.UTC)
	x.Add(&feed.Event{Kind: feed.KindConnect, Feed: feed.FeedAUOMS, Host: "ubuntu5", PID: 17806, PPID: -1, Image: "bash", Time: at,
		Proto: 6, Src: src.Addr(), SrcPort: src.Port(), Dst: dst.Addr(), DstPort: dst.Port(), Initiated: true, HasSrcPort: true})
	orig, _ := x.Join(Flow{Proto: 6, Orig: src, Resp: dst, Start: at.Add(-8 * time.Millisecond)})
	if orig == nil || orig.PID != 17806 {
		t.Fatalf("orig = %+v, want bash (17806)", orig)
	}
	var got []int64
	for i, a := range orig.Ancestors {
		got = append(got, a.PID)
		if i < len(want) && a.Image != execs[want[i]].image {
			t.Errorf("ancestor %d image %q, want %q", i, a.Image, execs[want[i]].image)
		}
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ancestors %v, want %v", got, want)
	}
}

// chain adds n processes on host h, each the parent of the next, pids
// 100, 101, ..., started a second apart, and a connect event of the last.
func chain(x *Index, n int) Flow {
	for i := 0; i < n; i++ {
		e := start("h", int64(100+i), "/bin/p"+strconv.Itoa(i), "p"+strconv.Itoa(i), t0.Add(time.Duration(i-n)*time.Second))
		e.PPID = int64(99 + i)
		x.Add(e)
	}
	x.Add(connectOf("h", int64(100+n-1), "/bin/p"+strconv.Itoa(n-1), feed.FeedProcfs, client, upload, t0))
	return uploadFl
}

// TestLineageBounds: the depth bounds the walk (at most
// MaxLineageDepth), a pid whose parent is itself or a chain that loops
// ends, and a parent pid's record started after the child (the pid
// reused later) is no parent.
func TestLineageBounds(t *testing.T) {
	for _, c := range []struct{ depth, n, want int }{{0, 10, DefaultLineageDepth}, {3, 10, 3}, {40, 30, MaxLineageDepth}, {16, 5, 4}} {
		cfg := DefaultConfig()
		cfg.LineageDepth = c.depth
		x := New(cfg)
		o, _ := x.Join(chain(x, c.n))
		if o == nil || len(o.Ancestors) != c.want {
			t.Fatalf("depth %d over %d processes: %+v, want %d ancestors", c.depth, c.n, o, c.want)
		}
		for i, a := range o.Ancestors {
			if want := int64(100 + c.n - 2 - i); a.PID != want {
				t.Errorf("depth %d: ancestor %d is pid %d, want %d", c.depth, i, a.PID, want)
			}
		}
	}
	// A loop: 7's parent is 8, 8's parent is 7.
	x := New(DefaultConfig())
	a := start("h", 7, "/bin/a", "a", t0.Add(-time.Minute))
	a.PPID = 8
	b := start("h", 8, "/bin/b", "b", t0.Add(-time.Minute))
	b.PPID = 7
	x.Add(a)
	x.Add(b)
	x.Add(connectOf("h", 7, "/bin/a", feed.FeedProcfs, client, upload, t0))
	if o, _ := x.Join(uploadFl); o == nil || len(o.Ancestors) != 1 || o.Ancestors[0].PID != 8 {
		t.Errorf("loop: %+v, want b alone", o)
	}
	// Pid reuse: the only record of pid 50 started after its "child".
	x = New(DefaultConfig())
	c := start("h", 51, "/bin/c", "c", t0.Add(-time.Minute))
	c.PPID = 50
	x.Add(c)
	x.Add(start("h", 50, "/bin/later", "later", t0.Add(-time.Second)))
	x.Add(connectOf("h", 51, "/bin/c", feed.FeedProcfs, client, upload, t0))
	if o, _ := x.Join(uploadFl); o == nil || len(o.Ancestors) != 0 {
		t.Errorf("pid reuse: %+v, want no ancestor", o)
	}
}
