package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/destination"
	"github.com/outflow-sensor/outflow/sensor/encode"
)

// recordFlags are the flow-record options every command that makes flows
// shares.
type recordFlags struct {
	Flows           []string      `default:"-" sep:"none" placeholder:"PATH|-|URL" help:"Where flow records go, one per line: a file (appended to, reopened on SIGHUP), - for stdout, or a receiver: syslog+udp://, syslog+tcp://, syslog+tls://HOST:PORT, https://HOST/PATH, kafka://BROKER,.../TOPIC. Repeat for several."`
	FlowsFormat     string        `default:"json" enum:"json,ecs,zeek" help:"The flows' format: json (Outflow's), ecs (Elastic Common Schema), zeek (conn.log TSV, files only)."`
	HomeNets        homeNets      `placeholder:"CIDR,..." help:"Internal prefixes, comma-separated (default: HomeNets of --config, else RFC 1918 and ULA)."`
	CommunityIDSeed uint16        `placeholder:"N" help:"Community ID seed."`
	FlushInterval   time.Duration `default:"1s" help:"The longest a written record or alert waits before it reaches its file."`
	MaxFlows        int           `placeholder:"N" help:"Flows tracked at once, shared by the workers (default 1048576, about 250 MB); past it the oldest end early, counted as evicted."`
}

// statsFlags are for commands that run until stopped.
type statsFlags struct {
	StatsInterval time.Duration `default:"1m" help:"How often a statistics line per source is logged (0: only at exit)."`
	Metrics       string        `placeholder:"[HOST]:PORT" help:"Serve Prometheus metrics at /metrics, with /healthz and /readyz; a port alone is loopback, another host only when named."`
	BugReports    string        `placeholder:"DIR" help:"Keep each input that reached a bug (a frame as a one-packet pcap, a datagram, a host-event record) in DIR with its failure, 16 MiB at most; the input is skipped and the sensor goes on. Without it the log line holds the input's first bytes."`
}

// userFlag is --user, for the commands that run as a service.
type userFlag struct {
	User string `placeholder:"NAME" help:"Once the capture sockets and listeners are open, run as this user (its uid, gid and groups) with no capability left; needs root. Every file written after must be the user's to write, which is checked at start (outflow run: default Privileges.User of its config)."`
}

func (r *recordFlags) validate() error {
	if r.FlushInterval <= 0 {
		return fmt.Errorf("--flush-interval must be positive, not %v", r.FlushInterval)
	}
	if err := sensor.CheckMaxFlows(r.MaxFlows); err != nil {
		return fmt.Errorf("--max-flows %w", err)
	}
	return checkTargets("--flows", r.Flows, r.FlowsFormat)
}

// flowOutputs starts the --flows sinks.
func (r *recordFlags) flowOutputs(outs *outputs) ([]sensor.Output, error) {
	return outs.output("--flows", false, targets(r.Flows, r.FlowsFormat))
}

// targets are the places one flag names, in its format.
func targets(to []string, format string) []target {
	f, _ := encode.ParseFormat(format) // the flag's enum checked it
	ts := make([]target, len(to))
	for i, t := range to {
		ts[i] = target{To: t, Format: f}
	}
	return ts
}

// checkTargets checks each receiver URL of a flag, and that a file format
// goes to files.
func checkTargets(flag string, to []string, format string) error {
	var errs []error
	for _, t := range to {
		if !destination.IsReceiver(t) {
			continue
		}
		if _, err := destination.Check(t); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		} else if format == "zeek" {
			errs = append(errs, fmt.Errorf("%s %s: the zeek format is for files (its header starts each file): use json or ecs for a receiver", flag, t))
		}
	}
	return errors.Join(errs...)
}

// homeNets is --home-nets: CIDR prefixes, comma-separated.
type homeNets []netip.Prefix

func (h *homeNets) UnmarshalText(b []byte) error {
	*h = (*h)[:0]
	for _, f := range strings.Split(string(b), ",") {
		f = strings.TrimSpace(f)
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8 or fd00::/8", f)
		}
		*h = append(*h, p.Masked())
	}
	return nil
}

// workers checks a --workers value.
func checkWorkers(n int) error {
	if n < 1 || n > 256 {
		return fmt.Errorf("--workers must be between 1 and 256, not %d", n)
	}
	return nil
}

// checkHostEvents checks --host-events sources at start.
func checkHostEvents(specs []string) error {
	var errs []error
	for _, h := range specs {
		if err := feed.CheckSource(h); err != nil {
			errs = append(errs, fmt.Errorf("--host-events %w", err))
		}
	}
	return errors.Join(errs...)
}
