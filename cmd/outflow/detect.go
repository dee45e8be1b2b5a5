package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/destination"
)

// detectFlags are the detection options replay, live and collect share.
type detectFlags struct {
	Config       string         `placeholder:"FILE" help:"outflow.yaml: home networks, peer groups, analytics and their thresholds (default: the built-in defaults). Reloaded on SIGHUP."`
	Alerts       []string       `sep:"none" placeholder:"PATH|-|URL" help:"Run the analytics and write alerts here, one per line: a file (appended to, reopened on SIGHUP), - for stdout, or a receiver (as --flows); alerts for a receiver that is down wait in --spool. Repeat for several."`
	AlertsFormat string         `default:"json" enum:"json,ecs" help:"The alerts' format: json (Outflow's) or ecs (Elastic Common Schema)."`
	Spool        string         `placeholder:"DIR" help:"Where alerts for a receiver that is down wait on disk, delivered in order when it is back (default: beside --state, STATE.spool)."`
	State        string         `placeholder:"DIR" help:"Baselines, prevalence and dedup state: loaded at start, saved on a timer and at the end."`
	SaveEvery    *time.Duration `placeholder:"DURATION" help:"With --state: how often the state is saved (default: State.SaveEvery of --config, else 5m)."`
}

func (d *detectFlags) validate() error {
	if len(d.Alerts) == 0 && d.State != "" {
		return errors.New("--state needs --alerts")
	}
	if len(d.Alerts) == 0 && d.Spool != "" {
		return errors.New("--spool needs --alerts")
	}
	if err := checkTargets("--alerts", d.Alerts, d.AlertsFormat); err != nil {
		return err
	}
	if d.Config == "" {
		// Without a config, no State.Path can name where the spool goes.
		return d.needSpool("")
	}
	if d.SaveEvery != nil && *d.SaveEvery <= 0 {
		return fmt.Errorf("--save-every must be positive, not %v", *d.SaveEvery)
	}
	return nil
}

// detection reads --config (or the defaults), puts --home-nets in it, and
// builds what the sensor needs to run the analytics, or nil when no
// --alerts was asked for. The config's HomeNets are what flows are
// classified with. Alerts go to a sink of outs.
func (d *detectFlags) detection(nets homeNets, outs *outputs) (*sensor.Detection, *detect.Config, error) {
	cfg := detect.Compiled()
	if d.Config != "" {
		var err error
		if cfg, err = sensor.LoadDetectConfig(d.Config); err != nil {
			return nil, nil, fmt.Errorf("--config: %w", err)
		}
	}
	if len(nets) > 0 {
		cfg.SetHomeNets(nets)
	}
	if len(d.Alerts) == 0 {
		return nil, cfg, nil
	}
	every := 5 * time.Minute
	if d.SaveEvery != nil {
		every = *d.SaveEvery
	} else if d.Config != "" && cfg.State.SaveEvery > 0 {
		every = cfg.State.SaveEvery.D()
	}
	path := d.State
	if path == "" {
		path = cfg.State.Path
	}
	outs.spool = d.Spool
	if outs.spool == "" && path != "" {
		outs.spool = filepath.Clean(path) + ".spool"
	}
	if err := d.needSpool(outs.spool); err != nil {
		return nil, nil, err
	}
	alerts, err := outs.output("--alerts", true, targets(d.Alerts, d.AlertsFormat))
	if err != nil {
		return nil, nil, err
	}
	return &sensor.Detection{Config: cfg, StatePath: path, SaveEvery: every, AlertOutputs: alerts}, cfg, nil
}

// needSpool says alerts for a receiver need a spool when none is given.
func (d *detectFlags) needSpool(spool string) error {
	if spool != "" || d.Spool != "" || d.State != "" {
		return nil
	}
	for _, t := range d.Alerts {
		if destination.IsReceiver(t) {
			return fmt.Errorf("--alerts %s: alerts for a receiver wait on disk while it is down: give --spool DIR (or --state DIR, beside which it goes)", redactURL(t))
		}
	}
	return nil
}

// redactURL is a target without its query, which may hold a key.
func redactURL(t string) string {
	if i := strings.IndexByte(t, '?'); i >= 0 {
		return t[:i] + "?…"
	}
	return t
}

// reload reads --config again (SIGHUP) and puts it in force in the
// running analytics. A config that does not load is refused and the
// running one stays. The home networks stay those the sensor started
// with: every record already written was classified by them.
func (d *detectFlags) reload(e *env, det *sensor.Detection, homeFromFlag bool) {
	if det == nil || d.Config == "" {
		return
	}
	cfg, err := sensor.LoadDetectConfig(d.Config)
	if err != nil {
		e.log.Error("config reload refused; the running config stays in force", "config", d.Config, "err", err.Error())
		return
	}
	putInForce(e, d.Config, det, cfg, det.Config.HomePrefixes(), !homeFromFlag)
}

// putInForce puts a reloaded detection config in force in the running
// analytics (det may be nil: no analytics run), with the home networks the
// sensor started with: every record already written was classified by
// them. A change to them is said to need a restart, when warnHome.
func putInForce(e *env, path string, det *sensor.Detection, cfg *detect.Config, home []netip.Prefix, warnHome bool) {
	if warnHome && !slices.Equal(cfg.HomePrefixes(), home) {
		e.log.Warn("HomeNets changed; it takes effect at the next start", "config", path)
	}
	cfg.SetHomeNets(home)
	if det != nil && det.Reconfigure(cfg) {
		e.log.Info("config reloaded", "config", path)
	}
}

// checkCmd validates a config file: `outflow check --config FILE`.
type checkCmd struct {
	Config string `placeholder:"FILE" help:"The config file to check: detection keys, and for outflow run its Sources, Outputs and Logging."`
	Print  bool   `help:"Print the detection config with every default filled in."`
}

func (c *checkCmd) Run(e *env) error {
	if c.Config == "" {
		if c.Print {
			_, err := e.stdout.Write(detect.Compiled().Marshal())
			return err
		}
		return usageError{errors.New("check: --config FILE is required")}
	}
	var cfg *detect.Config
	if sensor.IsRunConfig(c.Config) {
		rc, err := sensor.LoadRunConfig(c.Config)
		if err != nil {
			return err
		}
		cfg = rc.Detect
	} else {
		var err error
		if cfg, err = sensor.LoadDetectConfig(c.Config); err != nil {
			return err
		}
	}
	if c.Print {
		_, err := e.stdout.Write(cfg.Marshal())
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", c.Config)
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
	fmt.Fprintf(w, "outflow: detection: %d flows, %d SaaS audit events, %d alerts %v, %d repeats suppressed; state %d entries, %d bytes\n",
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
