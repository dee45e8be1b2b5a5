package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/outflow-sensor/outflow/internal/privdrop"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/destination"
)

// dropPlan is how a sensor started as root gives root up: the user it
// becomes once its sockets and listeners are open (sensor.RunOptions.Opened),
// and the paths it uses after, made and checked as that user at start,
// before anything is opened.
type dropPlan struct {
	user  *privdrop.User
	needs []privdrop.Need
}

// newDropPlan is the plan for becoming the named user; nil for "" (the
// sensor stays who it was started as). key names the flag or config key.
func newDropPlan(key, name string) (*dropPlan, error) {
	if name == "" {
		return nil, nil
	}
	u, err := privdrop.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if euid := os.Geteuid(); euid != 0 && euid != u.UID {
		return nil, fmt.Errorf("%s: switching to user %s needs root: outflow runs as uid %d", key, name, euid)
	}
	return &dropPlan{user: u}, nil
}

func (p *dropPlan) add(what, path string, a privdrop.Access, mode uint32) {
	if p != nil && path != "" {
		p.needs = append(p.needs, privdrop.Need{What: what, Path: path, Access: a, Mode: mode})
	}
}

// read is a file read after the drop: a config reloaded on SIGHUP, a
// followed file, a watched directory.
func (p *dropPlan) read(what, path string) { p.add(what, path, privdrop.Read, 0) }

// output is one place records go: a file appended to and reopened (its
// directory written too when it rotates), or the spool of alerts for a
// receiver.
func (p *dropPlan) output(what string, t target, alerts bool, spool string) {
	switch {
	case t.To == "" || t.To == "-":
	case !destination.IsReceiver(t.To):
		p.add(what, t.To, privdrop.Append, 0o640)
		if t.RotateSize > 0 || t.RotateAge > 0 {
			p.add(what+" (rotated in)", filepath.Dir(t.To), privdrop.Write, 0o750)
		}
	case alerts && spool != "":
		p.add("the spool", spool, privdrop.Write, 0o700)
		p.add("the spool of "+redactURL(t.To), filepath.Join(spool, destination.SpoolName(t.To)), privdrop.WriteAll, 0o700)
	}
}

// state is the state saved after the drop: the directory above it, where
// a save renames, and the state itself when there is one.
func (p *dropPlan) state(what, path string) {
	if path == "" {
		return
	}
	p.add(what+" (saved in)", filepath.Dir(filepath.Clean(path)), privdrop.Write, 0o750)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		p.add(what, path, privdrop.Write, 0o750)
	}
}

// hostEvents are the host-event files followed after the drop.
func (p *dropPlan) hostEvents(what string, specs []string) {
	for _, s := range specs {
		if s != "-" && s != "stdin:" && !destination.IsReceiver(s) {
			p.read(what, s)
		}
	}
}

// prepare makes and checks every path as the user, at start.
func (p *dropPlan) prepare() error {
	if p == nil {
		return nil
	}
	return p.user.Prepare(p.needs)
}

// owners are the users a state may belong to beside root and the user
// outflow runs as: the one it becomes, which saves it.
func (p *dropPlan) owners() []int {
	if p == nil {
		return nil
	}
	return []int{p.user.UID}
}

// opened is the sensor's RunOptions.Opened: the drop, once every source is
// open.
func (p *dropPlan) opened(e *env) func() error {
	if p == nil {
		return nil
	}
	return func() error {
		was := os.Geteuid()
		if err := privdrop.Drop(p.user); err != nil {
			return err
		}
		if was == 0 {
			e.log.Info("root given up: the sockets are open", "user", p.user.Name, "uid", p.user.UID, "gid", p.user.GID, "capabilities", "none")
		}
		return nil
	}
}

// trustFile refuses a config or a state that someone other than its owner
// and root could change (privdrop.Trusted); what names the flag or key.
func trustFile(what, path string, owners ...int) error {
	if path == "" {
		return nil
	}
	if err := privdrop.Trusted(path, owners...); err != nil {
		return fmt.Errorf("%s %w", what, err)
	}
	return nil
}

