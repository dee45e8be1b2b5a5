package sensor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/fleet"
	"github.com/outflow-sensor/outflow/internal/fserr"
	"github.com/outflow-sensor/outflow/internal/yamlcfg"
	"github.com/outflow-sensor/outflow/sensor/collect"
	"github.com/outflow-sensor/outflow/sensor/destination"
	"github.com/outflow-sensor/outflow/sensor/encode"
	"github.com/outflow-sensor/outflow/sensor/sink/kafka"
	"gopkg.in/yaml.v3"
)

// RunConfig is what `outflow run` reads from one file: the sources, the
// outputs and the logging of a sensor. The same file holds the detection
// keys (HomeNets, PeerGroups, the analytics, State), which are detect's.
type RunConfig struct {
	Sources SourcesConfig `yaml:"Sources"`
	Outputs OutputsConfig `yaml:"Outputs"`
	Logging LoggingConfig `yaml:"Logging"`
	Fleet   FleetConfig   `yaml:"Fleet"`
	Metrics MetricsConfig `yaml:"Metrics"`
	// Privileges is who the sensor runs as once its sockets are open.
	Privileges PrivilegesConfig `yaml:"Privileges"`
	// Detect is the file's detection config, compiled.
	Detect *detect.Config `yaml:"-"`
}

// SourcesConfig is where traffic and host events come from.
type SourcesConfig struct {
	// Capture is AF_PACKET capture from interfaces.
	Capture CaptureConfig `yaml:"Capture"`
	// FlowListeners receive NetFlow v5/v9, IPFIX (netflow://HOST:PORT)
	// and sFlow (sflow://HOST:PORT).
	FlowListeners []string        `yaml:"FlowListeners"`
	StitchWindow  detect.Duration `yaml:"StitchWindow"`
	SamplingRate  uint32          `yaml:"SamplingRate"`
	// FlowBudget bounds what the flow listeners keep per exporter.
	FlowBudget FlowBudget `yaml:"FlowBudget"`
	// HostEvents are host-event sources: files (followed), syslog+udp://,
	// syslog+tcp://, http://, kafka://.
	HostEvents []string `yaml:"HostEvents"`
	// HostEventBudget bounds the process index the host events fill.
	HostEventBudget HostEventBudget `yaml:"HostEventBudget"`
	// Directories are watched for capture files, each read once when it
	// has stopped growing.
	Directories     []DirectoryConfig `yaml:"Directories"`
	Inspect         bool              `yaml:"Inspect"`
	CommunityIDSeed uint16            `yaml:"CommunityIDSeed"`
	// MaxFlows is the flows tracked at once, shared by a source's workers
	// (0: 1,048,576, about 250 MB); past it the oldest are ended early,
	// counted as evicted.
	MaxFlows int `yaml:"MaxFlows"`
}

// HostEventBudget is the memory the process index may hold
// (enrich/process.Config): past MaxBytes it evicts and refuses, counted by
// reason; command lines are cut at MaxCommandLine and marked.
type HostEventBudget struct {
	MaxBytes       detect.Bytes `yaml:"MaxBytes"`
	MaxCommandLine detect.Bytes `yaml:"MaxCommandLine"`
	// ListenerBytes bounds what each syslog TCP/TLS or HTTP listener holds
	// of records begun and not finished, over all its connections, beyond
	// each record's first 64 KiB (feed.Pending); past it a record is read
	// and dropped, counted as "budget".
	ListenerBytes detect.Bytes `yaml:"ListenerBytes"`
}

// FlowBudget is the memory the flow listeners' decoder may hold
// (sensor/collect.Config): per exporter, TemplateBytes of templates and
// HeldBytes of data sets waiting for theirs; TotalBytes for every exporter
// together. Over it a template is refused or the exporter's oldest held set
// dropped, counted by reason; an exporter silent for ExporterIdle is
// forgotten with its templates.
type FlowBudget struct {
	TemplateBytes detect.Bytes    `yaml:"TemplateBytes"`
	HeldBytes     detect.Bytes    `yaml:"HeldBytes"`
	TotalBytes    detect.Bytes    `yaml:"TotalBytes"`
	ExporterIdle  detect.Duration `yaml:"ExporterIdle"`
}

