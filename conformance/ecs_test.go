package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/encode"
)

// ecsField is one field of the published ECS definitions (ecs_flat.yml).
type ecsField struct {
	Type          string   `yaml:"type"`
	Normalize     []string `yaml:"normalize"`
	Description   string   `yaml:"description"`
	AllowedValues []struct {
		Name               string   `yaml:"name"`
		ExpectedEventTypes []string `yaml:"expected_event_types"`
	} `yaml:"allowed_values"`
}

func loadECS(t *testing.T) map[string]ecsField {
	t.Helper()
	b, err := os.ReadFile(shared.Path(t, "ecs/ecs_flat.yml"))
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string]ecsField{}
	if err := yaml.Unmarshal(b, &defs); err != nil {
		t.Fatalf("ecs_flat.yml: %v", err)
	}
	if len(defs) < 1000 {
		t.Fatalf("ecs_flat.yml defines only %d fields", len(defs))
	}
	return defs
}

// ecsChecker checks decoded ECS lines against the definitions.
type ecsChecker struct {
	t    *testing.T
	defs map[string]ecsField
	// directions are network.direction's values, which ECS gives in the
	// field's description rather than as allowed_values.
	directions map[string]bool
	seen       map[string]int // leaf fields written, for the summary
}

func newECSChecker(t *testing.T) *ecsChecker {
	c := &ecsChecker{t: t, defs: loadECS(t), directions: map[string]bool{}, seen: map[string]int{}}
	for _, m := range regexp.MustCompile(`"([a-z]+)"`).FindAllStringSubmatch(c.defs["network.direction"].Description, -1) {
		c.directions[m[1]] = true
	}
	if !c.directions["outbound"] || !c.directions["egress"] {
		t.Fatalf("network.direction's description no longer lists its values: %v", c.directions)
	}
	return c
}

// check parses one line and checks every leaf: under outflow, or an ECS
// field whose value has the defined type, arrays only where ECS
// normalises the field to an array, allowed values where ECS lists them.
func (c *ecsChecker) check(what string, line []byte) map[string]any {
	c.t.Helper()
	if len(line) == 0 || line[len(line)-1] != '\n' || bytes.IndexByte(line, '\n') != len(line)-1 {
		c.t.Fatalf("%s: not one line: %q", what, line)
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		c.t.Fatalf("%s: %v: %s", what, err, line)
	}
	for _, req := range []string{"@timestamp", "ecs"} {
		if m[req] == nil {
			c.t.Errorf("%s: no %s", what, req)
		}
	}
	c.walk(what, "", m, false)
	c.categorization(what, m)
	return m
}

