package metrics_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exposition is a scrape as Prometheus reads it: each series' value by
// name{label="value",...} with the labels sorted, and each family's type.
type exposition struct {
	values map[string]float64
	types  map[string]dto.MetricType
}

// parse reads the text format with Prometheus' own parser.
func parse(t *testing.T, r io.Reader) exposition {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	e := exposition{values: map[string]float64{}, types: map[string]dto.MetricType{}}
	for name, f := range fams {
		e.types[name] = f.GetType()
		for _, m := range f.GetMetric() {
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				continue // runtime summaries and histograms: their names are enough
			}
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			e.values[name+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return e
}

// expose gathers c through a pedantic registry, which checks what it
// sends against what it describes, and writes the text format.
func expose(t *testing.T, c prometheus.Collector) []byte {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// scrape fetches and parses url.
func scrape(t *testing.T, url string) exposition {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	return parse(t, resp.Body)
}

// sum adds the values of a family's series whose labels include every
// label="value" of match.
func (e exposition) sum(name string, match ...string) float64 {
	var s float64
	for k, v := range e.values {
		if !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, m := range match {
			ls := k[strings.IndexByte(k, '{')+1 : len(k)-1]
			if !strings.Contains(","+ls+",", ","+m+",") {
				ok = false
			}
		}
		if ok {
			s += v
		}
	}
	return s
}

// series counts a family's series.
func (e exposition) series(name string) int {
	n := 0
	for k := range e.values {
		if strings.HasPrefix(k, name+"{") {
			n++
		}
	}
	return n
}

func lbl(name, value string) string { return fmt.Sprintf("%s=%q", name, value) }
