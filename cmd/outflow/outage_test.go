//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/testserver"
	"github.com/outflow-sensor/outflow/sensor/sink/spool"
)

// rssBound bounds outflow run's resident memory during an outage, in KiB.
// A directory source gives every file it reads a flow table sized by the
// file (at most one flow per 16 bytes of it: 118 MB for the 7.6 MB lab
// capture), and the Go runtime holds the last file's table while it makes
// the next: the sensor settles near 280 MB whatever its outputs do. The
// outputs add at most their bounded queues (QueueMaxBytes of flows per
// receiver); alerts wait on disk.
const rssBound = 400 << 10

// outageLength is how long the receivers stay down: OUTFLOW_OUTAGE, 20 s
// unless set (the README's figures come from OUTFLOW_OUTAGE=60s).
func outageLength(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("OUTFLOW_OUTAGE")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("OUTFLOW_OUTAGE=%q: want a duration such as 60s", s)
	}
	return d
}

// TestOutage is the "it must show", with a receiver that is down
// for OUTFLOW_OUTAGE while alerts keep coming: `outflow run` watches a
// directory into which the test drops a copy of the detection lab's
// capture every second or so, each shifted days later (editcap -t) so that
// the same detections fire again with new times and ids. Alerts go to
// rsyslog over TCP and to a file, flows to another rsyslog and a file;
// neither rsyslog runs. While they are down, the alerts file keeps
// growing, the alerts wait in the spool, whose files on disk grow and hold
// at least every alert's bytes, the flows wait in memory (the statistics
// line's pending_bytes) up to their bound and past it are dropped and
// counted, nothing is counted as delivered,
// and resident memory stays under rssBound. Then both rsyslogs start on the
// same ports and more copies come: rsyslog's file, the independent record
// of what arrived, holds every alert of the alerts file exactly once, byte
// for byte, in the file's order; every flow of the flows file reached
// rsyslog once, in order, or is counted as dropped. SIGTERM: exit status
// 0, and the spool holds exactly the alerts rsyslog lacks: none, unless
// sending the last ones (the day's reports, raised at the stop) outlasted
// the sender's 5 s at the stop on a slow machine, which the test logs. A
// next start sends those and nothing else, and leaves the spool empty.
func TestOutage(t *testing.T) {
	o := newOutage(t)
	o.start()
	began := time.Now()
	o.dropFor(o.length)
	o.checkDown()
	flows, half := o.stat("output", o.flowsURL), len(o.rss)/2
	t.Logf("down for %v: %d copies, %d alerts in %s, spool %d bytes on disk, flows pending %d bytes, dropped %d; "+
		"RSS at most %d MiB in the outage's first half, %d MiB in its second",
		time.Since(began).Round(time.Second), o.copies, o.lines(o.alertsPath), filepath.Base(o.alertsPath),
		o.spoolBytes(), flows.PendingBytes, flows.Dropped, slices.Max(o.rss[:half+1])>>10, slices.Max(o.rss[half:])>>10)
	o.recover()
}

// TestOutageKill is TestOutage with the process killed (SIGKILL) half way
// through the outage and started again with the same config; captures keep
// coming to the new process. After recovery rsyslog holds every alert of
// the alerts file, those of both processes, exactly once and in order:
// nothing the killed process spooled is lost or sent twice.
//
// The alerts file is the reference, so the kill comes when it holds every
// alert raised: an alert is in the spool (fsynced) before the file sink
// takes it (the config lists the receiver first), but the file is flushed
// a second later, so a kill in between leaves alerts that the receiver
// gets and the file never shows.
func TestOutageKill(t *testing.T) {
	o := newOutage(t)
	o.start()
	o.dropFor(o.length / 2)
	o.quiesce()
	before := o.complete(o.alertsPath)
	onDisk := o.spoolBytes()
	o.p.cmd.Process.Kill()
	<-o.p.done
	t.Logf("SIGKILL after %d copies: %d alerts in the file, spool %d bytes on disk", o.copies, len(before), onDisk)
	if o.spoolBytes() < alertBytes(before) {
		t.Fatalf("after the SIGKILL the spool holds %d bytes on disk, less than the %d of the alerts file", o.spoolBytes(), alertBytes(before))
	}
	o.start()
	t.Logf("started again: %s", strings.Join(o.logged("WARN", "ERROR"), "; "))
	o.dropFor(o.length / 2)
	o.checkDown()
	o.recover()
}

