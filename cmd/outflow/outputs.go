package main

import (
	"errors"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/sensor/sink"
)

// outputs are the sinks one command writes to. One path is one sink, so
// flows and alerts both sent to stdout share it and never interleave
// within a line.
type outputs struct {
	e     *env
	flush time.Duration
	sinks []*sink.Lines
	stopW chan struct{}
	wg    sync.WaitGroup
}

func newOutputs(e *env, flush time.Duration) *outputs {
	return &outputs{e: e, flush: flush}
}

// open starts a sink for a path ("-": stdout).
func (o *outputs) open(path string) (*sink.Lines, error) {
	return o.openWith(sink.Config{Path: path})
}

// openWith starts a sink; its Stdout, FlushInterval and Log are the
// command's.
func (o *outputs) openWith(cfg sink.Config) (*sink.Lines, error) {
	if cfg.Path == "" {
		cfg.Path = "-"
	}
	for _, s := range o.sinks {
		if s.Path() == cfg.Path {
			return s, nil
		}
	}
	cfg.Stdout, cfg.FlushInterval, cfg.Log = o.e.stdout, o.flush, o.e.log
	s := sink.New(cfg)
	if err := s.Start(); err != nil {
		return nil, err
	}
	o.sinks = append(o.sinks, s)
	return s, nil
}

// counts are the outputs' counts, for the statistics lines.
func (o *outputs) counts() []sink.Stats {
	var out []sink.Stats
	for _, s := range o.sinks {
		out = append(out, s.Stats())
	}
	return out
}

// watchHangup reopens every output on SIGHUP (logrotate's postrotate,
// systemctl reload) and then calls reload, until stop.
func (o *outputs) watchHangup(reload func()) {
	o.stopW = make(chan struct{})
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			select {
			case <-o.stopW:
				return
			case <-o.e.hup:
				o.e.log.Info("SIGHUP: reopening outputs and reloading the config")
				for _, s := range o.sinks {
					s.Reopen()
				}
				if reload != nil {
					reload()
				}
			}
		}
	}()
}

// stop flushes and closes every output. Lines a failing output could not
// take are reported, as an error, so the exit status says so.
func (o *outputs) stop() error {
	if o.stopW != nil {
		close(o.stopW)
		o.wg.Wait()
		o.stopW = nil
	}
	var errs []error
	for _, s := range o.sinks {
		if err := s.Stop(); err != nil {
			errs = append(errs, err)
		}
		if st := s.Stats(); st.Dropped > 0 {
			o.e.log.Error("output lost lines", "output", s.Name(), "dropped_lines", st.Dropped, "write_errors", st.Errors)
		}
	}
	o.sinks = nil
	return errors.Join(errs...)
}
