package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/encode"
	"github.com/outflow-sensor/outflow/sensor/metrics"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// The detection lab (pcaps/record-detect.sh): real programs' traffic, the
// host events on-host attribution recorded beside it, and its config.
const (
	labPcap   = "../../pcaps/outflow-detect.pcap"
	labEvents = "../../pcaps/outflow-detect.events.jsonl"
	labConfig = "../../pcaps/detect-lab.yaml"
)

// An IPFIX export from a real exporter (OpenBSD pflow, from flowbeat's
// test data): a template datagram, then a data datagram, and the records
// flowbeat decoded of them.
const (
	pflowTemplate = "netflow/flowbeat/testdata/dat/ipfix_test_openbsd_pflow_tpl.dat"
	pflowData     = "netflow/flowbeat/testdata/dat/ipfix_test_openbsd_pflow_data.dat"
	pflowGolden   = "netflow/flowbeat/testdata/golden/IPFIX-OpenBSD-pflow.golden.json"
)

// collectorPort is the flow listener's port: the test's network namespace
// is its own, so any port is free.
const collectorPort = 2055

// runResult is what one run of the sensor left: its outputs on disk and
// the scrapes taken while it ran and after it stopped.
type runResult struct {
	dir, watch, flowsPath, alertsPath string
	datagrams                         [][]byte // the export datagrams sent
	middle, final                     exposition
}

