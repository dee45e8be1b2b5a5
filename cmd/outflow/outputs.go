package main

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/destination"
	"github.com/outflow-sensor/outflow/sensor/encode"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// outputs are the sinks one command writes to. One file is one sink, so
// flows and alerts both sent to stdout share it and never interleave
// within a line.
type outputs struct {
	e        *env
	flush    time.Duration
	spool    string // the spool directory for alerts to receivers
	spoolMax int64
	queueMax int // bytes of records waiting in memory per receiver (0: the default)
	sinks    []sink.Sink
	formats  map[string]encode.Format // by file, the format it was opened in
	stopW    chan struct{}
	wg       sync.WaitGroup
}

func newOutputs(e *env, flush time.Duration) *outputs {
	return &outputs{e: e, flush: flush, formats: map[string]encode.Format{}}
}

// target is one place records go, as the user gave it.
type target struct {
	To         string // a file, - (stdout), or a receiver's URL
	Format     encode.Format
	RotateSize int64
	RotateAge  time.Duration
	Keep       int
}

// open starts a JSON-lines file sink for a path ("-": stdout), for what is
// not records of a format (host events).
func (o *outputs) open(path string) (io.Writer, error) {
	s, err := o.start(target{To: path}, false)
	if err != nil {
		return nil, err
	}
	return s.(io.Writer), nil
}

// output starts the sinks of one kind of record and groups them by format;
// key names the flag or config key in errors.
func (o *outputs) output(key string, alerts bool, ts []target) ([]sensor.Output, error) {
	var outs []sensor.Output
	for i, t := range ts {
		s, err := o.start(t, alerts)
		if err != nil {
			if len(ts) > 1 {
				key = fmt.Sprintf("%s[%d]", key, i)
			}
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		j := 0
		for j < len(outs) && outs[j].Format != t.Format {
			j++
		}
		if j == len(outs) {
			outs = append(outs, sensor.Output{Format: t.Format})
		}
		outs[j].Sinks = append(outs[j].Sinks, s)
	}
	return outs, nil
}

// start starts one sink; a file already open is shared, in one format.
func (o *outputs) start(t target, alerts bool) (sink.Sink, error) {
	if t.To == "" {
		t.To = "-"
	}
	file := !destination.IsReceiver(t.To)
	if file {
		if f, ok := o.formats[t.To]; ok {
			if f != t.Format {
				return nil, fmt.Errorf("%s is already written in %s; give each format its own file", t.To, f)
			}
			for _, s := range o.sinks {
				if s.Name() == t.To || (t.To == "-" && s.Name() == "stdout") {
					return s, nil
				}
			}
		}
	}
	s, err := destination.New(destination.Config{
		Target: t.To, Alerts: alerts, SpoolDir: o.spool, SpoolMaxBytes: o.spoolMax, MaxQueue: o.queueMax,
		Header:     func() []byte { return t.Format.Header(time.Now()) },
		RotateSize: t.RotateSize, RotateAge: t.RotateAge, Keep: t.Keep,
		Stdout: o.e.stdout, FlushInterval: o.flush, Log: o.e.log,
	})
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	o.sinks = append(o.sinks, s)
	if file {
		o.formats[t.To] = t.Format
	}
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
			o.e.log.Error("output lost records", "output", s.Name(), "dropped", st.Dropped, "errors", st.Errors)
		}
	}
	o.sinks = nil
	return errors.Join(errs...)
}
