package detect

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/internal/yamlcfg"
	"gopkg.in/yaml.v3"
)

// Config is outflow.yaml: the home networks, peer groups, where state is
// kept, and per analytic its switch and mutable elements, under the names
// the detection strategies use. Every key is documented in
// deploy/outflow.yaml. Each analytic's section is declared in the
// analytic's own file; the defaults are all here, in DefaultConfig.
type Config struct {
	HomeNets   []string            `yaml:"HomeNets"`
	PeerGroups map[string][]string `yaml:"PeerGroups"`
	State      StateConfig         `yaml:"State"`
	Baseline   BaselineConfig      `yaml:"Baseline"`
	Lists      ListsConfig         `yaml:"Lists"`
	// LineageDepth is how many ancestors of a flow's process the
	// analytics that name the program behind a transfer look at, after
	// the socket's owner (lineage.go): 0 the owner alone.
	LineageDepth int `yaml:"LineageDepth"`

	AN1511           ExfilAppConfig       `yaml:"AN1511"`
	AN1512           ToolUploadConfig     `yaml:"AN1512"`
	AN1513           MacAppConfig         `yaml:"AN1513"`
	AN1514           SaaSConfig           `yaml:"AN1514"`
	AN1515           DatastoreConfig      `yaml:"AN1515"`
	EncryptedChannel EncryptedConfig      `yaml:"EncryptedChannel"`
	RareHost         RareHostConfig       `yaml:"RareHost"`
	WebFileSharing   WebFileSharingConfig `yaml:"WebFileSharing"`
	DNSTunnel        DNSTunnelConfig      `yaml:"DNSTunnel"`

	homeNets []netip.Prefix
	peers    []peerGroup
	lists    *lists
}

type peerGroup struct {
	name string
	nets []netip.Prefix
}

// StateConfig says where baselines, prevalence and dedup keys are kept.
type StateConfig struct {
	Path      string   `yaml:"Path"`
	SaveEvery Duration `yaml:"SaveEvery"`
	MaxBytes  Bytes    `yaml:"MaxBytes"`
}

// BaselineConfig is shared by the analytics that learn: how long a
// baseline looks back, how much data it needs before it may alert, and
// how long an alert's key silences its repeats.
type BaselineConfig struct {
	TrainingPeriod  Duration `yaml:"TrainingPeriod"`
	ActivationAfter Duration `yaml:"ActivationAfter"`
	Dedup           Duration `yaml:"Dedup"`
}

// ListsConfig adds to the shipped lists, or replaces them.
type ListsConfig struct {
	Replace     bool     `yaml:"Replace"`
	Services    []string `yaml:"Services"` // "domain category"
	DynamicDNS  []string `yaml:"DynamicDNS"`
	DoH         []string `yaml:"DoH"`
	Tools       []string `yaml:"Tools"`
	OfficeApps  []string `yaml:"OfficeApps"`
	UnixLOLBins []string `yaml:"UnixLOLBins"`
}

