package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/report"
	"github.com/outflow-sensor/outflow/sensor"
)

// The bundled captures and the detection lab, from the module's root.
const (
	labPcap   = "../pcaps/outflow-detect.pcap"
	labEvents = "../pcaps/outflow-detect.events.jsonl"
	labConfig = "../pcaps/detect-lab.yaml"
	labWant   = "../pcaps/detect-expected.tsv"
	// A capture the built-in defaults raise nothing on.
	quietPcap = "../pcaps/outflow-quic.pcap"
)

// lab is a replay as `outflow replay --report` runs it, with the alerts
// as the alert outputs got them (JSON lines), the independent account of
// what the page must show.
type lab struct {
	col    *report.Collector
	alerts []*detect.Alert
	stats  sensor.ReplayStats
}

// replay runs the sensor over a capture with the analytics of config ("":
// the built-in defaults) and host events, feeding a report the way the
// replay command does.
func replay(t testing.TB, pcap, config string, hostEvents ...string) lab {
	t.Helper()
	dcfg := detect.Compiled()
	if config != "" {
		var err error
		if dcfg, err = sensor.LoadDetectConfig(config); err != nil {
			t.Fatal(err)
		}
	}
	table := flows.DefaultConfig()
	table.Inspect = flows.DefaultInspectConfig()
	col := report.New(report.Config{Sources: []string{filepath.Base(pcap)}})
	var alerts, errs bytes.Buffer
	st, err := sensor.Replay(context.Background(), sensor.ReplayConfig{
		Files: []string{pcap}, HostEvents: hostEvents, Table: table, HomeNets: dcfg.HomePrefixes(),
		Flows: io.Discard, Errors: &errs, Records: col.Record,
		Detect: &sensor.Detection{Config: dcfg, Alerts: io.MultiWriter(&alerts, col.Alerts())},
	})
	if err != nil || st.FileErrors > 0 {
		t.Fatalf("replay %s: %v\n%s", pcap, err, errs.String())
	}
	return lab{col: col, alerts: decodeAlerts(t, alerts.Bytes()), stats: st}
}

func decodeAlerts(t testing.TB, b []byte) []*detect.Alert {
	t.Helper()
	var as []*detect.Alert
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		a := new(detect.Alert)
		if err := json.Unmarshal(sc.Bytes(), a); err != nil {
			t.Fatalf("alert line %q: %v", sc.Text(), err)
		}
		as = append(as, a)
	}
	return as
}

// expectedAlerts reads pcaps/detect-expected.tsv: analytic, severity,
// process (a prefix; "-" none), destination, port.
func expectedAlerts(t testing.TB) [][]string {
	t.Helper()
	b, err := os.ReadFile(labWant)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && l[0] != '#' {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	return rows
}
