//go:build linux

package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics is one scrape of the sensor's /metrics.
type metrics struct {
	fams  map[string]*dto.MetricFamily
	ready bool
}

func scrape(addr string) (*metrics, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("the sensor's metrics: %v", err)
	}
	m := &metrics{fams: fams}
	if r, err := http.Get("http://" + addr + "/readyz"); err == nil {
		m.ready = r.StatusCode == http.StatusOK
		r.Body.Close()
	}
	return m, nil
}

func value(x *dto.Metric) float64 {
	switch {
	case x.Counter != nil:
		return x.Counter.GetValue()
	case x.Gauge != nil:
		return x.Gauge.GetValue()
	}
	return 0
}

// sum adds the series of a family whose labels have the given name/value
// pairs.
func (m *metrics) sum(name string, labels ...string) float64 {
	f := m.fams[name]
	if f == nil {
		return 0
	}
	var t float64
series:
	for _, x := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range x.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		t += value(x)
	}
	return t
}

func (m *metrics) filesRead() float64 {
	return m.sum("outflow_directory_files_total") + m.sum("outflow_directory_file_errors_total")
}

// same says whether the counts that move while the sensor works are
// unchanged since last.
func (m *metrics) same(last *metrics) bool {
	for _, n := range []string{"outflow_flow_records_total", "outflow_host_events_total", "outflow_directory_files_total",
		"outflow_flow_listener_records_total", "outflow_output_records_total"} {
		if m.sum(n) != last.sum(n) {
			return false
		}
	}
	return true
}

// counters lists the non-zero series of the families, one line each.
func (m *metrics) counters(names ...string) []string {
	var out []string
	for _, n := range names {
		f := m.fams[n]
		if f == nil {
			continue
		}
		for _, x := range f.Metric {
			if value(x) == 0 {
				continue
			}
			var ls []string
			for _, l := range x.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			out = append(out, fmt.Sprintf("%s{%s} %.0f", n, strings.Join(ls, ","), value(x)))
		}
	}
	return out
}