// errOnHostUser is --user (or Privileges.User) with on-host attribution.
var errOnHostUser = errors.New("--user cannot go with --on-host, which reads every process's sockets in /proc and so needs root: leave one out")

// runDropPlan is outflow run's plan: the user of --user, else of
// Privileges.User, and every path the config names that is used after the
// drop. The config and the state are checked for who may change them.
func runDropPlan(user, config string, rc *sensor.RunConfig) (*dropPlan, error) {
	key := "--user"
	if user == "" {
		user, key = rc.Privileges.User, "Privileges.User"
	} else if rc.Sources.Capture.OnHost {
		return nil, errors.New("--user cannot go with Sources.Capture.OnHost, which reads every process's sockets in /proc and so needs root: leave one out")
	}
	p, err := newDropPlan(key, user)
	if err != nil {
		return nil, err
	}
	state := rc.Detect.State.Path
	if err := trustFile("State.Path", state, p.owners()...); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, nil
	}
	p.read("--config", config)
	spool := rc.Outputs.SpoolDir(state)
	for _, o := range []struct {
		key    string
		sinks  []sensor.SinkConfig
		alerts bool
	}{{"Outputs.Flows", rc.Outputs.Flows, false}, {"Outputs.Alerts", rc.Outputs.Alerts, true}} {
		for i, t := range configTargets(o.sinks) {
			p.output(fmt.Sprintf("%s[%d]", o.key, i), t, o.alerts, spool)
		}
	}
	if len(rc.Outputs.Alerts) > 0 {
		p.state("State.Path", state)
	}
	p.add("Logging.BugReports", rc.Logging.BugReports, privdrop.Write, 0o700)
	p.output("Outputs.HostEventsOut", target{To: rc.Outputs.HostEventsOut}, false, "")
	p.output("Outputs.Report", target{To: rc.Outputs.Report}, false, "")
	p.hostEvents("Sources.HostEvents", rc.Sources.HostEvents)
	for i, d := range rc.Sources.Directories {
		p.read(fmt.Sprintf("Sources.Directories[%d]", i), d.Path)
	}
	return p, nil
}

// flagsDropPlan is the plan of live and collect, from their flags and the
// state their --config may name. The config and the state are checked for
// who may change them.
func flagsDropPlan(user string, rf *recordFlags, d *detectFlags, hostEvents []string, eventsOut, bugReports string) (*dropPlan, error) {
	if err := trustFile("--config", d.Config); err != nil {
		return nil, err
	}
	p, err := newDropPlan("--user", user)
	if err != nil {
		return nil, err
	}
	state := d.State
	if state == "" && d.Config != "" && len(d.Alerts) > 0 {
		// detection() reads the config again and says what is wrong
		// with it; here only its State.Path matters.
		if cfg, err := sensor.LoadDetectConfig(d.Config); err == nil {
			state = cfg.State.Path
		}
	}
	if len(d.Alerts) == 0 {
		state = ""
	}
	stateKey := "State.Path"
	if d.State != "" {
		stateKey = "--state"
	}
	if err := trustFile(stateKey, state, p.owners()...); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, nil
	}
	p.read("--config", d.Config)
	for _, t := range targets(rf.Flows, rf.FlowsFormat) {
		p.output("--flows", t, false, "")
	}
	spool := d.Spool
	if spool == "" && state != "" {
		spool = filepath.Clean(state) + ".spool"
	}
	for _, t := range targets(d.Alerts, d.AlertsFormat) {
		p.output("--alerts", t, true, spool)
	}
	p.state(stateKey, state)
	p.output("--host-events-out", target{To: eventsOut}, false, "")
	p.add("--bug-reports", bugReports, privdrop.Write, 0o700)
	p.hostEvents("--host-events", hostEvents)
	return p, nil
}

// reloadTrusted wraps a SIGHUP reload of --config: a config that someone
// other than its owner and root can now change is refused, and the
// running one stays.
func reloadTrusted(e *env, config string, reload func()) func() {
	return func() {
		if err := trustFile("--config", config); err != nil {
			e.log.Error("config reload refused; the running config stays in force", "config", config, "err", err.Error())
			return
		}
		reload()
	}
}
