package sensor

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestRunConfigProblems: one read of a run config names every problem,
// the sensor's keys and the analytics' alike, each with its line.
func TestRunConfigProblems(t *testing.T) {
	src := `Sources:
  Capture:
    Interfaces: [eth1, eth1]
    Workers: 0
  FlowListeners: [netflow//127.0.0.1:2055]
  HostEvents: [kafka://broker]
  Directories:
    - Pattern: "[x"
Outputs:
  Flows: [{Path: "-", RotateSize: 10MB}, {URL: "syslog+tcp://127.0.0.1:6514", Format: zeek}, {URL: "ftp://x/y"}]
  Alerts: [{}, {URL: "https://siem.example/in", Format: ecs}]
Logging:
  Level: loud
AN1511:
  ExfilVolumeTreshold: 5MB
`
	_, err := ParseRunConfig("run.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		`run.yaml:3: Sources.Capture.Interfaces[1]: "eth1" is listed twice`,
		`run.yaml:5: Sources.FlowListeners[0]: "netflow//127.0.0.1:2055": want netflow://HOST:PORT or sflow://HOST:PORT`,
		`run.yaml:6: Sources.HostEvents[0]: "kafka://broker": want kafka://BROKER[,BROKER]/TOPIC`,
		`run.yaml:8: Sources.Directories[0].Path: missing: the directory to watch`,
		`run.yaml:8: Sources.Directories[0].Pattern: "[x" is not a shell pattern`,
		`run.yaml:10: Outputs.Flows[0]: stdout cannot be rotated`,
		`run.yaml:10: Outputs.Flows[1].Format: zeek is a file format (its header starts each file): want json or ecs for a receiver`,
		`run.yaml:10: Outputs.Flows[2].URL: "ftp://x/y": unknown receiver "ftp"`,
		`run.yaml:11: Outputs.Alerts[0]: names nowhere to write: give Path (a file, or - for stdout) or URL (a receiver)`,
		`run.yaml:11: Outputs.Alerts[1]: alerts to a receiver wait on disk while it is down: give Outputs.Spool (a directory) or State.Path`,
		`run.yaml:13: Logging.Level: "loud": want debug, info, warn or error`,
		`run.yaml:15: AN1511.ExfilVolumeTreshold: unknown key`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("%q\nwant %q", got[i], want[i])
		}
	}
}

// TestRunConfigDefaults: a small file gets the defaults, and its detection
// keys reach the analytics' config.
func TestRunConfigDefaults(t *testing.T) {
	rc, err := ParseRunConfig("run.yaml", []byte("Sources:\n  Capture:\n    Interfaces: [eth1]\nOutputs:\n  Alerts: [{Path: alerts.json}]\nHomeNets: [10.77.0.0/16]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Sources.Capture.Workers != 1 || !rc.Sources.Inspect || rc.Outputs.FlushInterval.D().Seconds() != 1 ||
		rc.Logging.Level != "info" || len(rc.Detect.HomePrefixes()) != 1 || rc.Detect.HomePrefixes()[0].String() != "10.77.0.0/16" {
		t.Errorf("%+v %v", rc, rc.Detect.HomePrefixes())
	}
}

// TestShippedRunConfig: deploy/outflow.yaml is a valid run config and
// names every key of Sources, Outputs and Logging.
func TestShippedRunConfig(t *testing.T) {
	const path = "../deploy/outflow.yaml"
	if _, err := LoadRunConfig(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var missing []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			if !strings.Contains(string(raw), tag+":") {
				missing = append(missing, tag)
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && tag != "Directories" {
				walk(ft)
			}
		}
	}
	walk(reflect.TypeOf(RunConfig{}))
	if len(missing) > 0 {
		t.Errorf("%s does not name %v", path, missing)
	}
}