func (c *ecsChecker) walk(what, path string, v any, inArray bool) {
	c.t.Helper()
	if path == "outflow" || strings.HasPrefix(path, "outflow.") {
		return // Outflow's own keys: any JSON
	}
	def, defined := c.defs[path]
	switch x := v.(type) {
	case map[string]any:
		if defined && def.Type != "object" && def.Type != "nested" {
			c.t.Errorf("%s: %s is %s in ECS, written as an object", what, path, def.Type)
			return
		}
		for k, e := range x {
			if strings.Contains(k, ".") {
				c.t.Errorf("%s: dotted key %q under %q: ECS lines nest their objects", what, k, path)
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			c.walk(what, p, e, false)
		}
		return
	case []any:
		if !defined {
			c.t.Errorf("%s: %s is not an ECS field", what, path)
			return
		}
		if inArray || !slices.Contains(def.Normalize, "array") {
			c.t.Errorf("%s: %s is an array; ECS does not normalise it to one", what, path)
			return
		}
		for _, e := range x {
			c.walk(what, path, e, true)
		}
		return
	}
	if !defined {
		c.t.Errorf("%s: %s is not an ECS field (value %v)", what, path, v)
		return
	}
	c.seen[path]++
	if !ecsTypeOK(def.Type, v) {
		c.t.Errorf("%s: %s = %#v is not of ECS type %s", what, path, v, def.Type)
	}
	if len(def.AllowedValues) > 0 {
		ok := false
		for _, a := range def.AllowedValues {
			ok = ok || a.Name == v
		}
		if !ok {
			c.t.Errorf("%s: %s = %v is not one of ECS's allowed values", what, path, v)
		}
	}
	if path == "network.direction" && !c.directions[v.(string)] {
		c.t.Errorf("%s: network.direction %v is not one of %v", what, v, c.directions)
	}
}

// categorization: every event.type is expected for every event.category
// given (ECS's expected_event_types).
func (c *ecsChecker) categorization(what string, m map[string]any) {
	ev, _ := m["event"].(map[string]any)
	cats, _ := ev["category"].([]any)
	types, _ := ev["type"].([]any)
	for _, cat := range cats {
		for _, a := range c.defs["event.category"].AllowedValues {
			if a.Name != cat {
				continue
			}
			for _, ty := range types {
				if !slices.Contains(a.ExpectedEventTypes, ty.(string)) {
					c.t.Errorf("%s: event.type %v is not expected for event.category %v (%v)", what, ty, cat, a.ExpectedEventTypes)
				}
			}
		}
	}
}

// ecsTypeOK checks a JSON value against an ECS field type.
func ecsTypeOK(typ string, v any) bool {
	switch typ {
	case "keyword", "constant_keyword", "wildcard", "text", "match_only_text":
		_, ok := v.(string)
		return ok
	case "long", "integer", "short", "byte", "unsigned_long":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := n.Int64()
		return err == nil
	case "float", "double", "scaled_float", "half_float":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := n.Float64()
		return err == nil
	case "ip":
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := netip.ParseAddr(s)
		return err == nil
	case "date":
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return false // object, nested, flattened, geo_point: never a leaf here
}

// TestECSDetectionLab replays the detection lab (capture and host events,
// as TestDetectionLab does) and writes every flow record and every alert
// as ECS: each line parses, and each of its fields is Outflow's own or a
// field the published ECS definitions hold, with a value of the defined
// type. The alerts carry their ids, analytics and techniques in ECS's
// alert fields.
func TestECSDetectionLab(t *testing.T) {
	c := newECSChecker(t)
	cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var flowLines [][]byte
	var alertsOut, errs bytes.Buffer
	rc := sensor.ReplayConfig{Files: []string{"../pcaps/outflow-detect.pcap"}, HostEvents: []string{"../pcaps/outflow-detect.events.jsonl"},
		Table: inspectConfig(), Errors: &errs, Detect: &sensor.Detection{Config: cfg, Alerts: &alertsOut},
		Records: func(f *record.Flow) {
			line := encode.ECS.AppendFlow(nil, f)
			mu.Lock()
			flowLines = append(flowLines, line)
			mu.Unlock()
		}}
	if _, err := sensor.Replay(context.Background(), rc); err != nil {
		t.Fatalf("replay: %v\n%s", err, errs.String())
	}
	alerts := decodeAlerts(t, &alertsOut)
	if len(flowLines) < 20 || len(alerts) < 10 {
		t.Fatalf("%d flow records and %d alerts: the lab makes more", len(flowLines), len(alerts))
	}
	tls, procs := 0, 0
	for i, l := range flowLines {
		m := c.check(fmt.Sprintf("flow %d", i), l)
		if tl, _ := m["tls"].(map[string]any); tl != nil {
			tls++
		}
		if m["process"] != nil {
			procs++
		}
	}
	if tls == 0 || procs == 0 {
		t.Errorf("of %d flows, %d have tls.* and %d process.*: the lab has both", len(flowLines), tls, procs)
	}
	for _, a := range alerts {
		m := c.check("alert "+a.Analytic, encode.ECS.AppendAlert(nil, a))
		ev, _ := m["event"].(map[string]any)
		rule, _ := m["rule"].(map[string]any)
		if ev["kind"] != "alert" || ev["id"] != a.ID || rule["id"] != a.Analytic {
			t.Errorf("%s: event %v, rule %v; the alert's id is %s", a.Analytic, ev, rule, a.ID)
		}
		threat, _ := m["threat"].(map[string]any)
		tech, _ := threat["technique"].(map[string]any)
		ids, _ := tech["id"].([]any)
		parent, _, _ := strings.Cut(a.Technique, ".")
		if len(ids) != 1 || ids[0] != parent {
			t.Errorf("%s: threat.technique.id %v, the alert's technique is %s", a.Analytic, ids, a.Technique)
		}
	}
	var fields []string
	for f := range c.seen {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	t.Logf("%d flow records, %d alerts; ECS fields written: %s", len(flowLines), len(alerts), strings.Join(fields, " "))
}
