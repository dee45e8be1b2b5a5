//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	outflow         string
	duration, round time.Duration
	budgetMiB       int64
	shared, dir     string
}

// The run's budgets, in the config soak writes.
const (
	maxFlows      = 262144   // Sources.MaxFlows, per source
	indexBytes    = 64 << 20 // HostEventBudget.MaxBytes
	listenerBytes = 64 << 20 // HostEventBudget.ListenerBytes, per TCP listener
	flowState     = 32 << 20 // FlowBudget.TotalBytes
)

type soak struct {
	o                                 options
	cfg, watch, stage, flows, alerts  string
	syslogUDP, syslogTCP, web, nf, mx string // listener addresses
	lab, labEvents                    string
	labRecords, labJoins              int
	ipfix                             [][]byte
	ipfixRecords                      int
	cmd                               *exec.Cmd
	exited                            chan error
	log                               *os.File
	mu                                sync.Mutex
	rounds                            int
	peakKiB, lastRSSKiB               int64
	floods                            *floodCounts
	retries                           atomic.Int64 // real posts sent again
	heapBudget, offHeapBudget         int64        // bytes, from the sensor's log
	phase                             string       // floods, draining, stopping (memory.tsv)
}

func newSoak(o options) (*soak, error) {
	s := &soak{o: o, lab: "pcaps/outflow-detect.pcap", labEvents: "pcaps/outflow-detect.events.jsonl", floods: &floodCounts{}}
	for _, p := range []string{s.lab, s.labEvents, "pcaps/detect-lab.yaml"} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: run soak from the module's root", p)
		}
	}
	s.watch, s.stage = filepath.Join(o.dir, "watch"), filepath.Join(o.dir, "stage")
	s.flows, s.alerts = filepath.Join(o.dir, "flows.jsonl"), filepath.Join(o.dir, "alerts.jsonl")
	for _, d := range []string{s.watch, s.stage} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var err error
	if s.ipfix, s.ipfixRecords, err = realIPFIX(o.shared); err != nil {
		return nil, err
	}
	if s.labRecords, s.labJoins, err = s.measureLab(); err != nil {
		return nil, err
	}
	tcp := func() string { return freePort("tcp") }
	s.syslogUDP, s.syslogTCP, s.web, s.nf, s.mx = freePort("udp"), tcp(), tcp(), freePort("udp"), tcp()
	lab, err := os.ReadFile("pcaps/detect-lab.yaml")
	if err != nil {
		return nil, err
	}
	s.cfg = filepath.Join(o.dir, "outflow.yaml")
	cfg := fmt.Sprintf(`Sources:
  Directories: [{Path: %s, Pattern: "*", Settle: 300ms}]
  HostEvents: ["syslog+udp://%s", "syslog+tcp://%s", "http://%s/events"]
  FlowListeners: ["netflow://%s"]
  MaxFlows: %d
  HostEventBudget: {MaxBytes: %d, ListenerBytes: %d}
  FlowBudget: {TotalBytes: %d}
Outputs:
  Flows: [{Path: %s}]
  Alerts: [{Path: %s}]
  FlushInterval: 1s
Logging: {Level: info, Format: json, StatsInterval: 10s}
State: {Path: %s}
Metrics: {Listen: "%s", Pprof: true}
%s`, s.watch, s.syslogUDP, s.syslogTCP, s.web, s.nf, maxFlows, indexBytes, listenerBytes, flowState,
		s.flows, s.alerts, filepath.Join(o.dir, "state"), s.mx, lab)
	return s, os.WriteFile(s.cfg, []byte(cfg), 0o644)
}

// budget is the resident memory the sensor may reach, in KiB: the budget
// it logs at start (the sum of its stores' budgets, which it makes the Go
// runtime's soft limit, and fastcache's chunks off the heap), plus a
// tenth for what the limit does not hold to the byte (stacks, the
// runtime's own metadata, a collection that overruns) and 32 MiB for
// capture files mapped while they are read. -budget overrides it.
func (s *soak) budget() int64 {
	if s.o.budgetMiB > 0 {
		return s.o.budgetMiB << 10
	}
	return (s.heapBudget+s.offHeapBudget)*11/10>>10 + 32<<10
}

