package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// recordFlags are the flow-record options every command that makes flows
// shares.
type recordFlags struct {
	Flows           string        `default:"-" placeholder:"PATH|-" help:"Where flow records go, one JSON object per line: a file (appended to, reopened on SIGHUP), or - for stdout."`
	HomeNets        homeNets      `placeholder:"CIDR,..." help:"Internal prefixes, comma-separated (default: HomeNets of --config, else RFC 1918 and ULA)."`
	CommunityIDSeed uint16        `placeholder:"N" help:"Community ID seed."`
	FlushInterval   time.Duration `default:"1s" help:"The longest a written record or alert waits before it reaches its file."`
}

// statsFlags are for commands that run until stopped.
type statsFlags struct {
	StatsInterval time.Duration `default:"1m" help:"How often a statistics line per source is logged (0: only at exit)."`
}

func (r *recordFlags) validate() error {
	if r.FlushInterval <= 0 {
		return fmt.Errorf("--flush-interval must be positive, not %v", r.FlushInterval)
	}
	return nil
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