// DecoderConfig is the export decoder's config under this budget, with the
// sampling rate to apply (0: the exporters'); zero values keep the
// decoder's defaults.
func (b FlowBudget) DecoderConfig(samplingRate uint32) collect.Config {
	c := collect.DefaultConfig()
	c.SamplingRate = samplingRate
	if b.TemplateBytes > 0 {
		c.TemplateBytes = int64(min(uint64(b.TemplateBytes), 1<<62))
	}
	if b.HeldBytes > 0 {
		c.HoldBytes = int64(min(uint64(b.HeldBytes), 1<<62))
	}
	if b.TotalBytes > 0 {
		c.TotalBytes = int64(min(uint64(b.TotalBytes), 1<<62))
	}
	if b.ExporterIdle > 0 {
		c.ExporterIdle = b.ExporterIdle.D()
	}
	return c
}

// IndexConfig is the process index's config under this budget; zero
// values keep the index's defaults.
func (b HostEventBudget) IndexConfig() process.Config {
	c := process.DefaultConfig()
	if b.MaxBytes > 0 {
		c.MaxBytes = int64(min(uint64(b.MaxBytes), 1<<62))
	}
	if b.MaxCommandLine > 0 {
		c.MaxCommandLine = int(min(uint64(b.MaxCommandLine), 1<<30))
	}
	return c
}

// CaptureConfig is capture from interfaces: each worker reads every
// interface through its own socket of the interface's fanout group, so
// both directions of a flow seen on two interfaces (a tap's two halves)
// meet in one worker's table.
type CaptureConfig struct {
	Interfaces []string `yaml:"Interfaces"`
	Workers    int      `yaml:"Workers"`
	Filter     string   `yaml:"Filter"` // a tcpdump expression
	// OnHost: the sensor runs on the host whose traffic this is, and
	// attributes flows to processes from /proc.
	OnHost bool `yaml:"OnHost"`
}

// DirectoryConfig is a directory watched for captures.
type DirectoryConfig struct {
	Path    string `yaml:"Path"`
	Pattern string `yaml:"Pattern"` // a shell pattern of file names
	// Settle is how long a file must stay the same size before it is
	// read: a capture still being written is not read half.
	Settle detect.Duration `yaml:"Settle"`
}

// OutputsConfig says where records and alerts go.
type OutputsConfig struct {
	Flows  []SinkConfig `yaml:"Flows"`
	Alerts []SinkConfig `yaml:"Alerts"`
	// HostEventsOut, with Sources.Capture.OnHost, receives what /proc
	// attribution found as host events, which replay --host-events reads.
	HostEventsOut string          `yaml:"HostEventsOut"`
	FlushInterval detect.Duration `yaml:"FlushInterval"`
	// Spool is the directory where alerts for a receiver that is down wait
	// on disk (each receiver has its own subdirectory), bounded by
	// SpoolMaxBytes per receiver. Default: beside the state, STATE.spool.
	Spool         string       `yaml:"Spool"`
	SpoolMaxBytes detect.Bytes `yaml:"SpoolMaxBytes"`
	// QueueMaxBytes bounds the records waiting in memory per receiver
	// (flows; alerts when their spool is full): past it they are dropped
	// and counted.
	QueueMaxBytes detect.Bytes `yaml:"QueueMaxBytes"`
	// Report, with Sources.Directories only, is an HTML lab report of the
	// captures read, written when the sensor stops (docs/report.md).
	Report string `yaml:"Report"`
}

