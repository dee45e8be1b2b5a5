package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/collect"
)

type listens []string

func (l *listens) String() string     { return strings.Join(*l, ",") }
func (l *listens) Set(s string) error { *l = append(*l, s); return nil }

func collectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ls listens
	fs.Var(&ls, "listen", "netflow://HOST:PORT (NetFlow v5/v9, IPFIX) or sflow://HOST:PORT; repeat for several")
	flowsPath := fs.String("flows", "-", "where flow records go: a file, or - for stdout")
	homeNets := fs.String("home-nets", "", "comma-separated internal prefixes (default RFC 1918 and ULA)")
	seed := fs.Uint("community-id-seed", 0, "Community ID seed")
	window := fs.Duration("stitch-window", time.Minute, "how long a one-way record waits for the reverse direction")
	rate := fs.Uint("sampling-rate", 0, "sampling rate to apply instead of what exporters announce (0: theirs)")
	var hostEvents listens
	fs.Var(&hostEvents, "host-events", "host-event source: a file (followed), -, syslog+udp://:5514, syslog+tcp://:5514, http://:8088/events or kafka://BROKERS/TOPIC; repeat for several")
	df := addDetectFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: outflow collect --listen netflow://:2055 [--listen sflow://:6343] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(ls) == 0 || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("collect: give --listen addresses, and nothing else")
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
	dc := collect.DefaultConfig()
	dc.SamplingRate = uint32(*rate)
	st, err := sensor.Collect(ctx, sensor.CollectConfig{
		Listen: ls, HomeNets: nets, HostEvents: hostEvents, Detect: det, CommunityIDSeed: uint16(*seed), Window: *window, Decoder: dc,
		Flows: out, Errors: stderr,
		Ready: func(addrs []net.Addr) {
			var s []string
			for _, a := range addrs {
				s = append(s, a.String())
			}
			fmt.Fprintf(stderr, "outflow: collecting on %s\n", strings.Join(s, ", "))
		},
	})
	err = errors.Join(err, closeOut(), closeAlerts())
	printExportSummary(stderr, &st)
	printDetectSummary(stderr, st.Detect)
	return err
}

func printExportSummary(w io.Writer, st *sensor.ExportStats) {
	fmt.Fprintf(w, "outflow: %d export datagrams, %d records, %d flows (%d biflow, %d paired, %d one-way, %d from sFlow samples)\n",
		st.Datagrams, st.Records, st.Flows, st.Stitch.Biflow, st.Stitch.Paired, st.Stitch.Single, st.Sampled.Flows)
	if sm := &st.Sampled; sm.Samples > 0 {
		fmt.Fprintf(w, "outflow: %d sFlow samples, %d packets decoded, %d undecodable, %d of unsupported header protocols\n",
			sm.Samples, sm.Packets, sm.Undecodable, sm.Unsupported)
	}
	if st.Truncated > 0 {
		fmt.Fprintf(w, "outflow: %d export datagrams cut short by the capture, not decoded\n", st.Truncated)
	}
	var ex []string
	for a, s := range st.Exporters {
		var bad []string
		for r := 1; r < len(s.Errors); r++ {
			if s.Errors[r] > 0 {
				bad = append(bad, fmt.Sprintf("%s=%d", collect.Reason(r), s.Errors[r]))
			}
		}
		ex = append(ex, fmt.Sprintf("%s: %d datagrams, %d records %s", a, s.Datagrams, s.Records, strings.Join(bad, " ")))
	}
	sort.Strings(ex)
	for _, e := range ex {
		fmt.Fprintf(w, "outflow: exporter %s\n", e)
	}
}
