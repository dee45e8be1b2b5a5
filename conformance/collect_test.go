package conformance

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/sensor"
)

func needTool(t *testing.T, name, pkg string) {
	if _, err := exec.LookPath(name); err != nil {
		shared.Missing(t, name+" (Debian package "+pkg+")", err)
	}
}

// exporter is a real flow exporter from Debian's packages, reading the
// bundled capture and sending to a collector port.
type exporterRun struct {
	name   string
	pkg    string
	biflow bool
	run    func(t *testing.T, dir string, port int) *exec.Cmd
	// finish, if set, runs while the exporter (output so far in out)
	// runs, and makes it exit once it has all the capture; running ends
	// if the exporter exits first.
	finish func(running context.Context, dir string, out *lockedBuffer) error
}

func softflowd(mode ...string) exporterRun {
	return exporterRun{name: "softflowd", pkg: "softflowd", biflow: mode[len(mode)-1] == "-b",
		run: func(t *testing.T, dir string, port int) *exec.Cmd {
			// No control socket: softflowd 1.1.0 reading a file may block
			// in accept() on it (its poll state is not set in that mode).
			args := append([]string{"-r", demo, "-n", fmt.Sprintf("127.0.0.1:%d", port), "-d",
				"-c", "none", "-p", filepath.Join(dir, "pid")}, mode...)
			return exec.Command("softflowd", args...)
		}}
}

// nfprobe runs pmacctd (1.7.7) with its nfprobe plugin, a process the
// core forks and hands packets to. Left to stop on its own at the end
// of the capture, the core sends the plugin SIGINT and only then
// wait()s for it, while its SIGCHLD handler reaps a plugin that is gone
// before that wait() and, seeing no plugin left, exits 1 ("connection
// lost to 'default_nfprobe-nfprobe'; closing connection.", "no more
// plugins active. Shutting down."): on a loaded machine the plugin is
// done before the preempted core reaches wait(). With
// pcap_savefile_wait the core instead hands the plugin the last buffer,
// says "finished reading PCAP capture file" and blocks in wait();
// pmacctdFinish then stops the plugin, the core's wait() reaps it and
// the core exits 0.
func nfprobe(version int) exporterRun {
	return exporterRun{name: "pmacctd-nfprobe", pkg: "pmacct",
		run: func(t *testing.T, dir string, port int) *exec.Cmd {
			conf := filepath.Join(dir, "pmacctd.conf")
			text := fmt.Sprintf("daemonize: false\npcap_savefile: %s\npcap_savefile_wait: true\npidfile: %s\nplugins: nfprobe\nnfprobe_receiver: 127.0.0.1:%d\nnfprobe_version: %d\n",
				demo, filepath.Join(dir, "pmacctd.pid"), port, version)
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			return exec.Command("pmacctd", "-f", conf)
		},
		finish: pmacctdFinish}
}