// SinkConfig is one output: a file or stdout (Path), or a receiver (URL),
// in a Format.
type SinkConfig struct {
	// Path is a file, appended to and reopened on SIGHUP, or - for stdout.
	Path string `yaml:"Path"`
	// URL is a receiver: syslog+udp://, syslog+tcp://, syslog+tls://
	// HOST:PORT, https://HOST/PATH (a webhook), kafka://BROKER,.../TOPIC.
	URL string `yaml:"URL"`
	// Format is json (Outflow's own, the default), ecs, or zeek (conn.log
	// TSV, flows to a file or stdout only).
	Format string `yaml:"Format"`
	// RotateSize and RotateAge rotate a file by renaming it with the time
	// of rotation (0: never); Keep bounds how many rotated files stay.
	RotateSize detect.Bytes    `yaml:"RotateSize"`
	RotateAge  detect.Duration `yaml:"RotateAge"`
	Keep       int             `yaml:"Keep"`
}

// FleetConfig is how a sensor shares what the learning analytics know
// (prevalence of destinations, uploads per host and day) with the other
// sensors of its organisation, through Kafka (docs/fleet.md).
type FleetConfig struct {
	// URL is kafka://BROKER,.../PREFIX with the Kafka sink's options
	// (tls, ca, sasl, user, password_file...); PREFIX starts the topics'
	// names. Empty: the sensor learns alone.
	URL string `yaml:"URL"`
	// SensorID names this sensor in the fleet (default: the host name).
	SensorID string `yaml:"SensorID"`
	// CatchUp bounds how long a start waits to read what the fleet
	// learnt before it judges flows.
	CatchUp detect.Duration `yaml:"CatchUp"`
}

// FleetOf is the fleet client's config a FleetConfig names, nil when the
// sensor learns alone; the TLS and SASL files are read here.
func FleetOf(c FleetConfig) (*fleet.Config, error) {
	if c.URL == "" {
		return nil, nil
	}
	kc, err := kafka.ParseURL(c.URL)
	if err != nil {
		return nil, err
	}
	tc, mech, err := kc.Security()
	if err != nil {
		return nil, err
	}
	return &fleet.Config{Brokers: kc.Brokers, Topic: kc.Topic, SensorID: c.SensorID, TLS: tc, SASL: mech,
		CatchUp: c.CatchUp.D()}, nil
}

// MetricsConfig is where Prometheus scrapes the sensor: /metrics, /healthz
// and /readyz (docs/metrics.md).
type MetricsConfig struct {
	// Listen is HOST:PORT; a port alone (":9464") is loopback. Empty: no
	// metrics. Another host is served only when named, since anyone who
	// reaches the port reads what the sensor sees.
	Listen string `yaml:"Listen"`
	// Pprof also serves Go's profiles under /debug/pprof/ on the same
	// address, to see where a running sensor's memory and time go.
	Pprof bool `yaml:"Pprof"`
}

// MetricsAddr is the address metrics are served on, loopback when no host
// is given, and whether another host was named on purpose.
func MetricsAddr(listen string) (addr string, named bool, err error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", false, fmt.Errorf("%q: want HOST:PORT or :PORT", listen)
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), false, nil
	}
	return listen, true, nil
}

// PrivilegesConfig is what a sensor started as root gives up.
type PrivilegesConfig struct {
	// User: once the capture sockets and every listener are open, the
	// sensor becomes this user (its uid, gid and groups, on every thread)
	// and keeps no capability. Every file it writes later must be the
	// user's to write; it is checked, as the user, at start. Empty: it
	// stays who it was started as (systemd's User= chooses then).
	User string `yaml:"User"`
}

// LoggingConfig is how the sensor logs.
type LoggingConfig struct {
	Level         string          `yaml:"Level"`  // debug, info, warn, error
	Format        string          `yaml:"Format"` // text, json
	StatsInterval detect.Duration `yaml:"StatsInterval"`
	// BugReports is the directory where an input that reached a bug is
	// kept (internal/bugreport); empty: only the log line has it.
	BugReports string `yaml:"BugReports"`
}

// defaultQueueMaxBytes is Outputs.QueueMaxBytes unless set.
const defaultQueueMaxBytes = 16 << 20