// DefaultConfig is what Outflow runs with when no file says otherwise.
func DefaultConfig() *Config {
	c := &Config{
		HomeNets: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"},
		State:    StateConfig{SaveEvery: Duration(5 * time.Minute), MaxBytes: 64 << 20},
		// scp -> ssh, git -> git-remote-https, a shell script -> curl:
		// four covers a wrapper script's shells too.
		LineageDepth: process.DefaultLineageDepth,
		Baseline: BaselineConfig{
			TrainingPeriod: Duration(30 * 24 * time.Hour), ActivationAfter: Duration(14 * 24 * time.Hour),
			Dedup: Duration(24 * time.Hour),
		},
		AN1511: ExfilAppConfig{Enabled: true, MonitoredServices: []string{"cloud-storage", "file-sharing", "anonymous-file-drop", "paste-site"},
			MonitoredProcesses: []string{"winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "onenote.exe", "mspub.exe",
				"msaccess.exe", "powershell.exe", "pwsh.exe", "powershell_ise.exe"},
			ExfilVolumeThreshold: 10 << 20, TimeWindow: Duration(10 * time.Minute), MinOutInRatio: 5},
		AN1512: ToolUploadConfig{Enabled: true, MonitoredTools: []string{"tar", "curl", "wget", "python", "python3", "scp", "sftp",
			"rsync", "rclone", "nc", "ncat", "socat", "openssl", "zip", "7z", "gzip", "lftp", "pscp", "psftp"},
			DataVolumeThreshold: 10 << 20, TimeWindow: Duration(10 * time.Minute), MinOutInRatio: 5, FileEvents: 20},
		AN1513: MacAppConfig{Enabled: true, WatchedApplications: []string{"Preview", "TextEdit", "Pages", "Numbers", "Keynote",
			"Microsoft Word", "Microsoft Excel", "Microsoft PowerPoint", "osascript", "Script Editor"},
			DocumentPaths:       []string{"/Users/*/Documents/", "/Users/*/Desktop/", "/Users/*/Downloads/"},
			DataVolumeThreshold: 5 << 20, TimeWindow: Duration(10 * time.Minute)},
		AN1514: SaaSConfig{Enabled: true, APICallThreshold: 100, TimeWindow: Duration(time.Hour),
			Operations:           []string{"FileUploaded", "FileSyncUploadedFull", "FileCopied"},
			UserBaselineProfiles: BaselineProfiles{Multiplier: 3}},
		AN1515: DatastoreConfig{Enabled: true, Services: []string{"vmx", "hostd", "vpxa"},
			DatastoreTransferThreshold: 1 << 30, TimeWindow: Duration(time.Hour)},
		EncryptedChannel: EncryptedConfig{Enabled: true, PayloadEntropyThreshold: 7.5, EntropyThreshold: 7.0, MinSample: 256,
			TrafficVolumeThreshold: 4096, TrafficAsymmetryRatio: 5,
			PortProfiles: map[string][]string{
				"22": {"ssh"}, "53": {"dns"}, "80": {"http"}, "443": {"tls", "quic"}, "853": {"tls"}, "993": {"tls"},
				"995": {"tls"}, "465": {"tls"}, "636": {"tls"}, "8443": {"tls"}, "500": {"opaque"}, "4500": {"opaque"},
				"1194": {"opaque"}, "51820": {"opaque"}, "3478": {"opaque"}, "19302": {"opaque"},
				// One-way by design, on the ports IANA registers for them.
				"514": {"syslog"}, "601": {"syslog"}, "6514": {"tls", "syslog"}, "4739": {"ipfix"}, "4740": {"ipfix"},
				"6343": {"sflow"}, "5004": {"rtp"}, "5005": {"rtp"},
			},
			AllowedCryptoProcesses: []string{"chrome.exe", "msedge.exe", "firefox.exe", "lsass.exe", "svchost.exe", "msmpeng.exe",
				"onedrive.exe", "teams.exe", "ssh", "sshd", "ssh.exe", "chrome", "firefox", "openvpn", "wireguard-go", "tailscaled"},
			CryptoLibs: []string{"bcryptprimitives.dll", "bcrypt.dll", "ncrypt.dll", "rsaenh.dll", "dssenh.dll", "aes.dll",
				"libcrypto.so*", "libgcrypt.so*", "libsodium.so*", "libmbedcrypto.so*", "libnettle.so*", "libcrypto.*.dylib",
				"CommonCrypto*", "Security.framework*"},
			TimeWindow: Duration(5 * time.Minute)},
		RareHost: RareHostConfig{Enabled: true, RarePrevalence: 2, Global: true,
			Severities: RareSeverities{Base: Informational, Curl: Informational, UnixLOLBin: Low, VSCodeExtension: Low,
				OfficeLOLBin: High, LOLBin: Low, MSBuild: High, MSBuildT112701: Medium}},
		WebFileSharing: WebFileSharingConfig{Enabled: true, FirstUploadThreshold: 20 << 20, UploadHistory: Duration(30 * 24 * time.Hour),
			FileSharingServices: []string{"cloud-storage", "file-sharing", "anonymous-file-drop", "paste-site"}, TopN: 5,
			ToolCapabilities: []string{"tunnel", "tls-tunnel", "cloud-sync/exfil"}, ToolVolumeThreshold: 1 << 20,
			TimeWindow: Duration(10 * time.Minute)},
		// RITA's c2_subdomain_threshold (100) opens the question; names
		// past 40 bytes of subdomain at 3.5 bits a character are what
		// base32 and base64 encoders write (ordinary host names and CDN
		// labels are shorter and read nearer 3); 64 KiB is a small file.
		DNSTunnel: DNSTunnelConfig{Enabled: true, TimeWindow: Duration(10 * time.Minute), UniqueSubdomainThreshold: 100,
			SubdomainLengthThreshold: 40, EntropyThreshold: 3.5, QueryBytesThreshold: 64 << 10, DataAnswerBytesThreshold: 64 << 10,
			AllowedDomains: []string{"sophosxl.net", "mcafee.com", "spamhaus.org", "spamcop.net", "surbl.org"},
			ProcessWait:    Duration(30 * time.Minute), MaxKeys: 8192},
	}
	return c
}

