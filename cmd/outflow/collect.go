package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/sensor"
)

// collectCmd is `outflow collect --listen netflow://:2055`: a run of the
// sensor on flow listeners, from flags.
type collectCmd struct {
	Listen []string `required:"" sep:"none" placeholder:"URL" help:"netflow://HOST:PORT (NetFlow v5/v9, IPFIX) or sflow://HOST:PORT, loopback when no host is given; ?allow=PREFIX,... takes only those senders, buffer=SIZE sets the socket's receive buffer (16MiB); repeat for several."`
	recordFlags
	detectFlags
	statsFlags
	userFlag
	StitchWindow time.Duration `default:"1m" help:"How long a one-way record waits for the reverse direction."`
	SamplingRate uint32        `placeholder:"N" help:"Sampling rate to apply instead of what exporters announce (0: theirs)."`
	HostEvents   []string      `sep:"none" placeholder:"SRC" help:"Host-event source: a file (followed), -, syslog+udp://:5514, syslog+tcp://:5514, syslog+tls://:6514?cert=F&key=F[&ca=F], http://:8088/events, https://:8443/events?cert=F&key=F[&token_file=F] or kafka://BROKERS/TOPIC; listeners take allow=PREFIX,...; repeat for several."`
}

func (c *collectCmd) Validate() error {
	var errs []error
	if c.StitchWindow <= 0 {
		errs = append(errs, fmt.Errorf("--stitch-window must be positive, not %v", c.StitchWindow))
	}
	for _, l := range c.Listen {
		if err := sensor.CheckFlowListener(l); err != nil {
			errs = append(errs, fmt.Errorf("--listen %w", err))
		}
	}
	return errors.Join(append(errs, checkHostEvents(c.HostEvents), c.recordFlags.validate(), c.detectFlags.validate())...)
}

func (c *collectCmd) Run(e *env) error {
	outs := newOutputs(e, c.FlushInterval)
	err := c.run(e, outs)
	return errors.Join(err, outs.stop())
}

func (c *collectCmd) run(e *env, outs *outputs) error {
	drop, err := flagsDropPlan(c.User, &c.recordFlags, &c.detectFlags, c.HostEvents, "", c.BugReports)
	if err == nil {
		err = drop.prepare()
	}
	if err != nil {
		return err
	}
	det, dcfg, err := c.detection(c.HomeNets, outs)
	if err != nil {
		return err
	}
	rc := sensor.DefaultRunConfig()
	rc.Detect = dcfg
	rc.Sources.FlowListeners, rc.Sources.StitchWindow, rc.Sources.SamplingRate = c.Listen, detect.Duration(c.StitchWindow), c.SamplingRate
	rc.Sources.HostEvents, rc.Sources.CommunityIDSeed = c.HostEvents, c.CommunityIDSeed
	rc.Logging.StatsInterval = detect.Duration(c.StatsInterval)
	rc.Logging.BugReports = c.BugReports
	rc.Metrics.Listen = c.Metrics
	rc.Sources.MaxFlows = c.MaxFlows
	return runFromFlags(e, outs, &rc, det, &c.recordFlags, "", drop,
		reloadTrusted(e, c.Config, func() { c.reload(e, det, len(c.HomeNets) > 0) }))
}

func printExportSummary(w io.Writer, st *sensor.ExportStats) {
	fmt.Fprintf(w, "outflow: %d export datagrams, %d records, %d flows (%d biflow, %d paired, %d one-way, %d from sFlow samples)\n",
		st.Datagrams, st.Records, st.Flows, st.Stitch.Biflow, st.Stitch.Paired, st.Stitch.Single, st.Sampled.Flows)
	if sm := &st.Sampled; sm.Samples > 0 {
		fmt.Fprintf(w, "outflow: %d sFlow samples, %d packets decoded, %d undecodable, %d of unsupported header protocols\n",
			sm.Samples, sm.Packets, sm.Undecodable, sm.Unsupported)
	}
	if st.ExportersEvicted > 0 {
		fmt.Fprintf(w, "outflow: %d exporters forgotten to make room for new ones (those that never sent a record first)\n", st.ExportersEvicted)
	}
	if st.KernelDrops > 0 {
		fmt.Fprintf(w, "outflow: the kernel dropped %d export datagrams the collector could not read in time\n", st.KernelDrops)
	}
	if st.Bugs > 0 {
		fmt.Fprintf(w, "outflow: %d export datagrams skipped: their records reached a bug (each is reported above)\n", st.Bugs)
	}
	if st.NotAllowed > 0 {
		fmt.Fprintf(w, "outflow: %d export datagrams from senders outside allow= were dropped\n", st.NotAllowed)
	}
	if st.Truncated > 0 {
		fmt.Fprintf(w, "outflow: %d export datagrams cut short by the capture, not decoded\n", st.Truncated)
	}
	var ex []string
	for a, s := range st.Exporters {
		ex = append(ex, fmt.Sprintf("%s: %d datagrams, %d records %s", a, s.Datagrams, s.Records, strings.Join(s.ErrorCounts(), " ")))
	}
	sort.Strings(ex)
	for _, e := range ex {
		fmt.Fprintf(w, "outflow: exporter %s\n", e)
	}
}