// DefaultRunConfig is what a run config starts from.
func DefaultRunConfig() RunConfig {
	return RunConfig{
		Sources: SourcesConfig{StitchWindow: detect.Duration(time.Minute), Inspect: true,
			HostEventBudget: HostEventBudget{MaxBytes: 64 << 20, MaxCommandLine: 4 << 10, ListenerBytes: feed.DefaultPendingBytes},
			FlowBudget:      defaultFlowBudget()},
		Outputs: OutputsConfig{FlushInterval: detect.Duration(time.Second), SpoolMaxBytes: 256 << 20, QueueMaxBytes: defaultQueueMaxBytes},
		Logging: LoggingConfig{Level: "info", Format: "text", StatsInterval: detect.Duration(time.Minute)},
	}
}

// defaultFlowBudget is the export decoder's defaults, as a FlowBudget.
func defaultFlowBudget() FlowBudget {
	c := collect.DefaultConfig()
	return FlowBudget{TemplateBytes: detect.Bytes(c.TemplateBytes), HeldBytes: detect.Bytes(c.HoldBytes),
		TotalBytes: detect.Bytes(c.TotalBytes), ExporterIdle: detect.Duration(c.ExporterIdle)}
}

// runKeys are the top-level keys RunConfig reads; the rest are detect's.
var runKeys = map[string]bool{"Sources": true, "Outputs": true, "Logging": true, "Fleet": true, "Metrics": true, "Privileges": true}

// LoadRunConfig reads a run config file. Every problem of the file is
// reported, each with its line and key.
func LoadRunConfig(path string) (*RunConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read the config: %w", path, fserr.Plain(err))
	}
	return ParseRunConfig(path, b)
}

// ParseRunConfig is LoadRunConfig on bytes read already.
func ParseRunConfig(name string, b []byte) (*RunConfig, error) {
	c := DefaultRunConfig()
	mine, rest, lines, err := splitTop(name, b)
	if err != nil {
		return nil, err
	}
	var errs []error
	if mine != nil {
		errs = append(errs, yamlcfg.Decode(name, mine, &c, "")...)
	}
	d, err := detect.ParseNode(name, rest)
	if err != nil {
		errs = append(errs, unjoin(err)...)
	}
	c.Detect = d
	errs = append(errs, c.check(name)...)
	if len(errs) > 0 {
		return nil, errors.Join(yamlcfg.Locate(errs, lines)...)
	}
	return &c, nil
}

// splitTop parses a config file and splits its top-level mapping into the
// sensor's keys (runKeys) and the rest, detect's, each node keeping its
// lines, which are noted by key. A file whose top is not a mapping is all
// the sensor's, whose decoder says what is wrong with it; an empty file is
// neither's (nil, nil).
func splitTop(name string, b []byte) (mine, rest *yaml.Node, lines map[string]int, err error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, nil, nil, &yamlcfg.Error{File: name, Key: "(file)", Msg: err.Error()}
	}
	lines = map[string]int{}
	if len(root.Content) == 0 {
		return nil, nil, lines, nil
	}
	top := root.Content[0]
	yamlcfg.KeyLines(top, "", lines)
	if top.Kind != yaml.MappingNode {
		return top, nil, lines, nil
	}
	mine = &yaml.Node{Kind: yaml.MappingNode, Line: top.Line}
	rest = &yaml.Node{Kind: yaml.MappingNode, Line: top.Line}
	for i := 0; i+1 < len(top.Content); i += 2 {
		dst := rest
		if runKeys[top.Content[i].Value] {
			dst = mine
		}
		dst.Content = append(dst.Content, top.Content[i], top.Content[i+1])
	}
	return mine, rest, lines, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// check finds values that decode but cannot work.
