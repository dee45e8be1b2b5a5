package detect

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// loadShipped reads deploy/outflow.yaml's detection keys; its Sources,
// Outputs and Logging are the sensor's (sensor's tests read them).
func loadShipped(t *testing.T) (*Config, error) {
	b, err := os.ReadFile("../deploy/outflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	top := root.Content[0]
	rest := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(top.Content); i += 2 {
		switch top.Content[i].Value {
		case "Sources", "Outputs", "Logging", "Fleet", "Metrics", "Privileges":
		default:
			rest.Content = append(rest.Content, top.Content[i], top.Content[i+1])
		}
	}
	return ParseNode("../deploy/outflow.yaml", rest)
}

func TestDefaultsCompile(t *testing.T) {
	var missing []string
	c := Compiled()
	if !c.Home(mustAddr("10.1.2.3")) || c.Home(mustAddr("8.8.8.8")) {
		t.Error("HomeNets")
	}
	// The shipped config file documents every key with its default: it
	// must read back to the same values, and name every key.
	got, err := loadShipped(t)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Marshal()) != string(c.Marshal()) {
		t.Errorf("deploy/outflow.yaml differs from the defaults:\n%s\n---\n%s", got.Marshal(), c.Marshal())
	}
	raw, _ := os.ReadFile("../deploy/outflow.yaml")
	var walk func(t reflect.Type)
	walk = func(typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if tag := f.Tag.Get("yaml"); tag != "" {
				if !strings.Contains(string(raw), tag+":") {
					missing = append(missing, tag)
				}
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type)
				}
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	if len(missing) > 0 {
		t.Errorf("deploy/outflow.yaml does not name %v", missing)
	}
}

func TestConfigErrorsNameKeys(t *testing.T) {
	in := `HomeNets: [10.0.0.0/8, not-a-net]
Baseline:
  TrainingPeriod: 30d
  ActivationAfter: 45d
AN1511:
  ExfilVolumeThreshold: lots
  TimeWindw: 10m
EncryptedChannel:
  PayloadEntropyThreshold: 9
  PortProfiles:
    "443": [tls, carrier-pigeon]
RareHost:
  RarePrevalence: 0
`
	_, err := ParseConfig("outflow.yaml", []byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"outflow.yaml:7: AN1511.TimeWindw: unknown key",
		"outflow.yaml:6: AN1511.ExfilVolumeThreshold:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	// Values that decode are checked once the keys are right.
	in = strings.Replace(strings.Replace(in, "TimeWindw", "TimeWindow", 1), "lots", "10MB", 1)
	_, err = ParseConfig("outflow.yaml", []byte(in))
	msg = err.Error()
	for _, want := range []string{
		`HomeNets[1]: "not-a-net" is not a CIDR prefix`,
		"Baseline.ActivationAfter: 45d is longer than Baseline.TrainingPeriod (30d)",
		"EncryptedChannel.PayloadEntropyThreshold: 9: bits per byte",
		`EncryptedChannel.PortProfiles.443: "carrier-pigeon"`,
		"RareHost.RarePrevalence: at least 1",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestConfigOverDefaults(t *testing.T) {
	c, err := ParseConfig("x", []byte("AN1511:\n  ExfilVolumeThreshold: 20MB\nPeerGroups:\n  finance: [10.1.0.0/16, 10.2.0.7]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.AN1511.ExfilVolumeThreshold != 20e6 || c.AN1511.TimeWindow.D() != 10*time.Minute || !c.AN1511.Enabled {
		t.Errorf("%+v", c.AN1511)
	}
	if g := c.PeerGroup(mustAddr("10.2.0.7")); g != "finance" {
		t.Errorf("peer group %q", g)
	}
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "600": 10 * time.Minute} {
		if d, err := ParseDuration(in); err != nil || d != want {
			t.Errorf("%s: %v %v", in, d, err)
		}
	}
	for in, want := range map[string]uint64{"20MB": 20e6, "20MiB": 20 << 20, "512k": 512e3, "4096": 4096, "1.5GiB": 3 << 29} {
		if n, err := ParseBytes(in); err != nil || n != want {
			t.Errorf("%s: %v %v", in, n, err)
		}
	}
	if _, err := ParseBytes("-1"); err == nil {
		t.Error("negative bytes")
	}
}

func TestLists(t *testing.T) {
	l := Compiled().lists
	for name, want := range map[string]string{
		"content.dropboxapi.com": "cloud-storage", "contoso-my.sharepoint.com": "cloud-storage", "mega.nz": "cloud-storage",
		"eu.mega.nz": "cloud-storage", "abc.ngrok-free.app": "tunnel", "ngrok-free.app": "", "pastebin.com:443": "paste-site",
		"example.com": "",
	} {
		if c, _ := l.service(name); c != want {
			t.Errorf("%s: %q, want %q", name, c, want)
		}
	}
	if l.dynamicDNS("c2.duckdns.org") != ".duckdns.org" || l.dynamicDNS("duckdns.org") != "" {
		t.Error("dynamic DNS")
	}
	if l.doh(mustAddr("1.1.1.1"), "") == "" || l.doh(mustAddr("192.0.2.1"), "dns.google") == "" || l.doh(mustAddr("192.0.2.1"), "google.com") != "" {
		t.Error("DoH")
	}
	if !nameIn("/usr/bin/python3.11", []string{"python"}) || nameIn("/usr/bin/pythonista", []string{"python"}) ||
		!nameIn(`C:\Windows\System32\WindowsPowerShell\v1.0\PowerShell.exe`, []string{"powershell.exe"}) {
		t.Error("nameIn")
	}
}

// FuzzParseConfig: any bytes as outflow.yaml give a config or an error,
// never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"../deploy/outflow.yaml", "../pcaps/detect-lab.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("EncryptedChannel:\n  PortProfiles:\n    \"99999\": [tls]\n"))
	f.Add([]byte("HomeNets: 10.0.0.0/8\nBaseline: []\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("fuzz", b)
		if err == nil && c.lists == nil {
			t.Fatal("config without lists")
		}
	})
}