// readBudget takes the memory budget from the sensor's log.
func (s *soak) readBudget() error {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return err
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		var r struct {
			Msg     string `json:"msg"`
			Heap    int64  `json:"heap_bytes"`
			OffHeap int64  `json:"off_heap_bytes"`
		}
		if json.Unmarshal(l, &r) == nil && strings.HasPrefix(r.Msg, "memory budget") {
			s.heapBudget, s.offHeapBudget = r.Heap, r.OffHeap
			fmt.Printf("soak: the sensor's memory budget: %d MiB on the heap, %d MiB off it\n", r.Heap>>20, r.OffHeap>>20)
			return nil
		}
	}
	return fmt.Errorf("the sensor logged no memory budget (see %s)", s.log.Name())
}

// measureLab replays the lab capture with its host events once, alone:
// its flow records and the flow ends given a process are what every round
// must bring.
func (s *soak) measureLab() (records, joins int, err error) {
	out := filepath.Join(s.o.dir, "lab-reference.jsonl")
	cmd := exec.Command(s.o.outflow, "replay", "--host-events", s.labEvents, "--flows", out, s.lab)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("outflow replay of the lab: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return 0, 0, err
	}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		records++
		joins += bytes.Count(l, []byte(`"orig_process"`)) + bytes.Count(l, []byte(`"resp_process"`))
	}
	return records, joins, nil
}

// freePort is a loopback address with a port the kernel had free.
func freePort(network string) string {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *soak) start() error {
	var err error
	if s.log, err = os.Create(filepath.Join(s.o.dir, "outflow.log")); err != nil {
		return err
	}
	s.cmd = exec.Command(s.o.outflow, "run", "--config", s.cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if m, err := scrape(s.mx); err == nil && m.ready {
			return nil
		}
		select {
		case err := <-s.exited:
			return fmt.Errorf("outflow run exited at start: %v (see %s)", err, s.log.Name())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("outflow run was not ready after a minute (see %s)", s.log.Name())
		}
	}
}

// watchMemory samples the sensor's resident memory and keeps the kernel's
// high-water mark until the process ends.
func (s *soak) watchMemory(ctx context.Context) {
	pid := s.cmd.Process.Pid
	trace, _ := os.Create(filepath.Join(s.o.dir, "memory.tsv"))
	if trace != nil {
		defer trace.Close()
		fmt.Fprintln(trace, "time\tphase\trss_kib\thwm_kib")
	}
	for {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			s.mu.Lock()
			for _, l := range strings.Split(string(b), "\n") {
				f := strings.Fields(l)
				if len(f) < 2 {
					continue
				}
				v, _ := strconv.ParseInt(f[1], 10, 64)
				switch f[0] {
				case "VmHWM:":
					s.peakKiB = max(s.peakKiB, v)
				case "VmRSS:":
					s.lastRSSKiB = v
				}
			}
			if trace != nil {
				fmt.Fprintf(trace, "%s\t%s\t%d\t%d\n", time.Now().UTC().Format(time.RFC3339Nano), s.phase, s.lastRSSKiB, s.peakKiB)
			}
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// round sends one round of real traffic: the lab's host events, its
// capture into the watched directory, the real exporter's IPFIX.
func (s *soak) round() error {
	s.mu.Lock()
	s.rounds++
	n := s.rounds
	s.mu.Unlock()
	// As an agent would, the events are sent again when the listener
	// refused them (a connection closed under the flood); each retry is
	// counted and reported.
	var err error
	for try := 0; try < 5; try++ {
		if err = s.postFile(s.labEvents); err == nil {
			break
		}
		s.retries.Add(1)
		time.Sleep(time.Second)
	}
	if err != nil {
		return fmt.Errorf("posting the lab's host events: %v", err)
	}
	if err := s.drop(s.lab, fmt.Sprintf("lab-%04d.pcap", n)); err != nil {
		return err
	}
	return sendFrom("127.0.2.1", s.nf, s.ipfix)
}

// postFile posts a file to the HTTP listener, and wants its 200.
func (s *soak) postFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := http.Post("http://"+s.web+"/events", "application/x-ndjson", f)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// drop copies a capture into the watched directory whole: written beside
// it, then renamed in.
func (s *soak) drop(src, name string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return s.dropBytes(b, name)
}

func (s *soak) dropBytes(b []byte, name string) error {
	tmp := filepath.Join(s.stage, name)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.watch, name))
}

