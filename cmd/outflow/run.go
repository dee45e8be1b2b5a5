package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/report"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/encode"
)

// runCmd is `outflow run --config outflow.yaml`: the sensor as a service,
// everything from one file.
type runCmd struct {
	Config string `required:"" placeholder:"FILE" help:"The run config: Sources, Outputs and Logging, beside the detection keys (see deploy/outflow.yaml). Reloaded on SIGHUP."`
	userFlag
}

func (c *runCmd) Run(e *env) error {
	if err := trustFile("--config", c.Config); err != nil {
		return err
	}
	rc, err := sensor.LoadRunConfig(c.Config)
	if err != nil {
		return err
	}
	e.log = newLogger(e.stderr, cmp.Or(e.logLevel, rc.Logging.Level), cmp.Or(e.logFormat, rc.Logging.Format))
	drop, err := runDropPlan(c.User, c.Config, rc)
	if err == nil {
		err = drop.prepare()
	}
	if err != nil {
		return err
	}
	outs := newOutputs(e, rc.Outputs.FlushInterval.D())
	err = c.run(e, rc, outs, drop)
	return errors.Join(err, outs.stop())
}

func (c *runCmd) run(e *env, rc *sensor.RunConfig, outs *outputs, drop *dropPlan) error {
	outs.spool = rc.Outputs.SpoolDir(rc.Detect.State.Path)
	outs.spoolMax = int64(rc.Outputs.SpoolMaxBytes)
	outs.queueMax = int(min(rc.Outputs.QueueMaxBytes, 1<<40))
	flows, err := outs.output("Outputs.Flows", false, configTargets(rc.Outputs.Flows))
	if err != nil {
		return err
	}
	alerts, err := outs.output("Outputs.Alerts", true, configTargets(rc.Outputs.Alerts))
	if err != nil {
		return err
	}
	var events io.Writer
	if rc.Outputs.HostEventsOut != "" {
		if events, err = outs.open(rc.Outputs.HostEventsOut); err != nil {
			return fmt.Errorf("Outputs.HostEventsOut: %w", err)
		}
	}
	var det *sensor.Detection
	if alerts != nil || rc.Outputs.Report != "" {
		fl, err := sensor.FleetOf(rc.Fleet)
		if err != nil {
			return fmt.Errorf("Fleet.URL: %w", err)
		}
		det = &sensor.Detection{Config: rc.Detect, StatePath: rc.Detect.State.Path, SaveEvery: rc.Detect.State.SaveEvery.D(),
			AlertOutputs: alerts, Fleet: fl}
	}
	// Outputs.Report: the watched directories' lab report, at stop.
	var col *report.Collector
	var records func(*record.Flow)
	if rc.Outputs.Report != "" {
		var dirs []string
		for _, d := range rc.Sources.Directories {
			dirs = append(dirs, d.Path)
		}
		col = report.New(report.Config{Sources: dirs})
		det.Alerts, records = col.Alerts(), col.Record
	}
	srv, err := startMetrics(e, rc)
	if err != nil {
		return err
	}
	defer srv.Close()
	applyMemoryBudget(rc)
	running := rc
	outs.watchHangup(reloadTrusted(e, c.Config, func() { running = c.reload(e, running, det) }))
	st, err := sensor.Run(e.ctx, rc, sensor.RunOptions{Snapshots: srv.Snapshots,
		FlowOutputs: flows, HostEventsOut: events, Detect: det, Log: e.log, Outputs: outs.counts, Records: records, Opened: drop.opened(e),
		Ready: func() { logSources(e, rc); logMemoryBudget(e, rc) }, Listening: func(addrs []net.Addr) { logListening(e, addrs) },
	})
	srv.Stopped()
	printRunSummary(e.stderr, &st)
	if col != nil {
		if werr := col.WriteFile(rc.Outputs.Report); werr != nil {
			err = errors.Join(err, fmt.Errorf("Outputs.Report: %w", werr))
		}
	}
	return err
}

