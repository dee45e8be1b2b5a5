package metrics_test

import (
	"fmt"
	"testing"

	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/metrics"
	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// BenchmarkScrape is one scrape of a large sensor (8 interfaces, 4
// directories, 40 alert series, 8 outputs): gather and write the text
// format, as promhttp does. b.SetBytes is the exposition's size.
func BenchmarkScrape(b *testing.B) {
	s := handMade()
	for i := range 8 {
		s.Capture.Interfaces = append(s.Capture.Interfaces, sensor.InterfaceCounts{Name: fmt.Sprintf("eth%d", i+2), Packets: uint64(i)})
	}
	for i := range 4 {
		s.Directories = append(s.Directories, sensor.DirectoryCounts{Path: fmt.Sprintf("/var/spool/pcaps/%d", i), Files: uint64(i)})
	}
	for i := range 40 {
		s.Detect.ByAlert = append(s.Detect.ByAlert, sensor.AlertCount{Analytic: fmt.Sprintf("analytic_%d", i/4), Severity: []string{"low", "medium", "high", "critical"}[i%4], Alerts: 1})
	}
	for i := range 8 {
		s.Outputs = append(s.Outputs, sink.Stats{Name: fmt.Sprintf("/var/log/outflow/out%d.json", i), Lines: uint64(i)})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(func() sensor.Snapshot { return s }))
	var size int64
	b.ReportAllocs()
	for b.Loop() {
		fams, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		w := &countWriter{}
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				b.Fatal(err)
			}
		}
		size = w.n
	}
	b.SetBytes(size)
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
