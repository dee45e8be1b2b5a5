package report_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/report"
	"github.com/outflow-sensor/outflow/sensor"
)

// TestLabRowsMatchThePrograms: in the detection lab's report, what each
// process sent to its destination is what the program said it sent
// (pcaps/reported: curl's size_upload, the python client's count,
// openssl enc's output size), with TLS's overhead on top where TLS was
// spoken.
func TestLabRowsMatchThePrograms(t *testing.T) {
	l := replay(t, labPcap, labConfig, labEvents)
	r := l.col.Report()
	var curl struct {
		SizeUpload uint64 `json:"size_upload"`
	}
	readJSON(t, "../pcaps/reported/detect-curl-tar-upload.json", &curl)
	var py struct {
		Uploaded uint64 `json:"uploaded"`
	}
	readJSON(t, "../pcaps/reported/detect-python-upload.json", &py)
	b, err := os.ReadFile("../pcaps/reported/detect-openssl-enc-bytes.txt")
	if err != nil {
		t.Fatal(err)
	}
	var enc uint64
	if _, err := fmt.Sscan(string(b), &enc); err != nil {
		t.Fatal(err)
	}
	sent := func(proc, dest string) uint64 {
		for _, h := range r.Hosts {
			for _, p := range h.Processes {
				if !strings.HasPrefix(p.Process, proc) {
					continue
				}
				for _, d := range p.Destinations {
					if d.Name == dest {
						return d.Out
					}
				}
			}
		}
		t.Errorf("no row of %s sending to %s", proc, dest)
		return 0
	}
	for _, c := range []struct {
		proc, dest string
		reported   uint64
		tls        bool
	}{
		{"curl", "upload.example-storage.test", curl.SizeUpload, true},
		{"python3", "files.example-storage.test", py.Uploaded, true},
		{"socat", "c2.dyn.example-storage.test", enc, false},
	} {
		got := sent(c.proc, c.dest)
		hi := c.reported
		if c.tls {
			hi = c.reported*102/100 + 16<<10 // records' overhead and the request's header
		}
		if got < c.reported || got > hi {
			t.Errorf("%s to %s: the report says %d bytes, the program %d", c.proc, c.dest, got, c.reported)
		}
	}
	// Every flow of the replay is in a row or counted as having no home end.
	var flows uint64
	for _, h := range r.Hosts {
		flows += h.Flows
	}
	if flows+r.External != l.stats.Records || r.Flows != l.stats.Records {
		t.Errorf("rows hold %d flows and %d have no home end; the replay made %d records", flows, r.External, l.stats.Records)
	}
}

// TestReportRunConfig: Outputs.Report is for watched directories alone.
func TestReportRunConfig(t *testing.T) {
	const ok = "Sources:\n  Directories: [{Path: /srv/pcaps}]\nOutputs:\n  Report: /srv/report.html\n"
	if _, err := sensor.ParseRunConfig("run.yaml", []byte(ok)); err != nil {
		t.Errorf("a watched directory with a report: %v", err)
	}
	const live = "Sources:\n  Capture: {Interfaces: [eth0]}\n  Directories: [{Path: /srv/pcaps}]\nOutputs:\n  Report: /srv/report.html\n"
	_, err := sensor.ParseRunConfig("run.yaml", []byte(live))
	if err == nil || !strings.Contains(err.Error(), "run.yaml:5: Outputs.Report: is for captures read from Sources.Directories alone") {
		t.Errorf("live capture with a report: %v", err)
	}
}

// TestCollectorDefaults: a zero Config takes the documented bounds.
func TestCollectorDefaults(t *testing.T) {
	r := report.New(report.Config{}).Report()
	if r.MaxFlows != report.DefaultConfig().MaxFlows || r.MaxFlows != 5000 {
		t.Errorf("MaxFlows %d", r.MaxFlows)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