// sendFrom sends datagrams to addr from a local address of ours.
func sendFrom(local, addr string, dgs [][]byte) error {
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)}, mustUDP(addr))
	if err != nil {
		return err
	}
	defer c.Close()
	for _, d := range dgs {
		if _, err := c.Write(d); err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // an exporter's pace, not a flood's
	}
	return nil
}

func mustUDP(addr string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		panic(err)
	}
	return a
}

func (s *soak) run(stop chan os.Signal) bool {
	raiseFileLimit()
	fmt.Printf("soak: %s for %v; one lab round is %d flow records and %d process joins, the real exporter %d IPFIX records\n",
		s.o.outflow, s.o.duration, s.labRecords, s.labJoins, s.ipfixRecords)
	if err := s.start(); err != nil {
		fmt.Println("soak:", err)
		return false
	}
	if err := s.readBudget(); err != nil {
		fmt.Println("soak:", err)
		return false
	}
	before, err := scrape(s.mx)
	if err != nil {
		fmt.Println("soak:", err)
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.setPhase("floods")
	go s.watchMemory(ctx)
	floodCtx, stopFloods := context.WithTimeout(ctx, s.o.duration)
	defer stopFloods()
	var wg sync.WaitGroup
	s.startFloods(floodCtx, &wg)
	ok := true
	tick := time.NewTicker(s.o.round)
	defer tick.Stop()
	status := time.NewTicker(time.Minute)
	defer status.Stop()
	began := time.Now()
loop:
	for {
		if err := s.round(); err != nil {
			fmt.Println("soak: real traffic:", err)
			ok = false
		}
		select {
		case <-tick.C:
		case <-status.C:
			s.printStatus(began)
		case <-floodCtx.Done():
			break loop
		case <-stop:
			fmt.Println("soak: interrupted")
			stopFloods()
			break loop
		case err := <-s.exited:
			fmt.Printf("soak: outflow run died: %v (see %s)\n", err, s.log.Name())
			return false
		}
	}
	wg.Wait()
	fmt.Println("soak: the floods are over; waiting for the sensor to read what it was sent")
	s.setPhase("draining")
	after := s.quiesce(before)
	s.setPhase("stopping")
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			fmt.Printf("soak: outflow run exited with %v on SIGTERM (see %s)\n", err, s.log.Name())
			ok = false
		}
	case <-time.After(2 * time.Minute):
		fmt.Println("soak: outflow run did not exit within 2 minutes of SIGTERM")
		s.cmd.Process.Kill()
		ok = false
	}
	cancel()
	return s.report(before, after, began) && ok
}

func (s *soak) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// quiesce waits until every lab round's file is read and the counts stop
// moving, and returns the metrics then.
func (s *soak) quiesce(before *metrics) *metrics {
	var last *metrics
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		m, err := scrape(s.mx)
		if err != nil {
			continue
		}
		if last != nil && m.same(last) && m.filesRead() >= float64(s.rounds)+before.filesRead() {
			return m
		}
		last = m
	}
	return last
}

