package sensor

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/internal/fserr"
	"github.com/outflow-sensor/outflow/internal/yamlcfg"
	"gopkg.in/yaml.v3"
)

// RunConfig is what `outflow run` reads from one file: the sources, the
// outputs and the logging of a sensor. The same file holds the detection
// keys (HomeNets, PeerGroups, the analytics, State), which are detect's.
type RunConfig struct {
	Sources SourcesConfig `yaml:"Sources"`
	Outputs OutputsConfig `yaml:"Outputs"`
	Logging LoggingConfig `yaml:"Logging"`
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
	// HostEvents are host-event sources: files (followed), syslog+udp://,
	// syslog+tcp://, http://, kafka://.
	HostEvents []string `yaml:"HostEvents"`
	// Directories are watched for capture files, each read once when it
	// has stopped growing.
	Directories     []DirectoryConfig `yaml:"Directories"`
	Inspect         bool              `yaml:"Inspect"`
	CommunityIDSeed uint16            `yaml:"CommunityIDSeed"`
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
}

// SinkConfig is one output: a JSON-lines file, or "-" for stdout.
type SinkConfig struct {
	Path string `yaml:"Path"`
	// RotateSize and RotateAge rotate a file by renaming it with the time
	// of rotation (0: never); Keep bounds how many rotated files stay.
	RotateSize detect.Bytes    `yaml:"RotateSize"`
	RotateAge  detect.Duration `yaml:"RotateAge"`
	Keep       int             `yaml:"Keep"`
}

// LoggingConfig is how the sensor logs.
type LoggingConfig struct {
	Level         string          `yaml:"Level"`  // debug, info, warn, error
	Format        string          `yaml:"Format"` // text, json
	StatsInterval detect.Duration `yaml:"StatsInterval"`
}

// DefaultRunConfig is what a run config starts from.
func DefaultRunConfig() RunConfig {
	return RunConfig{
		Sources: SourcesConfig{StitchWindow: detect.Duration(time.Minute), Inspect: true},
		Outputs: OutputsConfig{FlushInterval: detect.Duration(time.Second)},
		Logging: LoggingConfig{Level: "info", Format: "text", StatsInterval: detect.Duration(time.Minute)},
	}
}

// runKeys are the top-level keys RunConfig reads; the rest are detect's.
var runKeys = map[string]bool{"Sources": true, "Outputs": true, "Logging": true}

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
		u, err := url.Parse(l)
		if err != nil || (u.Scheme != "netflow" && u.Scheme != "sflow") || u.Port() == "" {
			bad(fmt.Sprintf("Sources.FlowListeners[%d]", i), "%q: want netflow://HOST:PORT or sflow://HOST:PORT", l)
		}
	}
	for i, h := range s.HostEvents {
		if err := feed.CheckSource(h); err != nil {
			bad(fmt.Sprintf("Sources.HostEvents[%d]", i), "%v", err)
		}
	}
	if s.StitchWindow <= 0 {
		bad("Sources.StitchWindow", "must be positive")
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
	if len(o.Flows)+len(o.Alerts) == 0 {
		bad("Outputs", "names nowhere to write: give Flows or Alerts")
	}
	for _, list := range []struct {
		key   string
		sinks []SinkConfig
	}{{"Outputs.Flows", o.Flows}, {"Outputs.Alerts", o.Alerts}} {
		for i, sc := range list.sinks {
			k := fmt.Sprintf("%s[%d]", list.key, i)
			if sc.Path == "" {
				bad(k+".Path", "missing: a file, or - for stdout")
			}
			if sc.RotateAge < 0 || sc.Keep < 0 {
				bad(k, "RotateAge and Keep must not be negative")
			}
			if sc.Path == "-" && (sc.RotateSize > 0 || sc.RotateAge > 0) {
				bad(k, "stdout cannot be rotated")
			}
		}
	}
	if o.HostEventsOut != "" && !s.Capture.OnHost {
		bad("Outputs.HostEventsOut", "needs Sources.Capture.OnHost")
	}
	if o.FlushInterval <= 0 {
		bad("Outputs.FlushInterval", "must be positive")
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
