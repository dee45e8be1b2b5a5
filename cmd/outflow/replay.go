package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/report"
	"github.com/outflow-sensor/outflow/sensor"
)

// replayCmd is `outflow replay FILE...`.
type replayCmd struct {
	Files []string `arg:"" name:"FILE" help:"Captures: pcap, pcapng, gzip-compressed either way. Read in order."`
	recordFlags
	detectFlags
	Workers      int           `default:"1" help:"Flow-table workers; packets are spread by a symmetric flow hash."`
	Pace         string        `enum:"max,realtime" default:"max" help:"max: as fast as possible; realtime: as the capture's clock did."`
	Inspect      bool          `default:"true" negatable:"" help:"Payload inspection: TLS/QUIC handshakes, HTTP, DNS, entropy."`
	Quiet        bool          `help:"No summary on stderr."`
	CPUProfile   string        `name:"cpuprofile" placeholder:"FILE" help:"Write a CPU profile (go tool pprof) to this file."`
	Exports      []string      `sep:"none" placeholder:"URL" help:"netflow://[HOST]:PORT or sflow://[HOST]:PORT: UDP to this collector address in the capture is flow exports, decoded into flows as collect would; repeat for several."`
	StitchWindow time.Duration `default:"1m" help:"With --exports: how long a one-way record waits for its reverse, in capture time."`
	HostEvents   []string      `sep:"none" placeholder:"LOG" help:"A host-event log (Sysmon, Windows Security, auditd, AUOMS, VM Insights, osquery, Microsoft 365 audit, ESXi): flows gain orig_process and resp_process; repeat for several."`
	Report       string        `placeholder:"FILE" help:"Write a lab report here: one HTML page (alerts with their evidence, hosts and processes, charts) that needs no network. Runs the analytics (--config), with or without --alerts."`
}

func (c *replayCmd) Validate() error {
	return errors.Join(checkWorkers(c.Workers), c.recordFlags.validate(), c.detectFlags.validate())
}

func (c *replayCmd) Run(e *env) error {
	outs := newOutputs(e, c.FlushInterval)
	err := c.run(e, outs)
	return errors.Join(err, outs.stop())
}