// LoadConfig reads a config file over the defaults: keys it leaves out
// keep their default. Every problem is reported, each naming its key.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, b)
}

// ParseConfig is LoadConfig on bytes read already.
func ParseConfig(name string, b []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &ConfigError{File: name, Key: "(file)", Msg: err.Error()}
	}
	if len(root.Content) == 0 {
		return ParseNode(name, nil)
	}
	return ParseNode(name, root.Content[0])
}

// ParseNode is ParseConfig on a parsed mapping node (nil: the defaults),
// for a file whose other keys belong to the sensor.
func ParseNode(name string, n *yaml.Node) (*Config, error) {
	c := DefaultConfig()
	var errs []error
	lines := map[string]int{}
	if n != nil {
		errs = yamlcfg.Decode(name, n, c, "")
		yamlcfg.KeyLines(n, "", lines)
	}
	// Values that decoded are checked even when others did not, so one
	// run of outflow check names every problem of a file.
	errs = append(errs, c.compile(name)...)
	if len(errs) > 0 {
		return nil, errors.Join(yamlcfg.Locate(errs, lines)...)
	}
	return c, nil
}

// ConfigError is one problem with a config file, at a key and line.
type ConfigError = yamlcfg.Error

// compile checks values that decode but make no sense and prepares the
// lookups the analytics use.
func (c *Config) compile(file string) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &ConfigError{File: file, Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	c.homeNets = nil
	for i, s := range c.HomeNets {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			bad(fmt.Sprintf("HomeNets[%d]", i), "%q is not a CIDR prefix", s)
			continue
		}
		c.homeNets = append(c.homeNets, p.Masked())
	}
	c.peers = nil
	names := make([]string, 0, len(c.PeerGroups))
	for g := range c.PeerGroups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		pg := peerGroup{name: g}
		for i, s := range c.PeerGroups[g] {
			p, ok := parseNet(s)
			if !ok {
				bad(fmt.Sprintf("PeerGroups.%s[%d]", g, i), "%q is neither an address nor a CIDR prefix", s)
				continue
			}
			pg.nets = append(pg.nets, p)
		}
		c.peers = append(c.peers, pg)
	}
	b := &c.Baseline
	if b.TrainingPeriod <= 0 {
		bad("Baseline.TrainingPeriod", "must be positive")
	}
	if b.ActivationAfter > b.TrainingPeriod {
		bad("Baseline.ActivationAfter", "%v is longer than Baseline.TrainingPeriod (%v)", b.ActivationAfter, b.TrainingPeriod)
	}
	if b.Dedup < 0 {
		bad("Baseline.Dedup", "must not be negative")
	}
	if c.State.MaxBytes != 0 && c.State.MaxBytes < 32<<20 {
		bad("State.MaxBytes", "at least 32MB (fastcache's smallest cache)")
	}
	if c.LineageDepth < 0 || c.LineageDepth > process.MaxLineageDepth {
		bad("LineageDepth", "%d is not between 0 (the socket's owner alone) and %d", c.LineageDepth, process.MaxLineageDepth)
	}
	windows := map[string]Duration{"AN1511.TimeWindow": c.AN1511.TimeWindow, "AN1512.TimeWindow": c.AN1512.TimeWindow,
		"AN1513.TimeWindow": c.AN1513.TimeWindow, "AN1514.TimeWindow": c.AN1514.TimeWindow, "AN1515.TimeWindow": c.AN1515.TimeWindow,
		"EncryptedChannel.TimeWindow": c.EncryptedChannel.TimeWindow, "WebFileSharing.TimeWindow": c.WebFileSharing.TimeWindow}
	for k, w := range windows {
		if w <= 0 {
			bad(k, "must be positive")
		}
	}
	ratio := map[string]float64{"AN1511.MinOutInRatio": c.AN1511.MinOutInRatio, "AN1512.MinOutInRatio": c.AN1512.MinOutInRatio,
		"EncryptedChannel.TrafficAsymmetryRatio": c.EncryptedChannel.TrafficAsymmetryRatio}
	for k, r := range ratio {
		if r < 0 {
			bad(k, "must not be negative")
		}
	}
	c.EncryptedChannel.compile(bad)
	c.DNSTunnel.compile(bad)
	for i, h := range c.AN1515.ESXiHosts {
		if _, err := netip.ParseAddr(h); err != nil {
			bad(fmt.Sprintf("AN1515.ESXiHosts[%d]", i), "%q is not an address", h)
		}
	}
	if c.RareHost.RarePrevalence < 1 {
		bad("RareHost.RarePrevalence", "at least 1 (a destination only one internal host talks to)")
	}
	c.RareHost.Severities.check(bad)
	if c.AN1514.APICallThreshold < 1 {
		bad("AN1514.APICallThreshold", "at least 1")
	}
	if c.AN1514.UserBaselineProfiles.Multiplier < 1 {
		bad("AN1514.UserBaselineProfiles.Multiplier", "at least 1")
	}
	if c.WebFileSharing.TopN < 0 {
		bad("WebFileSharing.TopN", "must not be negative")
	}
	l, lerrs := buildLists(file, &c.Lists)
	errs = append(errs, lerrs...)
	c.lists = l
	for _, k := range []struct {
		key  string
		vals []string
	}{{"AN1511.MonitoredServices", c.AN1511.MonitoredServices}, {"WebFileSharing.FileSharingServices", c.WebFileSharing.FileSharingServices}} {
		for i, s := range k.vals {
			if !l.isCategory(s) && !strings.Contains(s, ".") {
				bad(fmt.Sprintf("%s[%d]", k.key, i), "%q is neither a service category (%s) nor a domain", s, strings.Join(l.categories(), ", "))
			}
		}
	}
	return errs
}

