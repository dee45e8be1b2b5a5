package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
)

// HostEventStats is what reading the host-event files counted.
type HostEventStats struct {
	Files  []HostEventFile
	Index  process.Stats
	Errors uint64 // skipped records, all files
}

// HostEventFile is one file's counts.
type HostEventFile struct {
	Path  string
	Stats feed.Stats
}

// newIndex returns a process index and what feeds it: the index, and the
// analytics that read host events themselves when detection runs.
func newIndex(det *detector, cfg process.Config) (*process.Index, func(*feed.Event)) {
	if cfg.MaxBytes == 0 {
		cfg = process.DefaultConfig()
	}
	ix := process.New(cfg)
	if det == nil {
		return ix, ix.Add
	}
	det.eng.UseEvents(ix)
	return ix, func(e *feed.Event) {
		ix.Add(e)
		det.eng.Event(e)
	}
}

// loadHostEvents reads host-event logs into a process index. A broken
// record is reported on errs with its file and offset and skipped; a file
// that cannot be opened is an error.
func loadHostEvents(paths []string, log *slog.Logger, bug bugFunc, det *detector, cfg process.Config) (*process.Index, *HostEventStats, error) {
	ix, add := newIndex(det, cfg)
	st := &HostEventStats{}
	for _, p := range paths {
		fs, err := feed.ReadFile(p, add, hostEventError(log, bug))
		if err != nil {
			return nil, nil, fmt.Errorf("--host-events: %w", err)
		}
		st.Files = append(st.Files, HostEventFile{Path: p, Stats: fs})
		for _, n := range fs.Errors {
			st.Errors += n
		}
	}
	return ix, st, nil
}

// joiner attributes flows to processes: host-event feeds (process.Index),
// or /proc on the host itself (procfs.Watcher).
type joiner interface {
	Join(process.Flow) (orig, resp *process.Attribution)
}

// joiners tries each in turn for each end.
type joiners []joiner

func (js joiners) Join(f process.Flow) (orig, resp *process.Attribution) {
	for _, j := range js {
		o, r := j.Join(f)
		if orig == nil {
			orig = o
		}
		if resp == nil {
			resp = r
		}
	}
	return orig, resp
}

// hostEventError logs a host-event record that could not be used; one a
// parser panicked on is a bug, reported with the record.
func hostEventError(log *slog.Logger, bug bugFunc) func(*feed.Error) {
	return func(e *feed.Error) {
		if e.Reason == feed.ReasonPanic {
			bug(fmt.Sprintf("host events %s at offset %d", e.Source, e.Offset), e.Err, e.Stack, e.Input, nil)
			return
		}
		log.Warn("host events: "+e.Error(), problemKey, "host_event_record")
	}
}

// startHostEvents starts a source for each spec (files followed, syslog,
// HTTP, Kafka) feeding one index, and returns it with a function that
// stops the sources and returns their counts. Each listener holds at most
// listenerBytes of records in progress (zero: feed's default). A listener
// that cannot listen (a port in use, a certificate that does not load) is
// an error of the start, as a flow listener's is: every source is stopped
// and the error returned.
func startHostEvents(ctx context.Context, specs []string, log *slog.Logger, bug bugFunc, det *detector, cfg process.Config, listenerBytes int64) (*process.Index, func() *HostEventStats, func() []HostEventFile, error) {
	ix, add := newIndex(det, cfg)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var srcs []*feed.Source
	// A listener is bound, or has failed, before this returns: a sensor
	// that gives root up once its sources are open (RunOptions.Opened)
	// must not leave one to bind a privileged port after.
	var bound sync.WaitGroup
	var mu sync.Mutex
	var failed []error // listeners that ended before they listened
	for _, spec := range specs {
		var once sync.Once // bound.Done, by Ready or by the end of Run
		bound.Add(1)
		src := &feed.Source{URL: spec, PendingBytes: listenerBytes, Ready: func(a net.Addr) {
			log.Info("host events: listening", "address", a.String(), "source", spec)
			once.Do(bound.Done)
		}}
		if l, _ := feed.Listens(spec); !l {
			once.Do(bound.Done)
		}
		srcs = append(srcs, src)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := src.Run(ctx, add, hostEventError(log, bug))
			started := true
			once.Do(func() {
				started = false
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
				bound.Done()
			})
			if err != nil && started {
				log.Error("host events: the source stopped", "source", src.URL, "err", err.Error())
			}
		}()
	}
	bound.Wait()
	if len(failed) > 0 {
		cancel()
		wg.Wait()
		return nil, nil, nil, errors.Join(failed...)
	}
	live := func() []HostEventFile {
		var out []HostEventFile
		for _, s := range srcs {
			out = append(out, HostEventFile{Path: s.URL, Stats: s.Stats()})
		}
		return out
	}
	return ix, func() *HostEventStats {
		cancel()
		wg.Wait()
		st := &HostEventStats{Index: ix.Snapshot()}
		for _, s := range srcs {
			fs := s.Stats()
			st.Files = append(st.Files, HostEventFile{Path: s.URL, Stats: fs})
			for _, n := range fs.Errors {
				st.Errors += n
			}
		}
		return st
	}, live, nil
}