func (c *replayCmd) run(e *env, outs *outputs) error {
	det, dcfg, err := c.detection(c.HomeNets, outs)
	if err != nil {
		return err
	}
	flowOuts, err := c.flowOutputs(outs)
	if err != nil {
		return err
	}
	// The report and the terminal's table see every record and alert.
	f, ok := e.stderr.(*os.File)
	tty := ok && isTerminal(f)
	var col *report.Collector
	if c.Report != "" || (tty && !c.Quiet) {
		col = report.New(report.Config{Sources: c.Files})
		if det == nil && c.Report != "" {
			det = &sensor.Detection{Config: dcfg}
		}
		if det != nil {
			det.Alerts = col.Alerts()
		}
	}
	outs.watchHangup(func() { c.reload(e, det, len(c.HomeNets) > 0) })
	table := flows.DefaultConfig()
	if c.MaxFlows > 0 {
		table.Capacity = c.MaxFlows
	}
	if c.Inspect {
		table.Inspect = flows.DefaultInspectConfig()
	}
	cfg := sensor.ReplayConfig{
		Files:           c.Files,
		Workers:         c.Workers,
		Realtime:        c.Pace == "realtime",
		HomeNets:        dcfg.HomePrefixes(),
		CommunityIDSeed: c.CommunityIDSeed,
		Table:           table,
		FlowOutputs:     flowOuts,
		Log:             e.log,
		Exports:         c.Exports,
		ExportWindow:    c.StitchWindow,
		HostEvents:      c.HostEvents,
		Detect:          det,
	}
	if col != nil {
		cfg.Records = col.Record
	}
	if tty {
		bar := newProgress(e.stderr)
		cfg.Progress = bar.update
		defer bar.finish()
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	st, err := sensor.Replay(e.ctx, cfg)
	interrupted := errors.Is(err, context.Canceled)
	if interrupted {
		// SIGINT or SIGTERM: what was read is flushed, and that is a
		// clean stop, even before a named pipe's writer came.
		e.log.Info("interrupted: the flows read so far were written")
		err = nil
	}
	if !c.Quiet {
		printSummary(e.stderr, &st)
	}
	if col != nil {
		r := col.Report()
		if tty && !c.Quiet {
			_ = r.WriteSummary(e.stderr, 10, det != nil)
		}
		if c.Report != "" {
			if werr := col.WriteFile(c.Report); werr != nil {
				err = errors.Join(err, fmt.Errorf("--report %w", werr))
			}
		}
	}
	switch {
	case err != nil:
	case st.Files == 0 && !interrupted:
		err = errors.New("replay: no capture could be read")
	case st.FileErrors > 0:
		err = fmt.Errorf("replay: %d of %d captures could not be read in full (each is named above)", st.FileErrors, len(c.Files))
	}
	return err
}

func printSummary(w io.Writer, st *sensor.ReplayStats) {
	fmt.Fprintf(w, "outflow: %d files (%d with errors), %d frames, %d bytes, %d flow records\n",
		st.Files, st.FileErrors, st.Frames, st.Bytes, st.Records)
	var parts []string
	for r := flows.Reason(1); r < flows.NumReasons; r++ {
		if n := st.Decode.Errors[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", r, n))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "outflow: decode errors: %s\n", strings.Join(parts, " "))
	}
	if in := &st.Inspect; in.Flows > 0 {
		fmt.Fprintf(w, "outflow: inspected %d flows (%d skipped, pool full; %d abandoned, over budget), %d ClientHellos, %d ServerHellos, %d QUIC ClientHellos, %d DNS messages\n",
			in.Flows, in.Skipped, in.Abandoned[flows.AbandonBudget], in.ClientHellos, in.ServerHellos, in.QUICHellos, in.DNS)
		if bad := in.ErrorCounts(); len(bad) > 0 {
			fmt.Fprintf(w, "outflow: inspection errors: %s\n", strings.Join(bad, " "))
		}
	}
	if st.Exports != nil {
		printExportSummary(w, st.Exports)
	}
	printHostEvents(w, st.HostEvents)
	printDetectSummary(w, st.Detect)
	if st.Bugs > 0 {
		fmt.Fprintf(w, "outflow: %d inputs skipped: each reached a bug (reported above)\n", st.Bugs)
	}
	if st.Table.Discarded > 0 {
		fmt.Fprintf(w, "outflow: %d flows dropped without records: a bug broke their table\n", st.Table.Discarded)
	}
	if st.Faulted > 0 {
		fmt.Fprintf(w, "outflow: %d packets lost: their file was cut short while it was read\n", st.Faulted)
	}
	if st.Decode.NonIP > 0 || st.Table.Evicted > 0 || st.Table.FragOrphans > 0 {
		fmt.Fprintf(w, "outflow: non-IP frames %d, evicted flows %d, orphan fragments %d\n",
			st.Decode.NonIP, st.Table.Evicted, st.Table.FragOrphans)
	}
	if n := st.Table.BeyondWindow; n > 0 {
		// A forged or broken stream: data far past anything the peer
		// acknowledged is not counted as bytes.
		fmt.Fprintf(w, "outflow: %d flow directions sent data beyond any window the peer acknowledged; their bytes count only what was acknowledged\n", n)
	}
}

// printHostEvents prints what the host-event sources read and joined.
func printHostEvents(w io.Writer, h *sensor.HostEventStats) {
	if h == nil {
		return
	}
	for _, f := range h.Files {
		fmt.Fprintf(w, "outflow: host events %s: %d records, %d events, %d ignored, skipped %v\n",
			f.Path, f.Stats.Lines, f.Stats.Events, f.Stats.Ignored, f.Stats.Errors)
	}
	fmt.Fprintf(w, "outflow: processes %d, connect events %d; flow ends joined %d, missed %d\n",
		h.Index.Processes, h.Index.Connects, h.Index.Joined, h.Index.Missed)
}