// Home reports whether a is in HomeNets.
func (c *Config) Home(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.homeNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// HomePrefixes returns HomeNets parsed.
func (c *Config) HomePrefixes() []netip.Prefix { return c.homeNets }

// PeerGroup names the peer group of an internal address ("" for none).
func (c *Config) PeerGroup(a netip.Addr) string {
	a = a.Unmap()
	for _, g := range c.peers {
		for _, p := range g.nets {
			if p.Contains(a) {
				return g.name
			}
		}
	}
	return ""
}

// Marshal writes the config as YAML, defaults included.
func (c *Config) Marshal() []byte {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	_ = enc.Encode(c)
	return buf.Bytes()
}

// Compiled returns the default config ready for use.
func Compiled() *Config {
	c := DefaultConfig()
	if errs := c.compile("defaults"); len(errs) > 0 {
		panic(errors.Join(errs...)) // the shipped defaults are tested
	}
	return c
}

// SetHomeNets replaces HomeNets, as a command line's --home-nets does.
func (c *Config) SetHomeNets(p []netip.Prefix) {
	c.homeNets = p
	c.HomeNets = c.HomeNets[:0]
	for _, x := range p {
		c.HomeNets = append(c.HomeNets, x.String())
	}
}

// parseNet reads an address or a CIDR prefix, as a masked prefix (an
// address is its own /32 or /128).
func parseNet(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}