// logged is the running process's log messages of the levels.
func (o *outage) logged(levels ...string) []string {
	var out []string
	for _, l := range strings.Split(o.p.stderr.String(), "\n") {
		var r struct{ Level, Msg, Output, Err string }
		if json.Unmarshal([]byte(l), &r) == nil && slices.Contains(levels, r.Level) {
			out = append(out, strings.TrimSpace(r.Level+" "+r.Msg+" "+r.Output+" "+r.Err))
		}
	}
	return out
}

// outage is one run of the test: the sensor, its receivers, its files.
type outage struct {
	t                      *testing.T
	length                 time.Duration
	bin, editcap           string
	dir, watch, stage, cfg string
	alertsPath, flowsPath  string
	spoolDir               string
	alertsRS, flowsRS      *testserver.Rsyslog
	alertsURL, flowsURL    string
	p                      *e2eProc
	copies                 int     // copies dropped since the test began
	procCopies             int     // by the running process
	procFlows, procAlerts  int     // lines of the files before the running process
	rss                    []int   // resident memory samples, KiB
	spool                  []int64 // spool bytes on disk after each copy
}

func newOutage(t *testing.T) *outage {
	o := &outage{t: t, length: outageLength(t), editcap: testserver.Need(t, "editcap"), dir: t.TempDir()}
	o.alertsRS, o.flowsRS = testserver.NewRsyslog(t), testserver.NewRsyslog(t)
	o.alertsURL = "syslog+tcp://" + o.alertsRS.Addr(testserver.TCP)
	o.flowsURL = "syslog+tcp://" + o.flowsRS.Addr(testserver.TCP)
	o.bin = buildOutflow(t)
	o.watch, o.stage = filepath.Join(o.dir, "watch"), filepath.Join(o.dir, "stage")
	for _, d := range []string{o.watch, o.stage} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o.alertsPath, o.flowsPath = filepath.Join(o.dir, "alerts.json"), filepath.Join(o.dir, "flows.json")
	state := filepath.Join(o.dir, "state")
	o.spoolDir = state + ".spool" // the default, beside the state
	lab, err := os.ReadFile(labConfig)
	if err != nil {
		t.Fatal(err)
	}
	// The receivers come before the files: a sink's batch is on disk in
	// the spool before the file sink takes it, so an alert in the file is
	// in the spool too, whenever the process dies. The captures come
	// without their host events: the alerts rely on the capture alone.
	o.cfg = filepath.Join(o.dir, "outflow.yaml")
	cfg := fmt.Sprintf(`Sources:
  Directories: [{Path: %s, Pattern: "*.pcap", Settle: 200ms}]
Outputs:
  Flows: [{URL: "%s"}, {Path: %s}]
  Alerts: [{URL: "%s"}, {Path: %s}]
  FlushInterval: 1s
  QueueMaxBytes: 64KiB
Logging: {Level: info, Format: json, StatsInterval: 1s}
State: {Path: %s}
%s`, o.watch, o.flowsURL, o.flowsPath, o.alertsURL, o.alertsPath, state, lab)
	if err := os.WriteFile(o.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return o
}

// start runs outflow run and waits until it watches the directory.
func (o *outage) start() {
	t := o.t
	t.Helper()
	o.procCopies = 0
	o.procFlows, o.procAlerts = o.lines(o.flowsPath), o.lines(o.alertsPath)
	o.p = e2eStart(t, o.bin, "run", "--config", o.cfg)
	waitFor(t, time.Minute, "outflow run to watch the directory", func() bool {
		if o.p.exited() {
			t.Fatalf("outflow run exited: %v\n%s", o.p.err, o.p.stderr.String())
		}
		return strings.Contains(o.p.stderr.String(), `"msg":"watching"`)
	})
}

// complete is a file's complete lines so far, while the sensor may be
// writing it: a last line without its newline is left out. No file yet is
// no line.
func (o *outage) complete(path string) []string {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		o.t.Fatal(err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

func (o *outage) lines(path string) int { return len(o.complete(path)) }

// dropFor drops copies of the lab's capture for d, one after the other: a
// copy shifted 31 days after the last, renamed into the directory whole,
// removed once the sensor says it has read it (so a restarted sensor does
// not read it again: the directory source remembers nothing across
// restarts). Memory and the spool are sampled as it goes.
func (o *outage) dropFor(d time.Duration) {
	t := o.t
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		next := time.Now().Add(time.Second)
		o.copies++
		o.procCopies++
		name := fmt.Sprintf("lab-%03d.pcap", o.copies)
		staged := filepath.Join(o.stage, name)
		shift := strconv.Itoa(o.copies * 31 * 24 * 3600)
		if out, err := exec.Command(o.editcap, "-F", "pcap", "-t", shift, labPcap, staged).CombinedOutput(); err != nil {
			t.Fatalf("editcap: %v\n%s", err, out)
		}
		watched := filepath.Join(o.watch, name)
		if err := os.Rename(staged, watched); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, name+" to be read", func() bool {
			if o.p.exited() {
				t.Fatalf("outflow run exited: %v\n%s", o.p.err, o.p.stderr.String())
			}
			o.sampleRSS()
			return o.stat("directory", "").Files >= uint64(o.procCopies)
		})
		if err := os.Remove(watched); err != nil {
			t.Fatal(err)
		}
		o.spool = append(o.spool, o.spoolBytes())
		time.Sleep(time.Until(next))
	}
}

// sampleRSS notes the sensor's resident memory (VmRSS, KiB).
func (o *outage) sampleRSS() {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", o.p.cmd.Process.Pid))
	if err != nil {
		return // exited; the caller sees it
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
				o.rss = append(o.rss, n)
			}
		}
	}
}

