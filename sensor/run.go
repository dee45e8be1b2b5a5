package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/enrich/procfs"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/bugreport"
	"github.com/outflow-sensor/outflow/internal/fserr"
	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// RunOptions are what the caller adds to a run config: the outputs it
// opened and the detection it built from the config.
type RunOptions struct {
	// Flows receives JSON lines (a test, a pipe); FlowOutputs are the
	// configured outputs, each in its format.
	Flows         io.Writer
	FlowOutputs   []Output
	HostEventsOut io.Writer
	Detect        *Detection
	// Records, when set, sees every record before it is encoded, as
	// ReplayConfig.Records does (a report of a watched directory).
	Records func(f *record.Flow)
	// Log receives a warning per bad file, record or datagram, notices,
	// and the statistics lines, every Logging.StatsInterval.
	Log *slog.Logger
	// Opened, when set, is called once every source is open (the capture
	// sockets, the flow and host-event listeners) and before any runs or
	// Ready is called: the moment a sensor started as root gives root up.
	// An error stops the start, as a source that cannot open does.
	Opened func() error
	// Ready, when set, is called once every source is open.
	Ready func()
	// Listening, when set, is called with the flow listeners' addresses
	// once they are bound.
	Listening func([]net.Addr)
	// Outputs, when set, adds the outputs' own counts to the statistics
	// lines and snapshots; the FlowOutputs' and the Detect.AlertOutputs'
	// sinks are counted without it. An output is counted once by name.
	Outputs func() []sink.Stats
	// Snapshots, when set, is called once every source is open (after
	// Ready) with a function that takes a Snapshot of what the run has
	// counted. take may be called from any goroutine, any number of
	// times, during the run and after Run has returned: then it returns
	// the final counts, with Stopped set (the outputs' counts are still
	// read afresh, so an output flushed after the run is counted). A
	// metrics server (sensor/metrics) serves it.
	Snapshots func(take func() Snapshot)
}

// RunStats is what a run counted, per source.
type RunStats struct {
	Capture     *LiveStats   // nil without Sources.Capture
	Collect     *ExportStats // nil without Sources.FlowListeners
	Directories []DirectoryStats
	HostEvents  *HostEventStats
	OnHost      *procfs.Stats
	Detect      *DetectStats
}

// Run is one sensor built from a run config: every source it names feeds
// one core (names, processes, analytics, flow output) until ctx ends; then
// the sources stop, each ending its open flows and writing their records,
// and the core stops after them.
func Run(ctx context.Context, rc *RunConfig, o RunOptions) (RunStats, error) {
	o.Log = logger(o.Log, nil)
	src := &rc.Sources
	var bugs *bugreport.Dir
	if d := rc.Logging.BugReports; d != "" {
		var err error
		if bugs, err = bugreport.Open(d, 0); err != nil {
			return RunStats{}, fmt.Errorf("Logging.BugReports: %w", fserr.Plain(err))
		}
	}
	sh, err := newCore(ctx, coreConfig{BugReports: bugs, Flows: o.Flows, FlowOutputs: o.FlowOutputs, Log: o.Log, Inspect: src.Inspect, Detect: o.Detect,
		HostEventSources: src.HostEvents, HostEventIndex: src.HostEventBudget.IndexConfig(), HostEventListenerBytes: int64(min(uint64(src.HostEventBudget.ListenerBytes), 1<<62)), OnHost: src.Capture.OnHost, HostEventsOut: o.HostEventsOut, Records: o.Records})
	if err != nil {
		return RunStats{}, err
	}
	table := flows.DefaultConfig()
	if src.MaxFlows > 0 {
		table.Capacity = src.MaxFlows
	}
	if src.Inspect {
		table.Inspect = flows.DefaultInspectConfig()
	}
	home := rc.Detect.HomePrefixes()
	r := &running{sh: sh}
	// Every source is opened before any runs: a listener that cannot bind
	// or an interface that does not exist stops the start, with nothing
	// half running.
	if len(src.Capture.Interfaces) > 0 {
		r.live, err = openLive(LiveConfig{Interfaces: src.Capture.Interfaces, Workers: src.Capture.Workers,
			Filter: src.Capture.Filter, OnHost: src.Capture.OnHost, HomeNets: home, CommunityIDSeed: src.CommunityIDSeed,
			Table: table}, sh)
	}
	if err == nil && len(src.FlowListeners) > 0 {
		dc := src.FlowBudget.DecoderConfig(src.SamplingRate)
		r.coll, err = openCollect(CollectConfig{Listen: src.FlowListeners, HomeNets: home, CommunityIDSeed: src.CommunityIDSeed,
			Window: src.StitchWindow.D(), Decoder: dc, Ready: o.Listening}, sh)
	}
	for i := 0; err == nil && i < len(src.Directories); i++ {
		var d *dirSource
		d, err = openDirectory(src.Directories[i], tableConfig{table, 1, home, src.CommunityIDSeed}, sh)
		r.dirs = append(r.dirs, d)
	}
	if err == nil && o.Opened != nil {
		err = o.Opened()
	}
	if err != nil {
		r.abandon()
		_, cerr := sh.close()
		return RunStats{}, errors.Join(err, cerr)
	}
	if o.Ready != nil {
		o.Ready()
	}
	if o.Snapshots != nil {
		o.Snapshots(func() Snapshot { return r.snapshot(o) })
	}
	statsDone := make(chan struct{})
	statsCtx, stopStats := context.WithCancel(ctx)
	go func() {
		defer close(statsDone)
		r.report(statsCtx, rc.Logging.StatsInterval.D(), o)
	}()
	st := r.run(ctx)
	stopStats()
	<-statsDone
	ss, err := sh.close()
	st.HostEvents, st.OnHost, st.Detect = ss.HostEvents, ss.OnHost, ss.Detect
	r.mu.Lock()
	r.final = &ss
	r.mu.Unlock()
	r.logStats(o) // the last statistics line, at exit
	return st, err
}

