package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDocumented: docs/metrics.md has a row for every metric, with its
// type and labels, and no row for a metric that does not exist.
func TestDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	// | `name` | type | labels | meaning |
	row := regexp.MustCompile("(?m)^\\| `(outflow_[a-z_]+)` \\| (counter|gauge) \\|([^|]*)\\|")
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("%s is documented twice", m[1])
		}
		rows[m[1]] = m[2:]
	}
	names := map[string]bool{}
	for _, m := range all {
		names[m.name] = true
		doc, ok := rows[m.name]
		if !ok {
			t.Errorf("%s is not documented", m.name)
			continue
		}
		kind := map[prometheus.ValueType]string{prometheus.CounterValue: "counter", prometheus.GaugeValue: "gauge"}[m.kind]
		if doc[0] != kind {
			t.Errorf("%s: documented as a %s, is a %s", m.name, doc[0], kind)
		}
		for _, l := range m.labels {
			if !slices.Contains(strings.Fields(strings.NewReplacer(",", " ", "(", " ", ")", " ").Replace(doc[1])), l) {
				t.Errorf("%s: label %s is not documented (%q)", m.name, l, doc[1])
			}
		}
	}
	for n := range rows {
		if !names[n] {
			t.Errorf("%s is documented but does not exist", n)
		}
	}
}