func (c *RunConfig) check(file string) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &yamlcfg.Error{File: file, Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	s := &c.Sources
	if len(s.Capture.Interfaces)+len(s.FlowListeners)+len(s.Directories) == 0 {
		bad("Sources", "names no traffic to watch: give Capture.Interfaces, FlowListeners or Directories")
	}
	seen := map[string]bool{}
	for i, name := range s.Capture.Interfaces {
		k := fmt.Sprintf("Sources.Capture.Interfaces[%d]", i)
		switch {
		case name == "":
			bad(k, "empty: the interface to capture on")
		case seen[name]:
			bad(k, "%q is listed twice", name)
		}
		seen[name] = true
	}
	if s.Capture.Workers == 0 {
		s.Capture.Workers = 1
	} else if s.Capture.Workers < 1 || s.Capture.Workers > 256 {
		bad("Sources.Capture.Workers", "must be between 1 and 256, not %d", s.Capture.Workers)
	}
	for i, l := range s.FlowListeners {
		if _, err := parseFlowListener(l); err != nil {
			bad(fmt.Sprintf("Sources.FlowListeners[%d]", i), "%v", err)
		}
	}
	for i, h := range s.HostEvents {
		if err := feed.CheckSource(h); err != nil {
			bad(fmt.Sprintf("Sources.HostEvents[%d]", i), "%v", err)
		}
	}
	if err := CheckMaxFlows(s.MaxFlows); err != nil {
		bad("Sources.MaxFlows", "%v", err)
	}
	if s.StitchWindow <= 0 {
		bad("Sources.StitchWindow", "must be positive")
	}
	if s.FlowBudget.ExporterIdle < 0 {
		bad("Sources.FlowBudget.ExporterIdle", "must not be negative")
	}
	if fb := s.FlowBudget; fb.TotalBytes > 0 && (fb.TemplateBytes > fb.TotalBytes || fb.HeldBytes > fb.TotalBytes) {
		bad("Sources.FlowBudget.TotalBytes", "%d bytes is less than one exporter's TemplateBytes or HeldBytes", uint64(fb.TotalBytes))
	}
	for i, d := range s.Directories {
		k := fmt.Sprintf("Sources.Directories[%d]", i)
		if d.Path == "" {
			bad(k+".Path", "missing: the directory to watch")
		}
		if d.Pattern == "" {
			s.Directories[i].Pattern = "*.pcap*"
		} else if _, err := filepath.Match(d.Pattern, ""); err != nil {
			bad(k+".Pattern", "%q is not a shell pattern", d.Pattern)
		}
		if d.Settle == 0 {
			s.Directories[i].Settle = detect.Duration(5 * time.Second)
		} else if d.Settle < 0 {
			bad(k+".Settle", "must not be negative")
		}
	}
	o := &c.Outputs
	if len(o.Flows)+len(o.Alerts) == 0 && o.Report == "" {
		bad("Outputs", "names nowhere to write: give Flows, Alerts or Report")
	}
	if o.Report != "" && (len(s.Directories) == 0 || len(s.Capture.Interfaces)+len(s.FlowListeners) > 0) {
		bad("Outputs.Report", "is for captures read from Sources.Directories alone: a report of live traffic would never be finished")
	}
	for _, list := range []struct {
		key   string
		sinks []SinkConfig
	}{{"Outputs.Flows", o.Flows}, {"Outputs.Alerts", o.Alerts}} {
		for i, sc := range list.sinks {
			k := fmt.Sprintf("%s[%d]", list.key, i)
			switch {
			case sc.Path == "" && sc.URL == "":
				bad(k, "names nowhere to write: give Path (a file, or - for stdout) or URL (a receiver)")
			case sc.Path != "" && sc.URL != "":
				bad(k, "give Path or URL, not both")
			case sc.URL != "":
				if err := checkReceiver(sc.URL); err != nil {
					bad(k+".URL", "%v", err)
				}
				if sc.RotateSize > 0 || sc.RotateAge > 0 || sc.Keep > 0 {
					bad(k, "RotateSize, RotateAge and Keep are for files")
				}
			}
			if sc.RotateAge < 0 || sc.Keep < 0 {
				bad(k, "RotateAge and Keep must not be negative")
			}
			if sc.Path == "-" && (sc.RotateSize > 0 || sc.RotateAge > 0) {
				bad(k, "stdout cannot be rotated")
			}
			if err := checkFormat(sc, list.key == "Outputs.Alerts"); err != nil {
				bad(k+".Format", "%v", err)
			}
			if sc.URL != "" && list.key == "Outputs.Alerts" && o.Spool == "" && (c.Detect == nil || c.Detect.State.Path == "") {
				bad(k, "alerts to a receiver wait on disk while it is down: give Outputs.Spool (a directory) or State.Path")
			}
		}
	}
	if o.HostEventsOut != "" && !s.Capture.OnHost {
		bad("Outputs.HostEventsOut", "needs Sources.Capture.OnHost")
	}
	if o.FlushInterval <= 0 {
		bad("Outputs.FlushInterval", "must be positive")
	}
	if f := c.Fleet; f.URL != "" {
		if _, err := kafka.ParseURL(f.URL); err != nil {
			bad("Fleet.URL", "%v", err)
		}
		if len(o.Alerts) == 0 {
			bad("Fleet", "shares what the analytics learn: give Outputs.Alerts, which runs them")
		}
	}
	if c.Fleet.CatchUp < 0 {
		bad("Fleet.CatchUp", "must not be negative")
	}
	if m := c.Metrics.Listen; m != "" {
		if _, _, err := MetricsAddr(m); err != nil {
			bad("Metrics.Listen", "%v", err)
		}
	}
	if u := c.Privileges.User; u != "" {
		switch {
		case u == "root" || u == "0":
			bad("Privileges.User", "%q: name the unprivileged user to run as once the sockets are open", u)
		case s.Capture.OnHost:
			bad("Privileges.User", "cannot go with Sources.Capture.OnHost, which reads every process's sockets in /proc and so needs root: leave one out")
		}
	}
	l := &c.Logging
	if !strings.Contains(" debug info warn error ", " "+l.Level+" ") {
		bad("Logging.Level", "%q: want debug, info, warn or error", l.Level)
	}
	if l.Format != "text" && l.Format != "json" {
		bad("Logging.Format", "%q: want text or json", l.Format)
	}
	if l.StatsInterval < 0 {
		bad("Logging.StatsInterval", "must not be negative (0: no statistics lines)")
	}
	return errs
}