// running are a run's open sources.
type running struct {
	sh   *core
	live *liveSource
	coll *collectSource
	dirs []*dirSource
	// collected is set when the collector has stopped; final when the
	// core has.
	collected *ExportStats
	final     *coreStats
	mu        sync.Mutex
}

// abandon closes what was opened when another source failed to open.
func (r *running) abandon() {
	if r.live != nil {
		r.live.closeSockets()
		for _, w := range r.live.ws {
			w.close()
		}
	}
	if r.coll != nil {
		closeAll(r.coll.conns)
	}
}

// run runs every source until ctx ends and all have stopped.
func (r *running) run(ctx context.Context) RunStats {
	var st RunStats
	var wg sync.WaitGroup
	if r.live != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.live.run(ctx)
		}()
	}
	if r.coll != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es := r.coll.run(ctx)
			r.mu.Lock()
			r.collected = &es
			r.mu.Unlock()
		}()
	}
	for _, d := range r.dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.run(ctx)
		}()
	}
	wg.Wait()
	if r.live != nil {
		ls := r.live.close()
		st.Capture = &ls
	}
	st.Collect = r.collected
	for _, d := range r.dirs {
		st.Directories = append(st.Directories, d.stats())
	}
	return st
}

// report logs a statistics line per source every interval (0: never).
func (r *running) report(ctx context.Context, every time.Duration, o RunOptions) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.logStats(o)
		}
	}
}

// logStats logs one line per source, one for the analytics and one per
// output, from a snapshot.
func (r *running) logStats(o RunOptions) {
	s := r.snapshot(o)
	if c := s.Capture; c != nil {
		var frames, kpackets, kdrops uint64
		for _, i := range c.Interfaces {
			frames += i.Packets
			kpackets += i.KernelPackets
			kdrops += i.KernelDrops
		}
		o.Log.Info("statistics", "source", "capture", "frames", frames, "kernel_packets", kpackets, "kernel_drops", kdrops,
			"decode_errors", sumCounts(c.DecodeErrors[:]), "flows_active", c.FlowsActive, "records", c.Records, "evicted", c.Evicted)
	}
	if c := s.FlowListeners; c != nil {
		o.Log.Info("statistics", "source", "flow-listeners", "datagrams", c.Datagrams, "records", c.Records,
			"flows", c.Flows, "decode_errors", sumCounts(c.DecodeErrors[:]), "kernel_drops", c.KernelDrops, "not_allowed", c.NotAllowed,
			"template_bytes", c.Budget.TemplateBytes, "held_bytes", c.Budget.HeldBytes, "exporters_expired", c.Budget.ExpiredIdle)
	}
	for _, d := range s.Directories {
		o.Log.Info("statistics", "source", "directory", "path", d.Path, "files", d.Files, "file_errors", d.FileErrors,
			"frames", d.Packets, "records", d.Records)
	}
	if d := s.Detect; d != nil {
		o.Log.Info("statistics", "source", "detection", "flows", d.Flows, "saas_events", d.Events, "dns_messages", d.DNSMessages,
			"dns_keys_dropped", d.DNSKeysDropped, "alerts", d.Alerts, "suppressed", d.Suppressed, "queue_depth", d.QueueDepth,
			"queue_blocked", d.QueueBlocked)
	}
	for _, st := range s.Outputs {
		attrs := []any{"source", "output", "output", st.Name, "lines", st.Lines, "dropped", st.Dropped,
			"errors", st.Errors, "pending_bytes", st.Pending, "rotations", st.Rotations}
		if st.Retries+st.Rejected > 0 || st.Queued+st.Spooled > 0 || st.SpoolBytes > 0 {
			// A receiver's: what waits, in memory and on disk.
			attrs = append(attrs, "queued", st.Queued, "retries", st.Retries, "rejected", st.Rejected,
				"spooled", st.Spooled, "spool_bytes", st.SpoolBytes)
		}
		o.Log.Info("statistics", attrs...)
	}
}

func sumCounts(ns []uint64) uint64 {
	var t uint64
	for _, n := range ns {
		t += n
	}
	return t
}
