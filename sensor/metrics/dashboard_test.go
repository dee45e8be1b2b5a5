package metrics_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/metrics"
	dto "github.com/prometheus/client_model/go"
)

const dashboardPath = "../../deploy/grafana/outflow.json"

// dashboard is what the tests read of a Grafana dashboard.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name, Type string
			Query      json.RawMessage
			Datasource *datasource
		}
	}
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Panels     []panel     `json:"panels"` // a collapsed row's
	GridPos    *struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct{ Type, UID string }

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	readJSON(t, dashboardPath, &d)
	return d
}

// panels lists every panel, those of rows included.
func (d dashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// dashboardNames are the metric names of every panel's queries.
func dashboardNames(t *testing.T, d dashboard) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range d.panels() {
		for _, q := range p.Targets {
			names := metricNames(q.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: the query %q names no metric", p.Title, q.Expr)
			}
			for _, n := range names {
				seen[n] = true
			}
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var (
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// promqlKeywords are PromQL's words that are neither functions nor
// metrics.
var promqlKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}

// metricNames picks the metric names out of a PromQL expression: the
// identifiers left once strings, label matchers, ranges and groupings are
// gone that are neither functions (followed by a parenthesis) nor
// keywords.
func metricNames(expr string) []string {
	e := promqlStrings.ReplaceAllString(expr, `""`)
	e = promqlGrouping.ReplaceAllString(e, " ")
	e = promqlBraces.ReplaceAllString(e, " ")
	var out []string
	for _, m := range promqlIdent.FindAllStringIndex(e, -1) {
		name := e[m[0]:m[1]]
		if m[0] > 0 && strings.ContainsAny(e[m[0]-1:m[0]], "0123456789.$") {
			continue // an exponent (1e-9), a duration (5m) or a variable
		}
		if strings.HasPrefix(strings.TrimLeft(e[m[1]:], " \t\n"), "(") || slices.Contains(promqlKeywords, strings.ToLower(name)) {
			continue // a function, or a keyword
		}
		out = append(out, name)
	}
	return out
}

// TestMetricNames: the names of queries of the kinds the dashboard uses.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (interface) (rate(outflow_capture_packets_total{instance=~"$instance"}[$__rate_interval]))`: {"outflow_capture_packets_total"},
		`8 * sum by (interface) (rate(outflow_capture_bytes_total[5m]))`:                                    {"outflow_capture_bytes_total"},
		`a_total / clamp_min(sum without (x) (b{y="rate(c)"}), 1e-9) + on (i) group_left (j) c offset 5m`:   {"a_total", "b", "c"},
		`histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[1m])))`:                                {"x_seconds_bucket"},
		`up`: {"up"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", expr, got, want)
		}
	}
}

// served says whether an exposition serves the series a query names: a
// family's own name, or a histogram's or summary's _bucket, _sum and
// _count series.
func served(e exposition, name string) bool {
	if _, ok := e.types[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch e.types[base] {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}

// checkDashboard: every metric a panel of the dashboard queries is served
// by /metrics after a run.
func checkDashboard(t *testing.T, e exposition) {
	d := readDashboard(t)
	names := dashboardNames(t, d)
	if len(names) == 0 {
		t.Fatal("the dashboard queries no metric")
	}
	for _, n := range names {
		if !served(e, n) {
			t.Errorf("the dashboard queries %s; /metrics does not serve it", n)
		}
	}
}

// TestDashboard: the dashboard is one Grafana imports: a Prometheus data
// source variable that every panel and query uses, panels with unique ids
// and places, and queries on the collector's names only.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			hasDS = true
		}
		if v.Datasource != nil && v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s: data source %+v", v.Name, v.Datasource)
		}
	}
	if !hasDS {
		t.Error("no Prometheus data source variable named datasource")
	}
	ids := map[int]bool{}
	for _, p := range d.panels() {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is taken", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no place", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %+v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.Datasource == nil || q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query's data source is %+v", p.Title, q.Datasource)
			}
		}
	}
	// Every name is one the collector exposes of a snapshot with every
	// section: a misspelt name shows here, without a run.
	s := handMade()
	e := parse(t, bytes.NewReader(expose(t, metrics.NewCollector(func() sensor.Snapshot { return s }))))
	for _, n := range dashboardNames(t, d) {
		if !served(e, n) {
			t.Errorf("the dashboard queries %s, which the collector does not expose", n)
		}
	}
}
