//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor"
)

// liveCmd is `outflow live -i IFACE`.
type liveCmd struct {
	Interfaces []string `short:"i" name:"interface" required:"" sep:"none" placeholder:"IFACE" help:"Interface to capture on; repeat for several."`
	recordFlags
	detectFlags
	Workers       int      `default:"1" help:"Capture workers per interface, in one AF_PACKET fanout group."`
	Filter        string   `placeholder:"EXPR" help:"tcpdump filter expression."`
	Inspect       bool     `default:"true" negatable:"" help:"Payload inspection: TLS/QUIC handshakes, HTTP, DNS, entropy."`
	OnHost        bool     `help:"Outflow runs on the host it watches: attribute flows to processes from /proc."`
	HostEvents    []string `sep:"none" placeholder:"SRC" help:"Host-event source: a file (followed), -, syslog+udp://:5514, syslog+tcp://:5514, http://:8088/events or kafka://BROKERS/TOPIC; repeat for several."`
	HostEventsOut string   `placeholder:"PATH|-" help:"With --on-host: write the processes, connections and crypto libraries it attributed as host events, one JSON line each (replay --host-events reads them)."`
}

func (c *liveCmd) Validate() error {
	var errs []error
	if c.HostEventsOut != "" && !c.OnHost {
		errs = append(errs, errors.New("--host-events-out needs --on-host"))
	}
	return errors.Join(append(errs, checkWorkers(c.Workers), c.recordFlags.validate(), c.detectFlags.validate())...)
}

func (c *liveCmd) Run(e *env) error {
	outs := newOutputs(e, c.FlushInterval)
	err := c.run(e, outs)
	return errors.Join(err, outs.stop())
}

func (c *liveCmd) run(e *env, outs *outputs) error {
	det, nets, err := c.detection(c.HomeNets, outs)
	if err != nil {
		return err
	}
	out, err := outs.open(c.Flows)
	if err != nil {
		return fmt.Errorf("--flows: %w", err)
	}
	var evOut io.Writer
	if c.HostEventsOut != "" {
		if evOut, err = outs.open(c.HostEventsOut); err != nil {
			return fmt.Errorf("--host-events-out: %w", err)
		}
	}
	outs.watchHangup(func() { c.reload(e, det, len(c.HomeNets) > 0) })
	table := flows.DefaultConfig()
	if c.Inspect {
		table.Inspect = flows.DefaultInspectConfig()
	}
	st, err := sensor.Live(e.ctx, sensor.LiveConfig{
		OnHost: c.OnHost, HostEvents: c.HostEvents, Detect: det, HostEventsOut: evOut,
		Interfaces: c.Interfaces, Workers: c.Workers, Filter: c.Filter, HomeNets: nets,
		CommunityIDSeed: c.CommunityIDSeed, Table: table, Flows: out, Errors: logLines{e.log},
		Ready: func() { e.log.Info("capturing", "interfaces", strings.Join(c.Interfaces, ",")) },
	})
	for _, is := range st.Interfaces {
		fmt.Fprintf(e.stderr, "outflow: %s: kernel packets %d, kernel drops %d, discarded at start %d\n", is.Name, is.Packets, is.Drops, is.Discarded)
	}
	fmt.Fprintf(e.stderr, "outflow: %d frames, %d flow records\n", st.Frames, st.Records)
	if h := st.OnHost; h != nil {
		fmt.Fprintf(e.stderr, "outflow: on-host: %d /proc scans, %d sockets attributed; flows joined %d, not joined %d\n",
			h.Scans, h.Found, h.Joined, h.Missed)
	}
	printDetectSummary(e.stderr, st.Detect)
	return err
}
