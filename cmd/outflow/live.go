//go:build linux

package main

import (
	"errors"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/sensor"
)

// liveCmd is `outflow live -i IFACE`: a run of the sensor on interfaces,
// from flags.
type liveCmd struct {
	Interfaces []string `short:"i" name:"interface" required:"" sep:"none" placeholder:"IFACE" help:"Interface to capture on; repeat for several."`
	recordFlags
	detectFlags
	statsFlags
	userFlag
	Workers       int      `default:"1" help:"Capture workers, each with a socket of every interface's AF_PACKET fanout group."`
	Filter        string   `placeholder:"EXPR" help:"tcpdump filter expression."`
	Inspect       bool     `default:"true" negatable:"" help:"Payload inspection: TLS/QUIC handshakes, HTTP, DNS, entropy."`
	OnHost        bool     `help:"Outflow runs on the host it watches: attribute flows to processes from /proc."`
	HostEvents    []string `sep:"none" placeholder:"SRC" help:"Host-event source: a file (followed), -, syslog+udp://:5514, syslog+tcp://:5514, syslog+tls://:6514?cert=F&key=F[&ca=F], http://:8088/events, https://:8443/events?cert=F&key=F[&token_file=F] or kafka://BROKERS/TOPIC; listeners take allow=PREFIX,...; repeat for several."`
	HostEventsOut string   `placeholder:"PATH|-" help:"With --on-host: write the processes, connections and crypto libraries it attributed as host events, one JSON line each (replay --host-events reads them)."`
}

func (c *liveCmd) Validate() error {
	var errs []error
	if c.HostEventsOut != "" && !c.OnHost {
		errs = append(errs, errors.New("--host-events-out needs --on-host"))
	}
	if c.User != "" && c.OnHost {
		errs = append(errs, errOnHostUser)
	}
	return errors.Join(append(errs, checkWorkers(c.Workers), checkHostEvents(c.HostEvents), c.recordFlags.validate(), c.detectFlags.validate())...)
}

func (c *liveCmd) Run(e *env) error {
	outs := newOutputs(e, c.FlushInterval)
	err := c.run(e, outs)
	return errors.Join(err, outs.stop())
}

func (c *liveCmd) run(e *env, outs *outputs) error {
	drop, err := flagsDropPlan(c.User, &c.recordFlags, &c.detectFlags, c.HostEvents, c.HostEventsOut, c.BugReports)
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
	rc.Sources.Capture = sensor.CaptureConfig{Interfaces: c.Interfaces, Workers: c.Workers, Filter: c.Filter, OnHost: c.OnHost}
	rc.Sources.HostEvents, rc.Sources.Inspect, rc.Sources.CommunityIDSeed = c.HostEvents, c.Inspect, c.CommunityIDSeed
	rc.Logging.StatsInterval = detect.Duration(c.StatsInterval)
	rc.Logging.BugReports = c.BugReports
	rc.Metrics.Listen = c.Metrics
	rc.Sources.MaxFlows = c.MaxFlows
	return runFromFlags(e, outs, &rc, det, &c.recordFlags, c.HostEventsOut, drop,
		reloadTrusted(e, c.Config, func() { c.reload(e, det, len(c.HomeNets) > 0) }))
}