// runFromFlags runs the sensor as live and collect build it from flags,
// and prints what it counted.
func runFromFlags(e *env, outs *outputs, rc *sensor.RunConfig, det *sensor.Detection, rf *recordFlags, eventsPath string, drop *dropPlan, reload func()) error {
	flowOuts, err := rf.flowOutputs(outs)
	if err != nil {
		return err
	}
	var evOut io.Writer
	if eventsPath != "" {
		if evOut, err = outs.open(eventsPath); err != nil {
			return fmt.Errorf("--host-events-out: %w", err)
		}
	}
	srv, err := startMetrics(e, rc)
	if err != nil {
		return err
	}
	defer srv.Close()
	applyMemoryBudget(rc)
	outs.watchHangup(reload)
	st, err := sensor.Run(e.ctx, rc, sensor.RunOptions{Snapshots: srv.Snapshots,
		FlowOutputs: flowOuts, HostEventsOut: evOut, Detect: det, Log: e.log, Outputs: outs.counts, Opened: drop.opened(e),
		Ready: func() { logSources(e, rc); logMemoryBudget(e, rc) }, Listening: func(addrs []net.Addr) { logListening(e, addrs) },
	})
	srv.Stopped()
	printRunSummary(e.stderr, &st)
	return err
}

// logSources says what the sensor watches, once it does.
func logSources(e *env, rc *sensor.RunConfig) {
	if c := rc.Sources.Capture; len(c.Interfaces) > 0 {
		e.log.Info("capturing", "interfaces", strings.Join(c.Interfaces, ","), "workers", c.Workers)
	}
	for _, d := range rc.Sources.Directories {
		e.log.Info("watching", "directory", d.Path, "pattern", d.Pattern)
	}
}

func logListening(e *env, addrs []net.Addr) {
	var s []string
	for _, a := range addrs {
		s = append(s, a.String())
	}
	e.log.Info("collecting", "addresses", strings.Join(s, ", "))
}

// printRunSummary prints what a run counted, per source, at its end.
func printRunSummary(w io.Writer, st *sensor.RunStats) {
	if s := st.Capture; s != nil {
		for _, is := range s.Interfaces {
			fmt.Fprintf(w, "outflow: %s: kernel packets %d, kernel drops %d, discarded at start %d\n", is.Name, is.Packets, is.Drops, is.Discarded)
		}
		fmt.Fprintf(w, "outflow: %d frames, %d flow records\n", s.Frames, s.Records)
	}
	if h := st.OnHost; h != nil {
		fmt.Fprintf(w, "outflow: on-host: %d /proc scans, %d sockets attributed; flows joined %d, not joined %d\n",
			h.Scans, h.Found, h.Joined, h.Missed)
	}
	if s := st.Collect; s != nil {
		printExportSummary(w, s)
	}
	for _, d := range st.Directories {
		fmt.Fprintf(w, "outflow: directory %s: %d files (%d with errors), %d frames, %d flow records\n",
			d.Path, d.Files, d.FileErrors, d.Frames, d.Records)
	}
	printHostEvents(w, st.HostEvents)
	printDetectSummary(w, st.Detect)
}

// configTargets are a run config's sinks of one kind.
func configTargets(list []sensor.SinkConfig) []target {
	ts := make([]target, len(list))
	for i, sc := range list {
		f, _ := encode.ParseFormat(cmp.Or(sc.Format, "json")) // checked with the config
		ts[i] = target{To: cmp.Or(sc.URL, sc.Path), Format: f, RotateSize: int64(sc.RotateSize), RotateAge: sc.RotateAge.D(), Keep: sc.Keep}
	}
	return ts
}

// reload reads the run config again on SIGHUP. The detection keys take
// effect at once, baselines kept; Sources, Outputs and Logging at the next
// start, which the log says. A file that does not load is refused.
func (c *runCmd) reload(e *env, running *sensor.RunConfig, det *sensor.Detection) *sensor.RunConfig {
	rc, err := sensor.LoadRunConfig(c.Config)
	if err != nil {
		e.log.Error("config reload refused; the running config stays in force", "config", c.Config, "err", err.Error())
		return running
	}
	if !sameRun(rc, running) {
		e.log.Warn("Sources, Outputs, Logging or Privileges changed; they take effect at the next start", "config", c.Config)
	}
	putInForce(e, c.Config, det, rc.Detect, running.Detect.HomePrefixes(), true)
	rc.Sources, rc.Outputs, rc.Logging, rc.Privileges = running.Sources, running.Outputs, running.Logging, running.Privileges
	return rc
}

func sameRun(a, b *sensor.RunConfig) bool {
	return fmt.Sprint(a.Sources, a.Outputs, a.Logging, a.Privileges) == fmt.Sprint(b.Sources, b.Outputs, b.Logging, b.Privileges)
}
