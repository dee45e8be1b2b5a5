// Command outflow is the Outflow sensor: replay captures in the lab, watch a
// SPAN port, collect router flows, or run as a daemon.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/tls"
	"github.com/outflow-sensor/outflow/tls/quic"
)

const usage = `usage: outflow <command> [flags]

commands:
  replay   read pcap, pcapng or gzip captures and write flow records
  live     capture from interfaces (AF_PACKET) and write flow records until interrupted
  collect  receive NetFlow, IPFIX and sFlow exports and write flow records until interrupted
  check    validate a config file (outflow check --config outflow.yaml [--print])

replay, live and collect run the analytics with --alerts PATH|- (and --config, --state).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "replay":
		err = replay(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "live":
		err = live(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "collect":
		err = collectCmd(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "check":
		err = check(os.Args[2:], os.Stdout, os.Stderr)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "outflow: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "outflow: %v\n", err)
		os.Exit(1)
	}
}

// parseHomeNets reads a comma-separated list of CIDR prefixes.
func parseHomeNets(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--home-nets: %w", err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// openOutput opens PATH for writing, or stdout for "-".
func openOutput(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "-" || path == "" {
		bw := bufio.NewWriterSize(stdout, 1<<20)
		return bw, bw.Flush, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	return bw, func() error { return errors.Join(bw.Flush(), f.Close()) }, nil
}

func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flowsPath := fs.String("flows", "-", "where flow records go: a file, or - for stdout")
	workers := fs.Int("workers", 1, "flow-table workers; packets are spread by a symmetric flow hash")
	pace := fs.String("pace", "max", "max: as fast as possible; realtime: as the capture's clock did")
	homeNets := fs.String("home-nets", "", "comma-separated internal prefixes (default RFC 1918 and ULA)")
	seed := fs.Uint("community-id-seed", 0, "Community ID seed")
	quiet := fs.Bool("quiet", false, "no summary on stderr")
	inspect := fs.Bool("inspect", true, "payload inspection: TLS/QUIC handshakes, HTTP, DNS, entropy")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	var exports listens
	fs.Var(&exports, "exports", "netflow://[HOST]:PORT or sflow://[HOST]:PORT: UDP to this collector address in the capture is flow exports, decoded into flows as collect would; repeat for several")
	exportWindow := fs.Duration("stitch-window", time.Minute, "with --exports: how long a one-way record waits for its reverse, in capture time")
	var hostEvents listens
	fs.Var(&hostEvents, "host-events", "a host-event log (Sysmon, Windows Security, auditd, AUOMS, VM Insights, osquery, Microsoft 365 audit, ESXi; JSON, XML, audit or syslog lines): flows gain orig_process and resp_process; repeat for several")
	df := addDetectFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: outflow replay [flags] FILE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("replay: no capture files given")
	}
	if *pace != "max" && *pace != "realtime" {
		return fmt.Errorf("--pace: %q is neither max nor realtime", *pace)
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
	table := flows.DefaultConfig()
	if *inspect {
		table.Inspect = flows.DefaultInspectConfig()
	}
	cfg := sensor.ReplayConfig{
		Files:           fs.Args(),
		Workers:         *workers,
		Realtime:        *pace == "realtime",
		HomeNets:        nets,
		CommunityIDSeed: uint16(*seed),
		Table:           table,
		Flows:           out,
		Errors:          stderr,
		Exports:         exports,
		ExportWindow:    *exportWindow,
		HostEvents:      hostEvents,
		Detect:          det,
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		bar := newProgress(stderr)
		cfg.Progress = bar.update
		defer bar.finish()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	st, err := sensor.Replay(ctx, cfg)
	err = errors.Join(err, closeOut(), closeAlerts())
	if !*quiet {
		printSummary(stderr, &st)
	}
	if err == nil && st.Files == 0 {
		err = errors.New("replay: no capture could be read")
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
		fmt.Fprintf(w, "outflow: inspected %d flows (%d skipped, pool full), %d ClientHellos, %d ServerHellos, %d QUIC ClientHellos, %d DNS messages\n",
			in.Flows, in.Skipped, in.ClientHellos, in.ServerHellos, in.QUICHellos, in.DNS)
		var bad []string
		for r := 1; r < len(in.TLSErrors); r++ {
			if n := in.TLSErrors[r]; n > 0 {
				bad = append(bad, fmt.Sprintf("%s=%d", tls.Reason(r), n))
			}
		}
		for r := 1; r < len(in.QUICErrors); r++ {
			if n := in.QUICErrors[r]; n > 0 {
				bad = append(bad, fmt.Sprintf("quic_%s=%d", quic.Reason(r), n))
			}
		}
		if in.DNSError > 0 {
			bad = append(bad, fmt.Sprintf("dns=%d", in.DNSError))
		}
		if in.Gaps > 0 {
			bad = append(bad, fmt.Sprintf("stream_gaps=%d", in.Gaps))
		}
		if len(bad) > 0 {
			fmt.Fprintf(w, "outflow: inspection errors: %s\n", strings.Join(bad, " "))
		}
	}
	if st.Exports != nil {
		printExportSummary(w, st.Exports)
	}
	if h := st.HostEvents; h != nil {
		for _, f := range h.Files {
			fmt.Fprintf(w, "outflow: host events %s: %d records, %d events, %d ignored, skipped %v\n",
				f.Path, f.Stats.Lines, f.Stats.Events, f.Stats.Ignored, f.Stats.Errors)
		}
		fmt.Fprintf(w, "outflow: processes %d, connect events %d; flow ends joined %d, missed %d\n",
			h.Index.Processes, h.Index.Connects, h.Index.Joined, h.Index.Missed)
	}
	printDetectSummary(w, st.Detect)
	if st.Decode.NonIP > 0 || st.Table.Evicted > 0 || st.Table.FragOrphans > 0 {
		fmt.Fprintf(w, "outflow: non-IP frames %d, evicted flows %d, orphan fragments %d\n",
			st.Decode.NonIP, st.Table.Evicted, st.Table.FragOrphans)
	}
}