// TestRunMetrics replays the detection lab through sensor.Run, a watched
// directory, with the lab's host events followed, flow exports received
// from a real exporter's datagrams, and a capture on the loopback of a
// namespace of its own, and checks every count /metrics serves against
// an independent count of the same thing: the capture file read with
// gopacket, the lines written to the outputs' files, the host events
// file, flowbeat's decoding of the exports and the kernel's counters.
func TestRunMetrics(t *testing.T) {
	r := runLab(t)
	// While it ran, once the directory's file was done: the file, frame
	// by frame, as gopacket reads it.
	frames, bytes, undecodable := readCapture(t, labPcap)
	dirLabel := lbl("directory", r.watch)
	dirSource := lbl("source", "directory:"+r.watch)
	for _, e := range []struct {
		name string
		e    exposition
	}{{"while running", r.middle}, {"after the stop", r.final}} {
		if v := e.e.sum("outflow_directory_files_total", dirLabel); v != 1 {
			t.Errorf("%s: files read %v, want 1", e.name, v)
		}
		if v := e.e.sum("outflow_directory_file_errors_total", dirLabel); v != 0 {
			t.Errorf("%s: file errors %v", e.name, v)
		}
		if v := e.e.sum("outflow_directory_packets_total", dirLabel); v != float64(frames) {
			t.Errorf("%s: packets %v, the capture has %d frames", e.name, v, frames)
		}
		if v := e.e.sum("outflow_directory_bytes_total", dirLabel); v != float64(bytes) {
			t.Errorf("%s: bytes %v, the capture's frames have %d", e.name, v, bytes)
		}
		// gopacket decodes every frame of the lab: so must we.
		if v := e.e.sum("outflow_decode_errors_total", dirSource); v != float64(undecodable) {
			t.Errorf("%s: decode errors %v, gopacket failed on %d frames", e.name, v, undecodable)
		}
	}

	// After the stop: the outputs' files are whole.
	f := r.final
	flowsOut := readLines(t, r.flowsPath)
	records := f.sum("outflow_flow_records_total")
	if records != float64(len(flowsOut)) || records == 0 {
		t.Errorf("flow records: %v counted, %d in %s", records, len(flowsOut), r.flowsPath)
	}
	var bySource = map[string]int{}
	var joined, clientHellos, serverHellos int
	joinedBy := map[string]int{} // by the feed the record names
	for _, l := range flowsOut {
		var rec struct {
			Resp     int             `json:"resp_p"`
			Exporter string          `json:"exporter"`
			OrigProc json.RawMessage `json:"orig_process"`
			RespProc json.RawMessage `json:"resp_process"`
			TLS      *struct {
				ClientHello bool `json:"client_hello"`
				ServerHello bool `json:"server_hello"`
			} `json:"tls"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%s: %v: %s", r.flowsPath, err, l)
		}
		switch {
		case rec.Exporter != "":
			bySource["flow-listeners"]++
		case rec.Resp == collectorPort:
			bySource["capture"]++
		default:
			bySource["directory:"+r.watch]++
			if rec.TLS != nil && rec.TLS.ClientHello {
				clientHellos++
			}
			if rec.TLS != nil && rec.TLS.ServerHello {
				serverHellos++
			}
		}
		for _, p := range []json.RawMessage{rec.OrigProc, rec.RespProc} {
			if len(p) == 0 {
				continue
			}
			joined++
			var proc struct {
				Feed string `json:"feed"`
			}
			if err := json.Unmarshal(p, &proc); err != nil || proc.Feed == "" {
				t.Fatalf("a process without its feed: %s (%v)", p, err)
			}
			joinedBy[proc.Feed]++
		}
	}
	for source, n := range bySource {
		if v := f.sum("outflow_flow_records_total", lbl("source", source)); v != float64(n) {
			t.Errorf("flow records of %s: %v counted, %d written", source, v, n)
		}
	}
	if v := f.sum("outflow_handshakes_total", dirSource, lbl("kind", "tls_client_hello")); v != float64(clientHellos) || v == 0 {
		t.Errorf("TLS ClientHellos: %v counted, %d records with one", v, clientHellos)
	}
	if v := f.sum("outflow_handshakes_total", dirSource, lbl("kind", "tls_server_hello")); v != float64(serverHellos) {
		t.Errorf("TLS ServerHellos: %v counted, %d records with one", v, serverHellos)
	}
	if v := f.sum("outflow_flows_active"); v != 0 {
		t.Errorf("%v flows active after the stop", v)
	}
	// Every record went to the analytics.
	if v := f.sum("outflow_detect_flows_total"); v != float64(len(flowsOut)) {
		t.Errorf("the analytics read %v records of %d", v, len(flowsOut))
	}

	// The outputs, as their files on disk have them.
	for _, p := range []string{r.flowsPath, r.alertsPath} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out := lbl("output", p)
		if v := f.sum("outflow_output_records_total", out); v != float64(len(readLines(t, p))) {
			t.Errorf("%s: %v records delivered, the file has %d", p, v, len(readLines(t, p)))
		}
		if v := f.sum("outflow_output_bytes_total", out); v != float64(fi.Size()) {
			t.Errorf("%s: %v bytes delivered, the file has %d", p, v, fi.Size())
		}
		for _, name := range []string{"outflow_output_dropped_records_total", "outflow_output_errors_total", "outflow_output_pending_bytes"} {
			if v := f.sum(name, out); v != 0 {
				t.Errorf("%s: %s %v", p, name, v)
			}
		}
	}

	// Alerts by analytic and severity, as the alerts file has them.
	alertsOut := readLines(t, r.alertsPath)
	if len(alertsOut) == 0 {
		t.Fatal("the lab raised no alert")
	}
	want := map[string]float64{}
	for _, l := range alertsOut {
		var a struct{ Analytic, Severity string }
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("%s: %v", r.alertsPath, err)
		}
		want["outflow_alerts_total{"+lbl("analytic", a.Analytic)+","+lbl("severity", a.Severity)+"}"]++
	}
	for k, n := range want {
		if v := f.values[k]; v != n {
			t.Errorf("%s = %v, the alerts file has %v", k, v, n)
		}
	}
	if n := f.series("outflow_alerts_total"); n != len(want) {
		t.Errorf("%d alert series, the file has %d analytic and severity pairs", n, len(want))
	}

	// The host events: the file's lines, and the flow ends given a process.
	evLines := readLines(t, labEvents)
	feed := lbl("feed", filepath.Join(r.dir, "events.jsonl"))
	if v := f.sum("outflow_host_event_lines_total", feed); v != float64(len(evLines)) {
		t.Errorf("host-event lines %v, the file has %d", v, len(evLines))
	}
	parsed := f.sum("outflow_host_events_total", feed) + f.sum("outflow_host_events_ignored_total", feed) + f.sum("outflow_host_event_errors_total", feed)
	if parsed != float64(len(evLines)) {
		t.Errorf("host events parsed, ignored and skipped: %v of %d lines", parsed, len(evLines))
	}
	if v := f.sum("outflow_host_event_joins_total", lbl("feed", sensor.JoinHostEvents)); v != float64(joined) || v == 0 {
		t.Errorf("joins %v, the records have %d processes", v, joined)
	}
	for feed, n := range joinedBy {
		if v := f.sum("outflow_host_event_feed_joins_total", lbl("event_feed", feed)); v != float64(n) {
			t.Errorf("joins by %s: %v, the records name it %d times", feed, v, n)
		}
	}

	// The flow listener: what flowbeat decoded of the same datagrams.
	var golden struct{ Events []json.RawMessage }
	readJSON(t, shared.Path(t, pflowGolden), &golden)
	if v := f.sum("outflow_flow_listener_datagrams_total"); v != float64(len(r.datagrams)) {
		t.Errorf("datagrams %v, %d sent", v, len(r.datagrams))
	}
	if v := f.sum("outflow_flow_listener_records_total"); v != float64(len(golden.Events)) {
		t.Errorf("export records %v, flowbeat decoded %d", v, len(golden.Events))
	}
	if v := f.sum("outflow_flow_listener_decode_errors_total") + f.sum("outflow_flow_listener_kernel_drops_total"); v != 0 {
		t.Errorf("%v export datagrams lost or not decoded", v)
	}

	// The capture on lo, filtered to the exports: the kernel counted what
	// reached our sockets, drops included. Loopback shows a socket each
	// datagram twice, as sent and as received (PACKET_OUTGOING and
	// PACKET_HOST): libpcap hides the first copy, AF_PACKET does not.
	lo := lbl("interface", "lo")
	packets, drops, kernel := f.sum("outflow_capture_packets_total", lo), f.sum("outflow_capture_kernel_drops_total", lo),
		f.sum("outflow_capture_kernel_packets_total", lo)
	if packets+drops != kernel {
		t.Errorf("lo: %v packets read and %v dropped, the kernel passed %v", packets, drops, kernel)
	}
	var wire int
	for _, d := range r.datagrams {
		wire += 14 + 20 + 8 + len(d) // Ethernet (lo has a zero one), IPv4, UDP
	}
	if packets != float64(2*len(r.datagrams)) || f.sum("outflow_capture_bytes_total", lo) != float64(2*wire) {
		t.Errorf("lo: %v packets of %v bytes; %d datagrams of %d bytes were sent", packets, f.sum("outflow_capture_bytes_total", lo),
			len(r.datagrams), wire)
	}

	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, f) })
}

// runLab runs the sensor as `outflow run` would, from a run config, and
// scrapes it once the directory's file is done and again after the stop.
func runLab(t *testing.T) *runResult {
	ns := netns(t)
	r := &runResult{dir: t.TempDir()}
	r.watch = filepath.Join(r.dir, "watch")
	r.flowsPath, r.alertsPath = filepath.Join(r.dir, "flows.json"), filepath.Join(r.dir, "alerts.json")
	for _, p := range []string{pflowTemplate, pflowData} {
		b, err := os.ReadFile(shared.Path(t, p))
		if err != nil {
			t.Fatal(err)
		}
		r.datagrams = append(r.datagrams, b)
	}
	if err := os.Mkdir(r.watch, 0o755); err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(r.dir, "events.jsonl")
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := os.Symlink(abs(labEvents), events); err != nil {
		t.Fatal(err)
	}
	lab, err := os.ReadFile(labConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(r.dir, "run.yaml")
	cfg := fmt.Sprintf(`%s
Sources:
  Capture:
    Interfaces: [lo]
    Filter: udp dst port %d
  FlowListeners: ["netflow://127.0.0.1:%d"]
  HostEvents: [%q]
  Directories:
    - Path: %q
      Pattern: "*.pcap"
  Inspect: true
Outputs:
  Flows: [{Path: %q}]
  Alerts: [{Path: %q}]
`, lab, collectorPort, collectorPort, events, r.watch, r.flowsPath, r.alertsPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := sensor.LoadRunConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The outputs, opened as the command opens them.
	open := func(path string) *sink.Lines {
		s := sink.New(sink.Config{Path: path, FlushInterval: 50 * time.Millisecond})
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	flowsSink, alertsSink := open(r.flowsPath), open(r.alertsPath)

	srv, err := metrics.Serve(context.Background(), "127.0.0.1:0", metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	base := "http://" + srv.Addr().String()
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		runErr <- inNetns(ns, func() error {
			_, err := sensor.Run(ctx, rc, sensor.RunOptions{
				FlowOutputs: []sensor.Output{{Format: encode.JSON, Sinks: []sink.Sink{flowsSink}}},
				Detect: &sensor.Detection{Config: rc.Detect,
					AlertOutputs: []sensor.Output{{Format: encode.JSON, Sinks: []sink.Sink{alertsSink}}}},
				Snapshots: func(take func() sensor.Snapshot) {
					srv.Snapshots(take)
					close(ready)
				},
			})
			return err
		})
	}()
	select {
	case <-ready:
	case err := <-runErr:
		t.Fatalf("the sensor did not start: %v", err)
	}
	if c := status(t, base+"/readyz"); c != http.StatusOK {
		t.Errorf("readyz while running: %d", c)
	}
	// The lab's host events are in before its traffic, as in the lab's
	// replay: every connection of the file in the index.
	connects := 0
	for _, l := range readLines(t, labEvents) {
		if strings.Contains(l, `"outflow_event":"connect"`) {
			connects++
		}
	}
	waitFor(t, base, "the host events' connections", func(e exposition) bool {
		return e.sum("outflow_host_event_connects_total") == float64(connects)
	})
	if err := os.Symlink(abs(labPcap), filepath.Join(r.watch, "lab.pcap")); err != nil {
		t.Fatal(err)
	}
	r.middle = waitFor(t, base, "the directory's file", func(e exposition) bool {
		return e.sum("outflow_directory_files_total") == 1
	})

	// Exports, sent from inside the namespace to the listener.
	var conn net.Conn
	if err := inNetns(ns, func() (err error) {
		conn, err = net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", collectorPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.datagrams {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	waitFor(t, base, "the exports, received and captured", func(e exposition) bool {
		return e.sum("outflow_flow_listener_datagrams_total") == float64(len(r.datagrams)) &&
			e.sum("outflow_capture_packets_total")+e.sum("outflow_capture_kernel_drops_total") >= float64(2*len(r.datagrams)) &&
			e.sum("outflow_capture_packets_total")+e.sum("outflow_capture_kernel_drops_total") == e.sum("outflow_capture_kernel_packets_total")
	})

	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("run: %v", err)
	}
	srv.Stopped()
	if err := errors.Join(flowsSink.Stop(), alertsSink.Stop()); err != nil {
		t.Fatal(err)
	}
	if c := status(t, base+"/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("readyz after the stop: %d", c)
	}
	if c := status(t, base+"/healthz"); c != http.StatusOK {
		t.Errorf("healthz after the stop: %d", c)
	}
	r.final = scrape(t, base+"/metrics")
	return r
}

// waitFor scrapes until ok, for at most a minute (the stages publish
// once a second), and returns the scrape that was.
func waitFor(t *testing.T, base, what string, ok func(exposition) bool) exposition {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		e := scrape(t, base+"/metrics")
		if ok(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, still waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readCapture counts a capture's frames and their bytes with gopacket,
// and the frames gopacket cannot decode.
func readCapture(t *testing.T, path string) (frames, bytes, undecodable int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames++
		bytes += len(data)
		if p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default); p.ErrorLayer() != nil {
			undecodable++
		}
	}
	return frames, bytes, undecodable
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