// spoolBytes is the size of the spool's segment files on disk.
func (o *outage) spoolBytes() int64 {
	var n int64
	filepath.WalkDir(o.spoolDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".seg") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// alertBytes is what alerts take, without their newlines.
func alertBytes(lines []string) int64 {
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	return n
}

// statLine is one statistics line of the sensor's JSON log.
type statLine struct {
	Msg          string `json:"msg"`
	Source       string `json:"source"`
	Output       string `json:"output"`
	Files        uint64 `json:"files"`
	Records      uint64 `json:"records"`
	Flows        uint64 `json:"flows"`
	Alerts       uint64 `json:"alerts"`
	Lines        uint64 `json:"lines"`
	Dropped      uint64 `json:"dropped"`
	Errors       uint64 `json:"errors"`
	PendingBytes uint64 `json:"pending_bytes"`
	Spooled      uint64 `json:"spooled"`
	SpoolBytes   uint64 `json:"spool_bytes"`
}

// stat is the running process's last statistics line of a source (and
// output), zero before the first.
func (o *outage) stat(source, output string) statLine {
	var last statLine
	sc := bufio.NewScanner(strings.NewReader(o.p.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "{") {
			continue
		}
		var s statLine
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Msg == "statistics" && s.Source == source && s.Output == output {
			last = s
		}
	}
	return last
}

// quiesce waits until the running process has put every flow of the files
// it read through the analytics and every alert they raised in the alerts
// file; no capture is left to read, so none comes after.
func (o *outage) quiesce() {
	o.t.Helper()
	waitFor(o.t, 2*time.Minute, "every flow read to be judged and its alerts written", func() bool {
		dir, det := o.stat("directory", ""), o.stat("detection", "")
		return dir.Files == uint64(o.procCopies) && det.Flows == dir.Records &&
			uint64(o.lines(o.alertsPath)) == uint64(o.procAlerts)+det.Alerts
	})
}

// checkDown checks what the outage must show while the receivers are
// down.
func (o *outage) checkDown() {
	t := o.t
	t.Helper()
	alerts, flows := o.stat("output", o.alertsURL+" (alerts)"), o.stat("output", o.flowsURL)
	if alerts.Lines != 0 || flows.Lines != 0 || alerts.Errors == 0 || flows.Errors == 0 {
		t.Errorf("receivers down: the statistics say alerts %+v, flows %+v; want nothing delivered, failed sends counted", alerts, flows)
	}
	// A copy makes about 30 KB of flows: past the first few, the 64 KiB
	// bound drops them, counted.
	if flows.Dropped == 0 {
		t.Errorf("receivers down: no flow was dropped past QueueMaxBytes: %+v", flows)
	}
	if flows.PendingBytes > 64<<10 {
		t.Errorf("flows waiting in memory: %d bytes, over the 64 KiB bound", flows.PendingBytes)
	}
	if alerts.Spooled == 0 || alerts.SpoolBytes == 0 {
		t.Errorf("receivers down: the statistics show %d alerts, %d bytes in the spool", alerts.Spooled, alerts.SpoolBytes)
	}
	if len(o.spool) < 2 || o.spool[len(o.spool)-1] <= o.spool[0] {
		t.Errorf("the spool on disk did not grow while alerts kept coming: %v bytes", o.spool)
	}
	file := o.complete(o.alertsPath)
	if n := o.spoolBytes(); n < alertBytes(file) {
		t.Errorf("the spool holds %d bytes on disk, less than the %d of the alerts in %s", n, alertBytes(file), o.alertsPath)
	}
	if m := slices.Max(o.rss); m > rssBound {
		t.Errorf("resident memory reached %d MiB, over %d MiB", m>>10, rssBound>>10)
	}
}

// recover starts the receivers, drops a few more copies, and checks that
// everything arrived, then stops the sensor.
func (o *outage) recover() {
	t := o.t
	t.Helper()
	o.alertsRS.Start()
	o.flowsRS.Start()
	back := time.Now()
	o.dropFor(3 * time.Second)
	o.quiesce()
	// The sender retries with a backoff of up to 30 s.
	waitFor(t, 3*time.Minute, "every alert and flow to reach rsyslog", func() bool {
		flows := o.stat("output", o.flowsURL)
		return len(o.alertsRS.Read(testserver.TCP)) >= o.lines(o.alertsPath) &&
			uint64(len(o.flowsRS.Read(testserver.TCP)))+flows.Dropped >= uint64(o.lines(o.flowsPath)-o.procFlows)
	})
	t.Logf("receivers back: every alert and flow there %v later", time.Since(back).Round(time.Millisecond))
	final := o.stat("output", o.flowsURL)
	// SIGTERM ends the day on the traffic's clock: its reports are the
	// last alerts, sent while the sender stops (for up to 5 s).
	stopped := time.Now()
	if err := o.p.stop(t, syscall.SIGTERM, time.Minute); err != nil {
		t.Fatalf("outflow run after SIGTERM: %v (want exit status 0)\n%s", err, o.p.stderr.String())
	}
	took := time.Since(stopped)
	log := o.p.stderr.String()
	// What rsyslog holds once stopped (it writes out what it has) is
	// what arrived.
	o.alertsRS.Stop()
	o.flowsRS.Stop()
	o.checkFlows(final.Dropped)
	alerts := fileLines(t, o.alertsPath)
	got := msgs(t, "alerts", o.alertsRS.Read(testserver.TCP))
	if len(got) > len(alerts) {
		sameLines(t, "rsyslog, alerts", got, alerts)
	} else {
		sameLines(t, "rsyslog, alerts (those it has)", got, alerts[:len(got)])
	}
	// What did not go out before the exit waits in the spool for the next
	// start: that is the sender's contract. It is fine on a slow machine
	// (the last alerts' send and fsyncs took longer than the sender's
	// StopTimeout); not after a failed send with the receiver up.
	if left := len(alerts) - len(got); left > 0 && !t.Failed() {
		if failedAfterRecovery(log, o.alertsURL+" (alerts)") {
			t.Errorf("%d alerts were not sent before the exit, and the sender failed after the receiver was back", left)
		}
		t.Logf("%d alerts stayed in the spool at SIGTERM (the exit took %v; the sender stops sending after 5 s): the next start sends them", left, took)
	}
	if n := o.spoolLen(); n != len(alerts)-len(got) {
		t.Errorf("after SIGTERM the spool holds %d alerts; rsyslog lacks %d of the alerts file's", n, len(alerts)-len(got))
	}
	o.restart()
	if t.Failed() {
		warnings, lines := []string{}, strings.Split(log, "\n")
		for _, l := range lines {
			if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
				warnings = append(warnings, l)
			}
		}
		t.Logf("outflow run's warnings and errors:\n%s\nthe end of its log:\n%s", strings.Join(warnings, "\n"),
			strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// failedAfterRecovery says whether a sensor's JSON log shows a send to
// the output failing after the output worked again, or never working
// again.
func failedAfterRecovery(log, output string) bool {
	works := strings.LastIndex(log, `"msg":"output works again","output":"`+output+`"`)
	return works < 0 || strings.Contains(log[works:], `"output":"`+output+`","err":`)
}

// checkFlows: the flows rsyslog got are the running process's lines of
// the flows file, in order, each once, but for those counted as dropped.
func (o *outage) checkFlows(dropped uint64) {
	t := o.t
	t.Helper()
	var got []string
	for _, m := range o.flowsRS.Read(testserver.TCP) {
		got = append(got, m.Msg)
	}
	file := fileLines(t, o.flowsPath)[o.procFlows:]
	i := 0
	for _, g := range got {
		for i < len(file) && file[i] != g {
			i++
		}
		if i == len(file) {
			t.Fatalf("rsyslog got a flow out of the file's order, twice, or not in it: %.200s", g)
		}
		i++
	}
	if uint64(len(got))+dropped != uint64(len(file)) {
		t.Errorf("%d flows written by the process, %d reached rsyslog, %d counted as dropped", len(file), len(got), dropped)
	}
	t.Logf("flows: %d written, %d delivered, %d dropped", len(file), len(got), dropped)
}

// spoolLen is the number of alerts the spool holds (the receivers'
// spools' entries not acknowledged), as the next start would read them.
func (o *outage) spoolLen() int {
	t := o.t
	t.Helper()
	dirs, err := os.ReadDir(o.spoolDir)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no spool in %s: %v", o.spoolDir, err)
	}
	n := 0
	for _, d := range dirs {
		sp, err := spool.Open(filepath.Join(o.spoolDir, d.Name()), spool.Config{})
		if err != nil {
			t.Fatal(err)
		}
		n += sp.Len()
		sp.Close()
	}
	return n
}

// restart starts the sensor again with the alerts' receiver up and no
// capture to read, and stops it: rsyslog then holds the alerts file, each
// alert once and in order, and the spool nothing. When the first run had
// sent everything, this one sent nothing.
func (o *outage) restart() {
	t := o.t
	t.Helper()
	had := len(o.alertsRS.Read(testserver.TCP))
	o.alertsRS.Start()
	o.start()
	waitFor(t, 2*time.Minute, "the alerts left in the spool to reach rsyslog", func() bool {
		return o.stat("output", o.alertsURL+" (alerts)").Msg != "" && len(o.alertsRS.Read(testserver.TCP)) >= o.lines(o.alertsPath)
	})
	if err := o.p.stop(t, syscall.SIGTERM, time.Minute); err != nil {
		t.Fatalf("outflow run, started again, after SIGTERM: %v\n%s", err, o.p.stderr.String())
	}
	o.alertsRS.Stop()
	alerts := fileLines(t, o.alertsPath)
	got := msgs(t, "alerts", o.alertsRS.Read(testserver.TCP))
	sameLines(t, "rsyslog, alerts, after a second start", got, alerts)
	ids := map[string]bool{}
	for _, l := range alerts {
		var a struct{ ID string }
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.ID == "" || ids[a.ID] {
			t.Errorf("%s: an alert without an id, or twice: %.200s", o.alertsPath, l)
		}
		ids[a.ID] = true
	}
	if n := o.spoolLen(); n != 0 {
		t.Errorf("the spool holds %d alerts after a second start and stop with the receiver up", n)
	}
	t.Logf("%d alerts delivered once each, in order; the second start sent %d", len(got), len(got)-had)
}