// pmacctdFinish waits until pmacctd's core has read the whole capture
// and sleeps in wait() (wchan do_wait), and its plugin has read all the
// core gave it and sleeps in poll(); then it sends the plugin SIGINT,
// on which it exports every flow it holds and exits. Waiting for the
// states, not for a time, keeps it right however slow the machine.
func pmacctdFinish(running context.Context, dir string, out *lockedBuffer) error {
	core, plugin := 0, 0
	var coreWchan, pluginWchan string
	for {
		if strings.Contains(out.String(), "finished reading PCAP capture file") {
			// The core writes its pid to the pidfile, a plugin its
			// own to pidfile-type-name.
			if core == 0 {
				core = pidFrom(filepath.Join(dir, "pmacctd.pid"))
			}
			if plugin == 0 {
				plugin = pidFrom(filepath.Join(dir, "pmacctd.pid-nfprobe-default_nfprobe"))
			}
			coreWchan, pluginWchan = procWchan(core), procWchan(plugin)
			if core != 0 && plugin != 0 && coreWchan == "do_wait" && strings.Contains(pluginWchan, "poll") {
				return syscall.Kill(plugin, syscall.SIGINT)
			}
		}
		select {
		case <-running.Done():
			if plugin != 0 {
				_ = syscall.Kill(plugin, syscall.SIGKILL)
			}
			return fmt.Errorf("pmacctd not seen done reading (core pid %d in %q, plugin pid %d in %q): %w",
				core, coreWchan, plugin, pluginWchan, context.Cause(running))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pidFrom reads a pidfile, 0 if there is none (yet).
func pidFrom(name string) int {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// procWchan is the kernel function a process sleeps in, "" while it runs
// (or is runnable) or is gone.
func procWchan(pid int) string {
	if pid == 0 {
		return ""
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	if err != nil || string(b) == "0" {
		return ""
	}
	return string(b)
}

func fprobe() exporterRun {
	return exporterRun{name: "fprobe", pkg: "fprobe",
		run: func(t *testing.T, dir string, port int) *exec.Cmd {
			// fprobe reads a capture from stdin with -i -; -l 2 keeps it in
			// the foreground. At the end of the file it emits its cache
			// at once, dropping what its capture queue still holds, so the
			// file is fed at a pace and the end held back a moment.
			data, err := os.ReadFile(demo)
			if err != nil {
				t.Fatal(err)
			}
			f := &pacedReader{data: data}
			cmd := exec.Command("fprobe", "-i", "-", "-f", "ip", "-l", "2", "-q", "10000", "-d", "3600", "-e", "3600", "-n", "5",
				fmt.Sprintf("127.0.0.1:%d", port))
			cmd.Stdin = f
			return cmd
		}}
}

// pacedReader hands out data 32 KiB per millisecond and waits a second
// before the end.
type pacedReader struct {
	data []byte
	off  int
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.off == len(p.data) {
		time.Sleep(time.Second)
		return 0, io.EOF
	}
	time.Sleep(time.Millisecond)
	n := copy(b[:min(len(b), 32<<10)], p.data[p.off:])
	p.off += n
	return n, nil
}

// freeUDPPort returns a loopback port nothing listens on now.
func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// exportTwice runs the exporter into a tee that hands every datagram to
// the collector and to nfcapd, nfdump's collector, and returns the
// collector's flows and nfdump's records (one-way, or both ways for
// biflows) of the same datagrams.
func exportTwice(t *testing.T, ex exporterRun) ([]Flow, sensor.ExportStats, [][]string) {
	needTool(t, ex.name[:min(len(ex.name), strings.IndexByte(ex.name+"-", '-'))], ex.pkg)
	needTool(t, "nfcapd", "nfdump")
	dir := t.TempDir()
	nfdir := filepath.Join(dir, "nfcapd")
	if err := os.Mkdir(nfdir, 0o755); err != nil {
		t.Fatal(err)
	}
	recs, _, st := collect(t, options{}, func(port int) {
		nfPort := freeUDPPort(t)
		nf := exec.Command("nfcapd", "-b", "127.0.0.1", "-p", fmt.Sprint(nfPort), "-w", nfdir, "-t", "3600")
		nfLog := &lockedBuffer{}
		nf.Stdout, nf.Stderr = nfLog, nfLog
		if err := nf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = nf.Process.Signal(syscall.SIGTERM)
			if err := nf.Wait(); err != nil {
				t.Errorf("nfcapd: %v\n%s", err, nfLog.String())
			}
		}()
		// nfcapd binds after a moment; until then its port refuses.
		probe, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", nfPort))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100 && !strings.Contains(nfLog.String(), "Startup"); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		probe.Close()

		tee, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_ = tee.(*net.UDPConn).SetReadBuffer(8 << 20)
		var teed atomic.Uint64
		go func() {
			to := []*net.UDPAddr{{IP: net.IPv4(127, 0, 0, 1), Port: port}, {IP: net.IPv4(127, 0, 0, 1), Port: nfPort}}
			buf := make([]byte, 65536)
			for {
				n, _, err := tee.ReadFrom(buf)
				if err != nil {
					return
				}
				for _, a := range to {
					if _, err := tee.WriteTo(buf[:n], a); err != nil {
						t.Errorf("tee to %v: %v", a, err)
					}
				}
				teed.Add(1)
			}
		}()
		defer tee.Close()

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := ex.run(t, dir, tee.LocalAddr().(*net.UDPAddr).Port)
		in := cmd.Stdin
		cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
		cmd.Stdin = in
		cmd.WaitDelay = time.Second
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", ex.name, err)
		}
		exited := make(chan error, 1)
		running, stop := context.WithCancelCause(ctx)
		defer stop(nil)
		go func() {
			err := cmd.Wait()
			exited <- err
			stop(fmt.Errorf("%s exited: %v", ex.name, err))
		}()
		if ex.finish != nil {
			if err := ex.finish(running, dir, out); err != nil {
				cancel()
				<-exited
				t.Fatalf("%s: %v\n%s", ex.name, err, out.String())
			}
		}
		if err := <-exited; err != nil {
			t.Fatalf("%s: %v\n%s", ex.name, err, out.String())
		}
		last := uint64(0)
		for i := 0; i < 100; i++ {
			time.Sleep(30 * time.Millisecond)
			if n := teed.Load(); n == last && n > 0 {
				break
			} else {
				last = n
			}
		}
		// Give nfcapd the last datagrams before it is told to stop.
		time.Sleep(200 * time.Millisecond)
	})
	files, _ := filepath.Glob(filepath.Join(nfdir, "nfcapd.2*"))
	if len(files) != 1 {
		t.Fatalf("nfcapd files: %v", files)
	}
	out, err := exec.Command("nfdump", "-q", "-r", files[0], "-o", "csv").Output()
	if err != nil {
		t.Fatalf("nfdump: %v", err)
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("nfdump csv: %v", err)
	}
	return recs, st, rows
}

// nfdumpDirections sums nfdump's CSV records per one-way key, in the form
// directions gives: ICMP type and code from the exporters' type<<8|code.
func nfdumpDirections(t *testing.T, rows [][]string) map[string][2]uint64 {
	sum := map[string][2]uint64{}
	col := map[string]int{}
	for _, r := range rows {
		if len(col) == 0 && len(r) > 0 && r[0] == "ts" {
			for i, c := range r {
				col[c] = i
			}
			continue
		}
		if len(col) == 0 {
			col = map[string]int{"sa": 3, "da": 4, "sp": 5, "dp": 6, "pr": 7, "ipkt": 11, "ibyt": 12, "opkt": 13, "obyt": 14}
		}
		if len(r) <= col["obyt"] || r[0] == "Summary" {
			continue
		}
		u := func(k string) uint64 {
			v, err := strconv.ParseUint(strings.TrimSpace(r[col[k]]), 10, 64)
			if err != nil {
				t.Fatalf("nfdump %s %q: %v", k, r[col[k]], err)
			}
			return v
		}
		proto := strings.ToLower(r[col["pr"]])
		sp, dp := u("sp"), u("dp")
		if proto == "icmp" || proto == "icmp6" {
			sp, dp = dp>>8, dp&0xff
		}
		add := func(src string, sport uint64, dst string, dport uint64, pkts, bytes uint64) {
			if pkts == 0 {
				return
			}
			k := fmt.Sprintf("%s %s:%d %s:%d", proto, src, sport, dst, dport)
			v := sum[k]
			v[0] += pkts
			v[1] += bytes
			sum[k] = v
		}
		add(r[col["sa"]], sp, r[col["da"]], dp, u("ipkt"), u("ibyt"))
		add(r[col["da"]], dp, r[col["sa"]], sp, u("opkt"), u("obyt"))
	}
	return sum
}

// icmpWithoutTypes drops ICMP types and codes from one-way keys.
func icmpWithoutTypes(m map[string][2]uint64) map[string][2]uint64 {
	out := map[string][2]uint64{}
	for k, v := range m {
		if strings.HasPrefix(k, "icmp") {
			f := strings.Fields(k)
			for i := 1; i < len(f); i++ {
				f[i] = f[i][:strings.LastIndexByte(f[i], ':')]
			}
			k = strings.Join(f, " ")
		}
		w := out[k]
		out[k] = [2]uint64{w[0] + v[0], w[1] + v[1]}
	}
	return out
}

// counters are the packet and IP byte counts per direction, which flows
// from exports and replay of the same capture share.
var counters = []struct {
	name string
	get  func(r Flow) uint64
}{
	{"orig_pkts", func(r Flow) uint64 { return r.OrigPkts }},
	{"resp_pkts", func(r Flow) uint64 { return r.RespPkts }},
	{"orig_ip_bytes", func(r Flow) uint64 { return r.OrigIPBytes }},
	{"resp_ip_bytes", func(r Flow) uint64 { return r.RespIPBytes }},
}

// TestExportersAgree: softflowd (NetFlow v5, v9, IPFIX, IPFIX biflows),
// pmacct's nfprobe (v5, v9, IPFIX) and fprobe (v5), real exporters from
// Debian, read the
// bundled capture and export it over loopback. A tee hands every datagram
// to the collector and to nfcapd. Every TCP and UDP session comes out
// stitched with the packets and IP bytes per direction that replay of the
// same capture counts, and nfdump's reading of the same export agrees
// record by record.
func TestExportersAgree(t *testing.T) {
	want := map[string]*Flow{}
	recs, _ := replay(t, options{files: []string{demo}, table: flows.DefaultConfig(), workers: 1, final: true})
	for i, r := range recs {
		if p := r.Proto; p == "tcp" || p == "udp" {
			want[fmt.Sprintf("%v %v:%v %v:%v", p, r.OrigH, decimal(r.OrigP), r.RespH, decimal(r.RespP))] = &recs[i]
		}
	}
	replayICMP := map[string]bool{}
	recs, _ = replay(t, options{files: []string{demo}, table: flows.DefaultConfig(), workers: 1, final: true})
	for _, r := range recs {
		if p := r.Proto; p == "icmp" || p == "icmp6" {
			for k := range directions([]Flow{r}, true) {
				replayICMP[k] = true
			}
		}
	}
	runs := []struct {
		label string
		ex    exporterRun
	}{
		{"softflowd v5", softflowd("-v", "5")},
		{"softflowd v9", softflowd("-v", "9", "-6")},
		{"softflowd ipfix", softflowd("-v", "10", "-6")},
		{"softflowd ipfix biflow", softflowd("-v", "10", "-6", "-b")},
		{"nfprobe v5", nfprobe(5)},
		{"nfprobe v9", nfprobe(9)},
		{"nfprobe ipfix", nfprobe(10)},
		{"fprobe v5", fprobe()},
	}
	for _, run := range runs {
		t.Run(run.label, func(t *testing.T) {
			recs, st, rows := exportTwice(t, run.ex)
			got := 0
			for _, r := range recs {
				k := fmt.Sprintf("%v %v:%v %v:%v", r.Proto, r.OrigH, decimal(r.OrigP), r.RespH, decimal(r.RespP))
				w := want[k]
				if w == nil {
					if p := r.Proto; p == "tcp" || p == "udp" {
						t.Logf("not in replay: %s %v %v", k, r.TS, r.Stitch)
					}
					continue
				}
				got++
				for _, f := range counters {
					if f.get(r) != f.get(*w) {
						t.Errorf("%s: %s %v, replay counted %v (stitch %v)", k, f.name, f.get(r), f.get(*w), r.Stitch)
					}
				}
				wantStitch := "paired"
				if run.ex.biflow {
					wantStitch = "biflow"
				}
				if r.Stitch != wantStitch {
					t.Errorf("%s: stitch %v, want %s", k, r.Stitch, wantStitch)
				}
				if r.ObservedPayload == nil || *r.ObservedPayload {
					t.Errorf("%s: observed_payload %v", k, r.ObservedPayload)
				}
			}
			if got != len(want) {
				t.Errorf("%d of %d replayed TCP/UDP flows found among %d collected (stats %+v)", got, len(want), len(recs), st.Stitch)
			}
			ours, theirs := directions(recs, true), nfdumpDirections(t, rows)
			// nfdump 1.7.1 takes a NetFlow v9 record's ICMP type from the
			// destination port, which both exporters leave 0, putting the
			// type in ICMP_TYPE (IE 32/139): it reads type 0. The capture
			// is the judge of ours: every ICMP key must be one replay saw.
			for k := range ours {
				if strings.HasPrefix(k, "icmp") && !replayICMP[k] {
					t.Errorf("%s: no such ICMP flow in replay", k)
				}
			}
			ours, theirs = icmpWithoutTypes(ours), icmpWithoutTypes(theirs)
			if len(theirs) == 0 {
				t.Fatal("nfdump read no records")
			}
			for k, v := range theirs {
				if ours[k] != v {
					t.Errorf("%s: nfdump %d packets, %d bytes; collect %v", k, v[0], v[1], ours[k])
				}
			}
			for k, v := range ours {
				if _, ok := theirs[k]; !ok {
					t.Errorf("%s: collect %v, not in nfdump's", k, v)
				}
			}
			t.Logf("%d one-way records agree with nfdump; %d flows match replay", len(theirs), got)
		})
	}
}