// CheckMaxFlows says whether a flow-table capacity can work: 0 (the
// default), or 1024 to 2^26 (about 16 GB of table).
func CheckMaxFlows(n int) error {
	if n != 0 && (n < 1024 || n > 1<<26) {
		return fmt.Errorf("must be between 1024 and 67108864, not %d (0: the default, 1048576)", n)
	}
	return nil
}

// checkFormat says whether a sink can take records in its format.
func checkFormat(sc SinkConfig, alerts bool) error {
	if sc.Format == "" {
		return nil
	}
	f, err := encode.ParseFormat(sc.Format)
	switch {
	case err != nil:
		return err
	case alerts && !f.CanAlerts():
		return fmt.Errorf("%s has no form for alerts: want json or ecs", f)
	case f.Header(time.Time{}) != nil && sc.URL != "":
		return fmt.Errorf("%s is a file format (its header starts each file): want json or ecs for a receiver", f)
	}
	return nil
}

// checkReceiver says whether a URL names a receiver a sink can send to.
func checkReceiver(u string) error {
	_, err := destination.Check(u)
	return err
}

// SpoolDir is the directory where alerts for receivers wait: Spool, else
// beside the state.
func (o *OutputsConfig) SpoolDir(statePath string) string {
	if o.Spool != "" || statePath == "" {
		return o.Spool
	}
	return filepath.Clean(statePath) + ".spool"
}

// LoadDetectConfig reads the detection keys of a config file, which may
// be a whole run config: its Sources, Outputs and Logging are left to
// `outflow run`, so one file serves every command.
func LoadDetectConfig(path string) (*detect.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read the config: %w", path, fserr.Plain(err))
	}
	mine, rest, _, err := splitTop(path, b)
	if err != nil {
		return nil, err
	}
	if mine != nil && rest == nil {
		return detect.ParseConfig(path, b) // not a mapping: detect says so
	}
	return detect.ParseNode(path, rest)
}

// IsRunConfig reports whether a config file names sources or outputs:
// then it is checked as a whole run config.
func IsRunConfig(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	mine, rest, _, err := splitTop(path, b)
	return err == nil && rest != nil && len(mine.Content) > 0
}
