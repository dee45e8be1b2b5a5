//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunEndToEnd runs `outflow run --config` as a sensor is run, on real
// traffic between two network namespaces made for the test and joined by a
// veth pair:
//
//   - the server namespace runs Debian's nginx (GET, and PUT through its DAV
//     module), the sensor capturing on its end of the veth with 2 workers,
//     softflowd on the same end exporting IPFIX biflows to the sensor's flow
//     listener on 127.0.0.1, and tcpdump writing the reference capture;
//   - the client namespace runs real curl downloads and uploads from known
//     source ports; for each, the test appends a process and a connect event
//     in Outflow's own host-event line format to the file the sensor follows
//     (Sources.HostEvents), as an endpoint agent would.
//
// Then, in order:
//
//	(a) the records and the AN1512 alert for curl's 12 MiB upload reach their
//	    files while the sensor runs, before any signal;
//	(b) logrotate rotates both files (create, postrotate SIGHUP) and the next
//	    traffic's records land in the new files;
//	(c) a SIGHUP with AN1512's threshold lowered puts it in force for the next
//	    alert while the dedup state of the first survives (another upload to
//	    the first destination raises no second alert); a SIGHUP with a broken
//	    config is refused, naming its line and key, and the run goes on under
//	    the config in force;
//	(d) after softflowd and tcpdump stop, SIGTERM: exit status 0; the rotated
//	    and current flow files hold every capture record exactly once, equal to
//	    `outflow replay` of tcpdump's capture; the export records of every TCP
//	    session are there with the same originator; every alert is written
//	    once.
func TestRunEndToEnd(t *testing.T) {
	need(t, os.Geteuid() == 0, "root (network namespaces and AF_PACKET)")
	for _, tp := range [][2]string{{"ip", "iproute2"}, {"nginx", "nginx"}, {"curl", "curl"}, {"softflowd", "softflowd"},
		{"softflowctl", "softflowd"}, {"tcpdump", "tcpdump"}, {"logrotate", "logrotate"}, {"taskset", "util-linux"}} {
		_, err := exec.LookPath(tp[0])
		need(t, err == nil, tp[0]+" (Debian package "+tp[1]+")")
	}
	curl, _ := exec.LookPath("curl")
	began := time.Now()
	dir := t.TempDir()
	bin := filepath.Join(dir, "outflow")
	run(t, "go", "build", "-o", bin, ".")

	l := e2eNewLink(t)
	www := e2eNginx(t, l, filepath.Join(dir, "nginx"))
	e2eUploadFile(t, filepath.Join(www, "dl.bin"), 4<<20)
	e2eUploadFile(t, filepath.Join(www, "fill.bin"), 2<<20)
	files := map[int]string{}
	for _, n := range []int{12, 6, 2, 1} {
		files[n] = filepath.Join(dir, fmt.Sprintf("upload-%dMiB.bin", n))
		e2eUploadFile(t, files[n], n<<20)
	}

	flowsPath, alertsPath := filepath.Join(dir, "flows.json"), filepath.Join(dir, "alerts.json")
	eventsPath, cfgPath := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "outflow.yaml")
	watched := filepath.Join(dir, "spool")
	os.Mkdir(watched, 0o755)
	if err := os.WriteFile(eventsPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The sensor's namespace is the test's own: the port is free there.
	const listenPort = 2055
	writeConfig := func(detection string) {
		t.Helper()
		c := fmt.Sprintf(`Sources:
  Capture: {Interfaces: [%s], Workers: 2, Filter: "", OnHost: false}
  FlowListeners: [netflow://127.0.0.1:%d]
  StitchWindow: 5s
  HostEvents: [%s]
  # Watched, and left empty: its source runs beside the others.
  Directories: [{Path: %s, Pattern: "*.pcap", Settle: 1s}]
Outputs:
  Flows: [{Path: %s}]
  Alerts: [{Path: %s}]
  FlushInterval: 1s
Logging: {Level: info, StatsInterval: 2s}
HomeNets: [10.0.0.0/8]
%s`, l.serverIf, listenPort, eventsPath, watched, flowsPath, alertsPath, detection)
		if err := os.WriteFile(cfgPath, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("AN1512:\n  DataVolumeThreshold: 10MiB\n")
	if out, err := exec.Command(bin, "check", "--config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("outflow check: %v\n%s", err, out)
	}

	// The sensor, softflowd and tcpdump, all on the server's end of the
	// link, each ready before the first packet.
	sensor := e2eStart(t, "ip", "netns", "exec", l.serverNS, bin, "run", "--config", cfgPath)
	log := sensor.stderr
	waitFor(t, 15*time.Second, "outflow run to capture and listen", func() bool {
		if sensor.exited() {
			t.Fatalf("outflow run exited: %v\n%s", sensor.err, log.String())
		}
		return capturing(log.String()) && strings.Contains(log.String(), "msg=collecting")
	})
	// softflowd's control socket stops it gracefully (softflowctl
	// shutdown): with -d it installs no handler for SIGTERM, which kills
	// it with its flows unexported, although the man page says otherwise.
	ctl := filepath.Join(dir, "softflowd.ctl")
	exporter := e2eStart(t, "ip", "netns", "exec", l.serverNS, "softflowd", "-i", l.serverIf,
		"-n", fmt.Sprintf("127.0.0.1:%d", listenPort), "-v", "10", "-b", "-d", "-c", ctl, "-p", filepath.Join(dir, "softflowd.pid"),
		// A closed connection is exported a second after softflowd has
		// seen both FINs, checked every second. Its libpcap buffer is
		// 2 MiB unless told: on a loaded machine a burst overflowed it.
		"-t", "tcp.fin=1s", "-t", "tcp.rst=1s", "-t", "expint=1s", "-B", "33554432")
	refPcap := filepath.Join(dir, "ref.pcap")
	tcpdump := e2eStart(t, "ip", "netns", "exec", l.serverNS, "tcpdump", "-i", l.serverIf, "-w", refPcap, "-s", "0", "-U", "-n",
		"-B", "16384", "-Z", "root")
	waitFor(t, 10*time.Second, "softflowd and tcpdump to capture", func() bool {
		for _, p := range []*e2eProc{exporter, tcpdump} {
			if p.exited() {
				t.Fatalf("%s exited: %v\n%s", p.cmd.Args[4], p.err, p.stderr.String())
			}
		}
		return strings.Contains(exporter.stderr.String(), "starting data collection") &&
			strings.Contains(tcpdump.stderr.String(), "listening on")
	})
	t.Logf("set up in %v", time.Since(began).Round(time.Millisecond))

	client := &e2eClient{l: l, events: eventsPath, curl: curl}
	server := l.server.String()
	uploadAlert := func(files []string, pid int) *e2eAlert {
		for _, a := range e2eAlerts(t, files...) {
			if a.Analytic == "AN1512" && a.Process != nil && a.Process.PID == int64(pid) {
				return a
			}
		}
		return nil
	}
	recordsIn := func(path string, ports ...int) bool {
		fl := e2eFlows(t, path)
		for _, p := range ports {
			if e2eFind(fl, p) == nil {
				return false
			}
		}
		return true
	}

	// (a) A download, then curl uploads 12 MiB, over AN1512's 10 MiB. The
	// capture's records come out once the connection has closed (Zeek's
	// close delay, 5 s), the next sweep and flush: the deadline leaves
	// room for that on a loaded machine, and no signal has been sent.
	d1 := client.do(t, "download 1", 41001, "", "/dl.bin")
	u1 := client.do(t, "upload 1", 41002, "", "/up/u1.bin", "-T", files[12])
	ended := time.Now()
	var alertA *e2eAlert
	waitFor(t, 20*time.Second, "phase 1's records and the AN1512 alert, with no signal sent", func() bool {
		alertA = uploadAlert([]string{alertsPath}, u1.pid)
		return alertA != nil && recordsIn(flowsPath, d1.port, u1.port)
	})
	t.Logf("(a) records and the alert in their files %v after the upload ended", time.Since(ended).Round(time.Millisecond))
	if strings.Contains(log.String(), "SIGHUP") {
		t.Fatalf("a SIGHUP before the test sent one:\n%s", log.String())
	}
	checkUploadAlert(t, alertA, u1, server, 10<<20)
	fl := e2eFlows(t, flowsPath)
	for _, cu := range []*e2eCurl{d1, u1} {
		checkProcess(t, e2eFind(fl, cu.port), cu)
	}

	// (b) logrotate renames both files, creates new ones and sends SIGHUP
	// from postrotate; the next records and alerts go to the new files.
	lrConf := filepath.Join(dir, "logrotate.conf")
	os.WriteFile(lrConf, []byte(fmt.Sprintf("%s %s {\n  rotate 5\n  create\n  sharedscripts\n  postrotate\n    kill -HUP %d\n  endscript\n}\n",
		flowsPath, alertsPath, sensor.cmd.Process.Pid)), 0o644)
	if out, err := exec.Command("logrotate", "-f", "-s", filepath.Join(dir, "logrotate.state"), lrConf).CombinedOutput(); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	reloads := func(n int) func() bool {
		return func() bool { return strings.Count(log.String(), "config reloaded") >= n }
	}
	waitFor(t, 10*time.Second, "the SIGHUP from logrotate to be handled", reloads(1))
	for _, p := range []string{flowsPath + ".1", alertsPath + ".1"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("logrotate made no %s: %v", p, err)
		}
	}
	d2 := client.do(t, "download 2", 41003, "", "/dl.bin")
	u2 := client.do(t, "upload 2", 41004, "", "/up/u2.bin", "-T", files[1])
	waitFor(t, 20*time.Second, "phase 2's records in the new "+flowsPath, func() bool { return recordsIn(flowsPath, d2.port, u2.port) })
	rotated := e2eFlows(t, flowsPath+".1")
	for _, cu := range []*e2eCurl{d1, u1} {
		if e2eFind(rotated, cu.port) == nil {
			t.Errorf("(b) %s: its record is not in the rotated %s.1", cu.name, flowsPath)
		}
	}
	for _, cu := range []*e2eCurl{d2, u2} {
		if f := e2eFind(rotated, cu.port); f != nil {
			t.Errorf("(b) %s, after the rotation: its record went to the rotated file: %v", cu.name, f)
		}
	}
	t.Logf("(b) rotated; phase 2's records in the new file")

	// (c) A lower threshold, put in force by SIGHUP. An upload of 6 MiB to
	// the first destination passes it, but that destination's alert is
	// still in force (Baseline.Dedup, 1 day): a kept state suppresses it,
	// a lost one would raise a second. The same to a new destination (the
	// HTTP Host names it) raises an alert with the new threshold.
	writeConfig("AN1512:\n  DataVolumeThreshold: 5MB\n")
	sensor.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the lowered threshold to be reloaded", reloads(2))
	u3 := client.do(t, "upload 3 (first destination)", 41005, "", "/up/u3.bin", "-T", files[6])
	u4 := client.do(t, "upload 4 (new destination)", 41006, "uploads-b.example", "/up/u4.bin", "-T", files[6])
	var alertB *e2eAlert
	waitFor(t, 20*time.Second, "the alert of the upload under the new threshold", func() bool {
		alertB = uploadAlert([]string{alertsPath}, u4.pid)
		return alertB != nil
	})
	checkUploadAlert(t, alertB, u4, server, 5_000_000)

	// A broken file: refused with its line and key; the threshold in
	// force stays 5 MB (the file's 1 MB would make the next 2 MiB upload
	// an alert), and records keep coming.
	writeConfig("AN1512:\n  DataVolumeThreshold: 1MB\n  DataVolumeTreshold: 1MB\n")
	cfgText, _ := os.ReadFile(cfgPath)
	badLine := slices.Index(strings.Split(string(cfgText), "\n"), "  DataVolumeTreshold: 1MB") + 1
	sensor.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the broken config to be refused", func() bool { return strings.Contains(log.String(), "config reload refused") })
	if want := fmt.Sprintf("%s:%d: AN1512.DataVolumeTreshold", cfgPath, badLine); !strings.Contains(log.String(), want) {
		t.Errorf("(c) the refusal does not say %q:\n%s", want, log.String())
	}
	if out, err := exec.Command(bin, "check", "--config", cfgPath).CombinedOutput(); err == nil || !strings.Contains(string(out), "AN1512.DataVolumeTreshold") {
		t.Errorf("(c) outflow check of the broken file: %v\n%s", err, out)
	}
	u5 := client.do(t, "upload 5 (after the refused reload)", 41007, "uploads-c.example", "/up/u5.bin", "-T", files[2])
	waitFor(t, 20*time.Second, "records after the refused reload", func() bool { return recordsIn(flowsPath, u3.port, u5.port) })
	if sensor.exited() {
		t.Fatalf("outflow run exited after the refused reload: %v\n%s", sensor.err, log.String())
	}
	t.Logf("(c) reloaded, then refused; the run goes on")

	// (d) The clients are done. softflowd asks libpcap for no timeout,
	// which on a TPACKET_V3 ring means a 256 KiB block reaches it only
	// once full (irino/softflowd pull request 71): the end of the last
	// connection would wait in a part-filled block for ever. A last
	// download of 2 MiB fills and hands over the blocks before it; its
	// own tail may stay behind, so its export is not checked.
	filler := client.do(t, "filler download", 41008, "", "/fill.bin")
	sessions := []*e2eCurl{d1, u1, d2, u2, u3, u4, u5}
	waitFor(t, 20*time.Second, "softflowd's export records of every session", func() bool {
		return len(e2eExportCounts(e2eFlows(t, flowsPath+".1", flowsPath), sessions)) == len(sessions)
	})
	stats, _ := exec.Command("softflowctl", "-c", ctl, "statistics").CombinedOutput()
	var exporterDrops int
	if _, after, ok := strings.Cut(string(stats), "Packets dropped by libpcap: "); ok {
		fmt.Sscan(after, &exporterDrops)
	}
	if out, err := exec.Command("softflowctl", "-c", ctl, "shutdown").CombinedOutput(); err != nil {
		t.Fatalf("softflowctl shutdown: %v\n%s", err, out)
	}
	// It exits 1 after a requested shutdown; what counts is that it
	// exported what it held, which the records show.
	select {
	case <-exporter.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("softflowd did not stop:\n%s", exporter.stderr.String())
	}
	// The last export datagrams reach the flow file within a flush: wait
	// until softflowd's counts are in (or the deadline; checkFinal says
	// what differs).
	captured := map[int]*e2eFlow{}
	waitFor(t, 10*time.Second, "the capture records of every session", func() bool {
		fl := e2eFlows(t, flowsPath+".1", flowsPath)
		for _, cu := range append(sessions, filler) {
			if captured[cu.port] = e2eFind(fl, cu.port); captured[cu.port] == nil {
				return false
			}
		}
		return true
	})
	deadline := time.Now().Add(10 * time.Second)
	for exporterDrops == 0 && time.Now().Before(deadline) {
		ex := e2eExportCounts(e2eFlows(t, flowsPath+".1", flowsPath), sessions)
		same := len(ex) == len(sessions)
		for _, cu := range sessions {
			same = same && ex[cu.port] == e2eCaptureCounts(captured[cu.port])
		}
		if same {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := tcpdump.stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("tcpdump: %v\n%s", err, tcpdump.stderr.String())
	}
	if !strings.Contains("\n"+tcpdump.stderr.String(), "\n0 packets dropped by kernel") {
		t.Errorf("tcpdump dropped packets: the reference is incomplete:\n%s", tcpdump.stderr.String())
	}
	if err := sensor.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("outflow run after SIGTERM: %v (want exit status 0)\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "kernel drops 0") {
		t.Errorf("outflow run had kernel drops:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "source=capture") || !strings.Contains(log.String(), "source=flow-listeners") {
		t.Errorf("no statistics lines:\n%s", log.String())
	}
	checkFinal(t, bin, dir, refPcap, flowsPath, l, sessions, filler, exporterDrops)
	if t.Failed() || exporterDrops > 0 {
		t.Logf("softflowd before its shutdown:\n%s", stats)
	}
	checkAlertFiles(t, alertsPath, log.String(), alertA, alertB, u3, u5)
	t.Logf("%v in all", time.Since(began).Round(time.Millisecond))
	if t.Failed() {
		t.Logf("outflow run's log:\n%s", log.String())
	}
}

// checkUploadAlert: AN1512 names curl, its pid and command line, the
// destination, and the threshold in force.
func checkUploadAlert(t *testing.T, a *e2eAlert, cu *e2eCurl, server string, threshold float64) {
	t.Helper()
	p := a.Process
	if p.Name != "curl" || p.Image != cu.args[0] || p.CommandLine != strings.Join(cu.args, " ") {
		t.Errorf("%s: the alert's process is %+v", cu.name, *p)
	}
	// The destination is the HTTP Host the request named, else the
	// server's address.
	if d := a.Destination; d == nil || d.IP != server || d.Name != cu.dest && !(cu.dest == server && d.Name == "") {
		t.Errorf("%s: the alert's destination is %+v, want %s at %s", cu.name, a.Destination, cu.dest, server)
	}
	if got := a.threshold("DataVolumeThreshold"); got != threshold {
		t.Errorf("%s: evidence.thresholds.DataVolumeThreshold %v, want %v: %s", cu.name, got, threshold, a.line)
	}
	t.Logf("%s: alert %s %q (%s)", cu.name, a.Analytic, a.Title, a.DedupKey)
}

// checkProcess: the record's originator is the curl the host events named.
func checkProcess(t *testing.T, f *e2eFlow, cu *e2eCurl) {
	t.Helper()
	if f == nil {
		t.Errorf("%s: no record", cu.name)
		return
	}
	p := f.OrigProcess
	if p == nil || p.PID != int64(cu.pid) || p.Name != "curl" || p.Image != cu.args[0] || p.CommandLine != strings.Join(cu.args, " ") || p.Feed != "e2e" {
		t.Errorf("%s: orig_process %+v, want curl pid %d: %v", cu.name, p, cu.pid, f)
	}
}

// checkFinal compares what the sensor wrote, across the rotation, with
// `outflow replay` of tcpdump's capture of the same link, and checks the
// export records.
func checkFinal(t *testing.T, bin, dir, refPcap, flowsPath string, l *e2eLink, sessions []*e2eCurl, filler *e2eCurl, exporterDrops int) {
	t.Helper()
	key := func(cu *e2eCurl) string { return fmt.Sprintf("tcp %s:%d > %s:80", l.client, cu.port, l.server) }
	if _, err := os.Stat(flowsPath + ".2"); err == nil {
		t.Errorf("%s.2 exists: more rotations than logrotate made", flowsPath)
	}
	all := e2eFlows(t, flowsPath+".1", flowsPath)
	live := map[string]*e2eFlow{}
	var exports []*e2eFlow
	for _, f := range all {
		if !f.captured() {
			exports = append(exports, f)
			continue
		}
		if !f.Final {
			// None is expected (the active timeout is 30 min); an
			// interim record would be followed by the final one.
			t.Logf("interim record: %v", f)
			continue
		}
		if g := live[f.key()]; g != nil {
			t.Errorf("(d) a capture record twice:\n  %v\n  %v", g, f)
			continue
		}
		live[f.key()] = f
	}

	replayOut := filepath.Join(dir, "replay.json")
	run(t, bin, "replay", "--quiet", "--flows", replayOut, refPcap)
	want := map[string]*e2eFlow{}
	for _, f := range e2eFlows(t, replayOut) {
		if f.Final {
			want[f.key()] = f
		}
	}
	// The link carries only the test's connections (no IPv6, static
	// neighbours), all made after every capture was ready and closed
	// before any stopped: the sensor and tcpdump saw the same packets.
	// Every counter must agree; only the times may differ (the two
	// sockets' timestamps of one frame), and the process, which replay
	// has no host events for.
	for k, w := range want {
		g := live[k]
		if g == nil {
			t.Errorf("(d) %v: in the replay, not in outflow run's files", w)
			continue
		}
		if gs, ws := e2eCounters(g), e2eCounters(w); gs != ws {
			t.Errorf("(d) %s differs:\n  run    %v\n  replay %v", k, g, w)
		} else {
			t.Logf("(d) %v", g)
		}
		delete(live, k)
	}
	for _, g := range live {
		t.Errorf("(d) %v: written by outflow run, not in the replay of tcpdump's capture", g)
	}
	for _, cu := range append(sessions, filler) {
		k := key(cu)
		if want[k] == nil {
			t.Errorf("(d) %s: no record %s in the replay", cu.name, k)
		}
		if i := slices.IndexFunc(all, func(f *e2eFlow) bool { return f.captured() && f.key() == k }); i >= 0 {
			checkProcess(t, all[i], cu)
		}
	}
	if len(want) != len(sessions)+1 {
		t.Errorf("(d) the reference holds %d flows, the test made %d connections", len(want), len(sessions)+1)
	}

	// The export records: softflowd saw the same sessions on the same
	// link. Its biflows name no originator; the sensor's rule (a likely
	// server port) must name the client, as the capture's SYN does. It
	// counted the same packets: a session's export records (the last ACK
	// may make a second one, after the first expired) add up to the
	// capture's counts, unless softflowd says it lost packets itself
	// (its libpcap ring overflowed): then they fall short, and that is
	// softflowd's loss, not the sensor's.
	ex := e2eExportCounts(all, sessions)
	for _, f := range exports {
		cu := filler
		for _, s := range sessions {
			if f.OrigP == s.port || f.RespP == s.port {
				cu = s
			}
		}
		if f.OrigP != cu.port && f.RespP != cu.port {
			t.Errorf("(d) an export record of no session of the test: %v", f)
			continue
		}
		if k := key(cu); f.key() != k {
			t.Errorf("(d) %s: export record %v, want the originator of %s", cu.name, f, k)
		}
		checkProcess(t, f, cu)
	}
	for _, cu := range sessions {
		if c, got := want[key(cu)], ex[cu.port]; c != nil && got != e2eCaptureCounts(c) {
			if exporterDrops > 0 {
				t.Logf("(d) %s: its export records count %s; the capture %v; softflowd dropped %d packets", cu.name, got, c, exporterDrops)
			} else {
				t.Errorf("(d) %s: its export records count %s; the capture %v", cu.name, got, c)
			}
		}
	}
	t.Logf("(d) %d capture records equal the replay's; %d export records", len(want), len(exports))
}

// e2eExportCounts adds up, per session (by the client's port), the
// packets and IP bytes of its export records, each way.
func e2eExportCounts(flows []*e2eFlow, sessions []*e2eCurl) map[int]string {
	type sum struct{ op, rp, ob, rb uint64 }
	sums := map[int]*sum{}
	for _, f := range flows {
		if f.captured() {
			continue
		}
		for _, cu := range sessions {
			if f.OrigP != cu.port && f.RespP != cu.port {
				continue
			}
			s := sums[cu.port]
			if s == nil {
				s = &sum{}
				sums[cu.port] = s
			}
			op, rp, ob, rb := f.OrigPkts, f.RespPkts, f.OrigIPBytes, f.RespIPBytes
			if f.RespP == cu.port {
				op, rp, ob, rb = rp, op, rb, ob
			}
			s.op, s.rp, s.ob, s.rb = s.op+op, s.rp+rp, s.ob+ob, s.rb+rb
		}
	}
	out := map[int]string{}
	for p, s := range sums {
		out[p] = fmt.Sprintf("packets %d/%d, IP bytes %d/%d", s.op, s.rp, s.ob, s.rb)
	}
	return out
}

func e2eCaptureCounts(f *e2eFlow) string {
	if f == nil {
		return ""
	}
	return fmt.Sprintf("packets %d/%d, IP bytes %d/%d", f.OrigPkts, f.RespPkts, f.OrigIPBytes, f.RespIPBytes)
}

// e2eCounters is what a capture record counts, per direction.
func e2eCounters(f *e2eFlow) string {
	s := *f
	s.TS, s.OrigProcess, s.file = time.Time{}, nil, ""
	return s.String()
}

// checkAlertFiles: each alert once across the rotated and the current
// file; the first in the rotated file, the one under the new threshold in
// the current; none for the upload to the first destination after the
// reload (its dedup key outlived the reload); none under the refused
// config; as many as the sensor counted.
func checkAlertFiles(t *testing.T, alertsPath, log string, a, b *e2eAlert, deduped, refused *e2eCurl) {
	t.Helper()
	all := e2eAlerts(t, alertsPath+".1", alertsPath)
	ids, keys := map[string]int{}, map[string]int{}
	for _, x := range all {
		ids[x.ID]++
		keys[x.DedupKey]++
		if x.Process != nil && x.Process.PID == int64(deduped.pid) {
			t.Errorf("(c) %s raised an alert: the first one's dedup key did not outlive the reload: %s", deduped.name, x.line)
		}
		if x.Process != nil && x.Process.PID == int64(refused.pid) {
			t.Errorf("(c) an alert under the refused config: %s", x.line)
		}
	}
	for _, x := range all {
		if ids[x.ID] > 1 || keys[x.DedupKey] > 1 {
			t.Errorf("(d) alert written %d times, its dedup key %d: %s", ids[x.ID], keys[x.DedupKey], x.line)
		}
	}
	where := map[string]string{}
	for _, x := range all {
		where[x.ID] = x.file
	}
	if where[a.ID] != alertsPath+".1" || where[b.ID] != alertsPath {
		t.Errorf("(b) the first alert is in %q, the second in %q", where[a.ID], where[b.ID])
	}
	// The summary counts what the engine emitted.
	if want := fmt.Sprintf(", %d alerts [", len(all)); !strings.Contains(log, want) {
		t.Errorf("(d) %d alerts in the files; the sensor's summary says otherwise:\n%s", len(all), log)
	}
	t.Logf("(d) %d alerts, each once", len(all))
}
