//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor"
)

// ifaces collects repeated -i flags.
type ifaces []string

func (f *ifaces) String() string     { return strings.Join(*f, ",") }
func (f *ifaces) Set(s string) error { *f = append(*f, s); return nil }

func live(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("live", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ifs ifaces
	fs.Var(&ifs, "i", "interface to capture on (repeat for several)")
	flowsPath := fs.String("flows", "-", "where flow records go: a file, or - for stdout")
	workers := fs.Int("workers", 1, "capture workers per interface, in one AF_PACKET fanout group")
	filter := fs.String("filter", "", "tcpdump filter expression (compiled by tcpdump -ddd)")
	homeNets := fs.String("home-nets", "", "comma-separated internal prefixes (default RFC 1918 and ULA)")
	seed := fs.Uint("community-id-seed", 0, "Community ID seed")
	inspect := fs.Bool("inspect", true, "payload inspection: TLS/QUIC handshakes, HTTP, DNS, entropy")
	onHost := fs.Bool("on-host", false, "Outflow runs on the host it watches: attribute flows to processes from /proc")
	var hostEvents listens
	fs.Var(&hostEvents, "host-events", "host-event source: a file (followed), -, syslog+udp://:5514, syslog+tcp://:5514, http://:8088/events or kafka://BROKERS/TOPIC; repeat for several")
	eventsOut := fs.String("host-events-out", "", "with --on-host: write the processes, connections and crypto libraries it attributed as host events, one JSON line each (replay --host-events reads them)")
	df := addDetectFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: outflow live -i IFACE [-i IFACE ...] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(ifs) == 0 || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("live: give interfaces with -i, and nothing else")
	}
	nets, err := parseHomeNets(*homeNets)
	if err != nil {
		return err
	}
	det, nets, closeAlerts, err := df.detection(nets, stdout)
	if err != nil {
		return err
	}
	out, closeOut, err := openOutput(*flowsPath, stdout)
	if err != nil {
		return err
	}
	var evOut io.Writer
	closeEvents := func() error { return nil }
	if *eventsOut != "" {
		if !*onHost {
			return errors.New("--host-events-out needs --on-host")
		}
		if evOut, closeEvents, err = openOutput(*eventsOut, stdout); err != nil {
			return err
		}
	}
	table := flows.DefaultConfig()
	if *inspect {
		table.Inspect = flows.DefaultInspectConfig()
	}
	st, err := sensor.Live(ctx, sensor.LiveConfig{
		OnHost: *onHost, HostEvents: hostEvents, Detect: det, HostEventsOut: evOut,
		Interfaces: ifs, Workers: *workers, Filter: *filter, HomeNets: nets,
		CommunityIDSeed: uint16(*seed), Table: table, Flows: out, Errors: stderr,
		Ready: func() { fmt.Fprintf(stderr, "outflow: capturing on %s\n", ifs.String()) },
	})
	err = errors.Join(err, closeOut(), closeAlerts(), closeEvents())
	for _, is := range st.Interfaces {
		fmt.Fprintf(stderr, "outflow: %s: kernel packets %d, kernel drops %d\n", is.Name, is.Packets, is.Drops)
	}
	fmt.Fprintf(stderr, "outflow: %d frames, %d flow records\n", st.Frames, st.Records)
	if h := st.OnHost; h != nil {
		fmt.Fprintf(stderr, "outflow: on-host: %d /proc scans, %d sockets attributed; flows joined %d, not joined %d\n",
			h.Scans, h.Found, h.Joined, h.Missed)
	}
	printDetectSummary(stderr, st.Detect)
	return err
}
