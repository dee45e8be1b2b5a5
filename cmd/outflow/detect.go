package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/sensor"
)

// detectFlags are the detection options replay, live and collect share.
type detectFlags struct {
	fs        *flag.FlagSet
	config    *string
	alerts    *string
	state     *string
	saveEvery *time.Duration
}

func addDetectFlags(fs *flag.FlagSet) *detectFlags {
	return &detectFlags{
		fs:        fs,
		config:    fs.String("config", "", "outflow.yaml: home networks, peer groups, analytics and their thresholds (default: the built-in defaults)"),
		alerts:    fs.String("alerts", "", "run the analytics and write alerts here, one JSON object per line: a file, or - for stdout"),
		state:     fs.String("state", "", "baselines, prevalence and dedup state: loaded at start, saved on a timer and at the end"),
		saveEvery: fs.Duration("save-every", 5*time.Minute, "with --state: how often the state is saved"),
	}
}

// detection builds what the sensor needs to run the analytics, or nil
// when no --alerts was asked for. nets, from --home-nets, override the
// config's HomeNets; the returned prefixes are what flows are classified
// with.
func (d *detectFlags) detection(nets []netip.Prefix, stdout io.Writer) (*sensor.Detection, []netip.Prefix, func() error, error) {
	cfg := detect.Compiled()
	if *d.config != "" {
		var err error
		if cfg, err = detect.LoadConfig(*d.config); err != nil {
			return nil, nil, nil, fmt.Errorf("--config: %w", err)
		}
	}
	if nets != nil {
		cfg.SetHomeNets(nets)
	} else if *d.config != "" {
		nets = cfg.HomePrefixes()
	}
	if *d.alerts == "" {
		if *d.state != "" {
			return nil, nil, nil, errors.New("--state needs --alerts")
		}
		return nil, nets, func() error { return nil }, nil
	}
	out, closeOut, err := openOutput(*d.alerts, stdout)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--alerts: %w", err)
	}
	every := *d.saveEvery
	if *d.config != "" && cfg.State.SaveEvery > 0 && !d.set("save-every") {
		every = cfg.State.SaveEvery.D()
	}
	path := *d.state
	if path == "" {
		path = cfg.State.Path
	}
	return &sensor.Detection{Config: cfg, StatePath: path, SaveEvery: every, Alerts: out}, nets, closeOut, nil
}

func (d *detectFlags) set(name string) bool {
	found := false
	d.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// check validates a config file: `outflow check --config FILE`.
func check(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "the config file to check")
	dump := fs.Bool("print", false, "print the config with every default filled in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" {
		if *dump {
			_, err := stdout.Write(detect.Compiled().Marshal())
			return err
		}
		return errors.New("check: --config FILE is required")
	}
	cfg, err := detect.LoadConfig(*config)
	if err != nil {
		return err
	}
	if *dump {
		_, err = stdout.Write(cfg.Marshal())
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", *config)
	return nil
}

func printDetectSummary(w io.Writer, d *sensor.DetectStats) {
	if d == nil {
		return
	}
	var parts []string
	for _, k := range sortedKeys(d.ByAnalytic) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, d.ByAnalytic[k]))
	}
	fmt.Fprintf(w, "outflow: detection: %d flows, %d host events, %d alerts %v, %d repeats suppressed; state %d entries, %d bytes\n",
		d.Flows, d.Events, d.Alerts, parts, d.Suppressed, d.StateEntries, d.StateBytes)
}

func sortedKeys(m map[string]uint64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
