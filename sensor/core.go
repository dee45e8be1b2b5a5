package sensor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/dnscache"
	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/enrich/procfs"
	"github.com/outflow-sensor/outflow/internal/bugreport"
	"github.com/outflow-sensor/outflow/record"
)

// coreConfig says what the stages after the sources are: where records
// go, and what enriches and judges them.
type coreConfig struct {
	// Flows receives JSON lines (a test, a pipe); FlowOutputs are the
	// configured outputs, each in its format.
	Flows       io.Writer
	FlowOutputs []Output
	Log         *slog.Logger
	Inspect     bool // payload inspection is on: DNS answers name flows
	Detect      *Detection
	// HostEventFiles are read whole before any traffic (a lab replay);
	// HostEventSources are followed while the sensor runs.
	HostEventFiles   []string
	HostEventSources []string
	// HostEventIndex is the process index's config, its byte budget
	// (zero: the defaults).
	HostEventIndex process.Config
	// HostEventListenerBytes bounds each host-event listener's records in
	// progress (feed.Source.PendingBytes; zero: the default).
	HostEventListenerBytes int64
	// OnHost attributes flows from /proc (ProcRoot, default /proc), and
	// writes what it found as host events to HostEventsOut when set.
	OnHost        bool
	ProcRoot      string
	HostEventsOut io.Writer
	// Records sees every record before it is encoded (ReplayConfig.Records).
	Records func(*record.Flow)
	// BugReports keeps the inputs that reached a bug (nil: their first
	// bytes are logged).
	BugReports *bugreport.Dir
}

// core is the stages every source of one sensor feeds, whatever the
// source: the flow output, the names from DNS answers, the processes (host
// events, /proc) and the analytics. A sensor has one; each source runs
// its own workers and record stages on top of it. New starts them; close
// stops them in reverse, after every source has stopped.
type core struct {
	outs    []Output
	out     *lineWriter // Flows, when given
	names   *dnscache.Cache
	det     *detector
	joiner  joiner // nil when nothing attributes processes
	log     *slog.Logger
	index   *process.Index
	watcher *procfs.Watcher
	bugs    *bugreport.Dir
	// bugCount counts every input that reached a bug, whatever the
	// source or stage (Snapshot.Bugs).
	bugCount atomic.Uint64

	records        func(*record.Flow)
	hostFiles      *HostEventStats // counts of HostEventFiles
	stopHostEvents func() *HostEventStats
	liveHostEvents func() []HostEventFile // the followed sources' counts so far
	stopWatcher    func()
}

// newCore starts the shared stages. Host-event files are read before it
// returns; sources are followed until close.
func newCore(ctx context.Context, cfg coreConfig) (*core, error) {
	if cfg.Log == nil {
		cfg.Log = logger(nil, nil)
	}
	// Bad input is logged a few times per kind and minute, then counted.
	log := slog.New(newLimitedHandler(cfg.Log.Handler(), problemBurst, time.Minute))
	sh := &core{log: log, records: cfg.Records, bugs: cfg.BugReports}
	sh.outs, sh.out = outputsOf(cfg.Flows, cfg.FlowOutputs)
	if cfg.Inspect {
		sh.names = dnscache.New(dnscache.DefaultConfig())
	}
	if cfg.Detect != nil {
		if cfg.Detect.StatePath != "" {
			// A state that a save would destroy is refused now, not
			// found out at the first save.
			if err := detect.CheckStatePath(cfg.Detect.StatePath); err != nil {
				return nil, err
			}
		}
		det, err := startDetection(cfg.Detect, log, sh.bug)
		if err != nil {
			return nil, err
		}
		sh.det = det
	}
	// Records name the ancestors of each flow's process as far as the
	// analytics look along them (detect's LineageDepth), and no less than
	// the index's default.
	depth := process.DefaultLineageDepth
	if cfg.Detect != nil && cfg.Detect.Config != nil {
		depth = max(depth, cfg.Detect.Config.LineageDepth)
	}
	if cfg.HostEventIndex.LineageDepth == 0 {
		cfg.HostEventIndex.LineageDepth = depth
	}
	var js joiners
	if cfg.OnHost {
		root := cfg.ProcRoot
		if root == "" {
			root = "/proc"
		}
		sh.watcher = procfs.NewWatcher(root, 2*time.Minute)
		sh.watcher.LineageDepth = depth
		if cfg.HostEventsOut != nil {
			lw := &lineWriter{w: cfg.HostEventsOut}
			var buf []byte
			sh.watcher.OnEvents = func(evs []feed.Event) {
				buf = buf[:0]
				for i := range evs {
					buf = feed.AppendRecord(buf, &evs[i])
				}
				lw.write(buf)
			}
		}
		wctx, stop := context.WithCancel(context.Background())
		sh.stopWatcher = stop
		go sh.watcher.Run(wctx)
		js = append(js, sh.watcher)
	}
	if len(cfg.HostEventFiles) > 0 {
		ix, st, err := loadHostEvents(cfg.HostEventFiles, log, sh.bug, sh.det, cfg.HostEventIndex)
		if err != nil {
			sh.close()
			return nil, err
		}
		sh.index, sh.hostFiles = ix, st
		js = append(js, ix)
	}
	if len(cfg.HostEventSources) > 0 {
		// Files are followed, listeners listen, for as long as the
		// sensor runs.
		ix, stop, live, err := startHostEvents(ctx, cfg.HostEventSources, log, sh.bug, sh.det, cfg.HostEventIndex, cfg.HostEventListenerBytes)
		if err != nil {
			sh.close()
			return nil, err
		}
		sh.stopHostEvents, sh.liveHostEvents = stop, live
		js = append(js, ix)
	}
	if len(js) > 0 {
		sh.joiner = js
	}
	return sh, nil
}

// stage returns a record stage writing into the core: one per goroutine
// that makes records.
func (sh *core) stage() recordStage {
	return recordStage{procs: sh.joiner, det: sh.det, outs: encoders(sh.outs), tap: sh.records}
}

// logger is the logger a stage was given, else a text logger on errs
// (nil: nothing is logged). Problems with input are warnings naming the
// source and offset; the sensor goes on.
func logger(log *slog.Logger, errs io.Writer) *slog.Logger {
	switch {
	case log != nil:
		return log
	case errs == nil:
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(errs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // tests and tools read these lines; the time says nothing there
		}
		return a
	}}))
}

// coreStats is what the shared stages counted, at close.
type coreStats struct {
	HostEvents *HostEventStats
	OnHost     *procfs.Stats
	Detect     *DetectStats
}

// close stops the shared stages, the sources having stopped: host events,
// /proc, then the analytics (the last day ends, the state is saved). It
// returns an error when the state could not be saved or an output failed.
func (sh *core) close() (coreStats, error) {
	var st coreStats
	var errs []error
	switch {
	case sh.stopHostEvents != nil:
		st.HostEvents = sh.stopHostEvents()
	case sh.hostFiles != nil:
		sh.hostFiles.Index = sh.index.Stats
		st.HostEvents = sh.hostFiles
	}
	if sh.watcher != nil {
		sh.stopWatcher()
		ws := sh.watcher.Snapshot()
		st.OnHost = &ws
	}
	if sh.det != nil {
		ds, err := sh.det.close()
		st.Detect = &ds
		errs = append(errs, err)
		if sh.det.out != nil {
			errs = append(errs, sh.det.out.err)
		}
	}
	if sh.out != nil {
		errs = append(errs, sh.out.err)
	}
	return st, errors.Join(errs...)
}