func (s *soak) printStatus(began time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Printf("soak: %v: %d rounds, RSS %d MiB (peak %d MiB of a %d MiB budget); %s\n", time.Since(began).Round(time.Second),
		s.rounds, s.lastRSSKiB>>10, s.peakKiB>>10, s.budget()>>10, s.floods)
}

// report prints the counts and checks them; false when a check failed.
func (s *soak) report(before, after *metrics, began time.Time) bool {
	ok := true
	fail := func(format string, a ...any) {
		fmt.Printf("soak: FAIL: "+format+"\n", a...)
		ok = false
	}
	if after == nil {
		fail("the sensor's metrics could not be read at the end")
		return false
	}
	d := func(name string, labels ...string) float64 {
		return after.sum(name, labels...) - before.sum(name, labels...)
	}
	fmt.Printf("soak: %v, %d rounds of real traffic; floods: %s\n", time.Since(began).Round(time.Second), s.rounds, s.floods)
	fmt.Printf("soak: peak resident memory %d MiB (VmHWM), budget %d MiB; the lab's host events were posted again %d times\n",
		s.peakKiB>>10, s.budget()>>10, s.retries.Load())
	for _, c := range after.counters("outflow_host_event_errors_total", "outflow_host_event_index_dropped_total",
		"outflow_flow_listener_decode_errors_total", "outflow_flow_listener_exporters_forgotten_total",
		"outflow_flow_listener_kernel_drops_total", "outflow_inspection_abandoned_total", "outflow_flows_evicted_total",
		"outflow_directory_file_errors_total", "outflow_decode_errors_total") {
		fmt.Printf("soak:   %s\n", c)
	}
	if s.peakKiB > s.budget() {
		fail("peak resident memory %d MiB passed the budget of %d MiB", s.peakKiB>>10, s.budget()>>10)
	}
	labFlows, err := countLab(s.flows, filepath.Join(s.o.dir, "lab-reference.jsonl"))
	if err != nil {
		fail("reading %s: %v", s.flows, err)
	}
	if want := s.rounds * s.labRecords; labFlows != want {
		fail("the flows file has %d of the lab's records, want %d (%d rounds of %d)", labFlows, want, s.rounds, s.labRecords)
	} else {
		fmt.Printf("soak: ok: all %d of the lab's flow records were written\n", labFlows)
	}
	joins := d("outflow_host_event_joins_total", "feed", "host-events")
	if want := float64(s.rounds * s.labJoins); joins != want {
		fail("%v flow ends were given their process, want %v (%d rounds of %d)", joins, want, s.rounds, s.labJoins)
	} else {
		fmt.Printf("soak: ok: all %v of the lab's flow ends were given their process\n", joins)
	}
	ipfix := d("outflow_flow_listener_records_total")
	if want := float64(s.rounds * s.ipfixRecords); ipfix != want {
		fail("the flow listener decoded %v export records, want the real exporter's %v (%d rounds of %d)", ipfix, want, s.rounds, s.ipfixRecords)
	} else {
		fmt.Printf("soak: ok: all %v of the real exporter's records were decoded\n", ipfix)
	}
	return ok
}

// countLab counts the flow records of the lab's capture in the flows
// file: those whose Community ID is one of the lab's, read from a capture
// (not decoded from an export).
func countLab(path, reference string) (int, error) {
	lab := map[string]bool{}
	if err := eachRecord(reference, func(r *labRecord) { lab[r.CommunityID] = true }); err != nil {
		return 0, err
	}
	n := 0
	err := eachRecord(path, func(r *labRecord) {
		if r.Exporter == nil && lab[r.CommunityID] {
			n++
		}
	})
	return n, err
}

type labRecord struct {
	CommunityID string          `json:"community_id"`
	Exporter    json.RawMessage `json:"exporter"`
}

func eachRecord(path string, f func(*labRecord)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r labRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			f(&r)
		}
	}
	return sc.Err()
}

// raiseFileLimit lets the soak hold its thousands of idle connections.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
