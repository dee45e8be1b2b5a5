package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixNano()

// flow is a final record as the sensor hands it over: payload bytes seen,
// its direction set, its Community ID made up from n.
func flow(n int, dir record.Direction, orig, resp string, origBytes, respBytes uint64) *record.Flow {
	return &record.Flow{Start: t0 + int64(n)*int64(time.Millisecond), End: t0 + int64(n+1)*int64(time.Millisecond),
		Proto: 6, Orig: netip.MustParseAddrPort(orig), Resp: netip.MustParseAddrPort(resp), Observed: true,
		OrigBytes: origBytes, RespBytes: respBytes, Final: true, Direction: dir, HTTPBody: -1,
		CommunityID: record.CIDOf(fmt.Appendf(nil, "1:flow%08d", n))}
}

func proc(image string) *process.Attribution {
	return &process.Attribution{Process: process.Process{Image: image, PID: 42}}
}

func sni(name string) *flows.Inspection {
	return &flows.Inspection{App: flows.AppTLS, TLS: &flows.TLSInfo{SNI: name}}
}

// alertLine is an alert as the sensor's JSON output writes it.
func alertLine(t testing.TB, a *detect.Alert) []byte {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestRowsByHostAndProcess: bytes are added up per internal host and the
// process on it (the receiving end's for an inbound flow), destinations
// by name else address, interim records are not added, flows with no home
// end are in no row, and each alert lands on its host and process.
func TestRowsByHostAndProcess(t *testing.T) {
	c := New(Config{})
	type sent struct{ out, in uint64 }
	want := map[string]sent{} // "host process" → bytes, added up here from the inputs
	add := func(f *record.Flow, key string, out, in uint64) {
		c.Record(f)
		s := want[key]
		want[key] = sent{s.out + out, s.in + in}
	}
	f := flow(1, record.Outbound, "10.0.0.1:40000", "203.0.113.5:443", 5_000_000, 3_000)
	f.OrigProc, f.Inspection = proc(`/usr/bin/Curl`), sni("files.example.test")
	add(f, "10.0.0.1 curl", 5_000_000, 3_000)
	f = flow(2, record.Outbound, "10.0.0.1:40001", "203.0.113.5:443", 1_000, 90_000)
	f.OrigProc, f.Inspection = proc(`C:\Python\python.exe`), sni("files.example.test")
	add(f, "10.0.0.1 python.exe", 1_000, 90_000)
	f = flow(3, record.Outbound, "10.0.0.1:40002", "198.51.100.7:8080", 700, 100)
	f.OrigProc = proc(`C:\Python\python.exe`)
	add(f, "10.0.0.1 python.exe", 700, 100)
	add(flow(4, record.Outbound, "10.0.0.1:40003", "198.51.100.8:53", 60, 120), "10.0.0.1 ", 60, 120)
	// Inbound: the internal host is the responder, and what it sent out
	// is what it answered.
	f = flow(5, record.Inbound, "192.0.2.9:50000", "10.0.0.2:443", 400, 800_000)
	f.RespProc, f.OrigProc = proc("/usr/sbin/nginx"), proc("/should/not/be/used")
	f.Inspection = sni("www.internal.test") // the responder's own name, not a destination
	add(f, "10.0.0.2 nginx", 800_000, 400)
	// An interim record carries totals so far: its flow's final record counts.
	f = flow(6, record.Outbound, "10.0.0.1:40000", "203.0.113.5:443", 1<<40, 1<<40)
	f.Final, f.OrigProc = false, proc("/usr/bin/curl")
	c.Record(f)
	// Neither end home.
	c.Record(flow(7, record.External, "192.0.2.1:1", "192.0.2.2:2", 1<<30, 1<<30))
	// Alerts, as the alert outputs get them.
	w := c.Alerts()
	w.Write(alertLine(t, &detect.Alert{TS: time.Unix(0, t0), ID: "a1", Analytic: "AN1512", Severity: "high", Title: "upload",
		Host: &detect.AlertHost{IP: "10.0.0.1", Name: "ws1"}, Process: &detect.AlertProcess{Name: "curl"}}))
	// Written in two pieces, as a pipe may.
	line := alertLine(t, &detect.Alert{TS: time.Unix(0, t0), ID: "a2", Analytic: "top_file_sharing_org", Severity: "low", Title: "top",
		Host: &detect.AlertHost{IP: "10.0.0.1"}})
	w.Write(line[:10])
	w.Write(line[10:])
	w.Write([]byte("not an alert\n"))

	r := c.Report()
	got := map[string]sent{}
	var hosts []string
	for _, h := range r.Hosts {
		hosts = append(hosts, h.Host)
		var out, in uint64
		for _, p := range h.Processes {
			got[h.Host+" "+p.Process] = sent{p.Out, p.In}
			out += p.Out
			in += p.In
		}
		if h.Out != out || h.In != in {
			t.Errorf("host %s: %d out, %d in; its processes add up to %d, %d", h.Host, h.Out, h.In, out, in)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
	if fmt.Sprint(hosts) != "[10.0.0.1 10.0.0.2]" {
		t.Errorf("hosts in order %v: the one with alerts first", hosts)
	}
	var total sent
	for _, s := range want {
		total.out += s.out
		total.in += s.in
	}
	if r.Out != total.out || r.In != total.in || r.Flows != 6 || r.Interim != 1 || r.External != 1 {
		t.Errorf("totals: out %d in %d flows %d interim %d external %d; want out %d in %d, 6 flows, 1 interim, 1 external",
			r.Out, r.In, r.Flows, r.Interim, r.External, total.out, total.in)
	}
	h := r.Hosts[0]
	if h.Name != "ws1" || fmt.Sprint(h.Alerts) != "[AN1512 top_file_sharing_org]" {
		t.Errorf("host 10.0.0.1: name %q, alerts %v", h.Name, h.Alerts)
	}
	for _, p := range h.Processes {
		wantAlerts, wantDests := "[]", ""
		switch p.Process {
		case "curl":
			wantAlerts, wantDests = "[AN1512]", "[{files.example.test 5000000}]"
		case "python.exe":
			wantDests = "[{files.example.test 1000} {198.51.100.7 700}]"
		case "":
			wantDests = "[{198.51.100.8 60}]"
		}
		if fmt.Sprint(p.Alerts) != wantAlerts && !(wantAlerts == "[]" && p.Alerts == nil) {
			t.Errorf("%s: alerts %v, want %s", p.Process, p.Alerts, wantAlerts)
		}
		if fmt.Sprint(p.Destinations) != wantDests {
			t.Errorf("%s: destinations %v, want %s", p.Process, p.Destinations, wantDests)
		}
	}
	if d := r.Hosts[1].Processes[0].Destinations; fmt.Sprint(d) != "[{192.0.2.9 800000}]" {
		t.Errorf("inbound flow's destination %v: the client's address, not the server's own name", d)
	}
	if len(r.Alerts) != 2 || r.AlertErrors != 1 || r.Alerts[0].ID != "a1" {
		t.Errorf("%d alerts (%d lines not read), first %+v", len(r.Alerts), r.AlertErrors, r.Alerts)
	}
}

// TestBoundedMemory: whatever the number of flows, hosts, destinations
// and capture time, the collector keeps its bounds, adds up what it does
// not keep, and still draws every flow an alert names that it held.
func TestBoundedMemory(t *testing.T) {
	const n = 40_000
	c := New(Config{MaxFlows: 500, MaxRows: 300, MaxAlerts: 10})
	var out uint64
	sizes := make([]uint64, 0, n)
	span := int64(365 * 24 * time.Hour)
	for i := 0; i < n; i++ {
		// Each flow its own host, sizes in a scrambled order, spread over a year.
		size := uint64((i*7919)%n + 1)
		host := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		f := flow(i, record.Outbound, netip.AddrPortFrom(host, 40000).String(), "203.0.113.9:443", size, 0)
		f.Start = t0 + span/n*int64(i)
		c.Record(f)
		out += size
		sizes = append(sizes, size)
	}
	// One host talking to far more destinations than a row remembers.
	for i := 0; i < 1000; i++ {
		c.Record(flow(n+i, record.Outbound, "10.250.0.1:40000", netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 443).String(), 1, 0))
		out++
	}
	// An alert on a small flow that went by recently, and on one long gone.
	c.Alerts().Write(alertLine(t, &detect.Alert{TS: time.Unix(0, t0), ID: "x", Analytic: "AN0401", Severity: "high",
		Evidence: detect.Evidence{CommunityIDs: []string{fmt.Sprintf("1:flow%08d", n+999), fmt.Sprintf("1:flow%08d", 3)}}}))

	if len(c.rows.rows) > 300 || len(c.flows.largest) > 500 || len(c.flows.recent) > recentFlows || len(c.timeline.counts) > maxBuckets {
		t.Errorf("kept %d rows, %d largest flows, %d recent, %d time buckets", len(c.rows.rows), len(c.flows.largest), len(c.flows.recent), len(c.timeline.counts))
	}
	for k, r := range c.rows.rows {
		if len(r.dests) > maxDests {
			t.Errorf("%v remembers %d destinations", k, len(r.dests))
		}
	}
	r := c.Report()
	var sum uint64
	for _, h := range r.Hosts {
		sum += h.Out
	}
	if r.HostsTotal != 300 || r.Rest == nil || sum > out || r.Out != out {
		t.Fatalf("%d hosts, rest %+v, out %d of %d", r.HostsTotal, r.Rest, sum, out)
	}
	// The rows shown are of the hosts seen first; the rest adds up the others.
	var all uint64
	for _, row := range c.rows.rows {
		all += row.out
	}
	if all+r.Rest.Out != out || r.Rest.Flows != n+1000-300 {
		t.Errorf("rows %d + rest %d bytes, want %d; rest %d flows", all, r.Rest.Out, out, r.Rest.Flows)
	}
	// The scatter: the 500 largest, and the recent flow the alert named.
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] > sizes[j] })
	if r.FlowsDrawn != 501 || len(r.Charts.Flows.Alerting) != 1 || r.FlowsLost != 1 || r.FlowsSeen != n+1000 {
		t.Fatalf("drawn %d (alerting %d), lost %d, seen %d", r.FlowsDrawn, len(r.Charts.Flows.Alerting), r.FlowsLost, r.FlowsSeen)
	}
	for i, p := range r.Charts.Flows.Quiet {
		if p.X != sizes[i] {
			t.Fatalf("flow %d drawn is %d bytes, the %dth largest is %d", i, p.X, i, sizes[i])
		}
	}
	if a := r.Charts.Flows.Alerting[0]; a.X != 1 || !strings.Contains(a.L, "198.51.3.231:443") {
		t.Errorf("alerting flow %+v", a)
	}
	tl := r.Charts.Timeline
	var flows uint64
	for _, v := range tl.Flows {
		flows += v
	}
	if len(tl.Labels) > maxBars || flows != n+1000 {
		t.Errorf("timeline: %d bars, %d flows", len(tl.Labels), flows)
	}
}

// TestTimelineBars: counts are kept when buckets widen, bars have a
// width a person reads, and alerts dated outside the flows' time are
// counted, not drawn.
func TestTimelineBars(t *testing.T) {
	var tl timeline
	tl.init()
	for i := range 3000 {
		tl.add(t0+int64(i)*int64(time.Second), false) // 50 minutes
	}
	tl.add(t0+10*int64(time.Second), true)
	tl.add(t0+20*int64(time.Hour), true) // a day's summary
	b := tl.bars()
	var flows, alerts uint64
	for i := range b.Labels {
		flows += b.Flows[i]
		alerts += b.Alerts[i]
	}
	if flows != 3000 || alerts != 1 || b.AlertsOutside != 1 {
		t.Errorf("%d flows, %d alerts, %d outside", flows, alerts, b.AlertsOutside)
	}
	if b.Width != 30*time.Second || len(b.Labels) != 100 || b.Labels[0] != "10:00:00" || b.Labels[1] != "10:00:30" {
		t.Errorf("bars of %v: %d, %v", b.Width, len(b.Labels), b.Labels[:2])
	}
}

// TestFacts: evidence is written for a reader: bytes with units, yes and
// no, times in UTC, nested values flattened, thresholds by config key.
func TestFacts(t *testing.T) {
	var a detect.Alert
	line := `{"analytic":"AN0401","evidence":{"measured":{"out_bytes":300032,"handshake":false,"out_in_ratio":663.401,` +
		`"entropy_orig":{"bits":7.957,"class":"encrypted","n":4096},"window_start":"2026-12-01T10:59:19.253284475Z"},` +
		`"thresholds":{"TrafficVolumeThreshold":4096,"EntropyThreshold":7,"TimeWindow":"5m0s"}}}`
	if err := json.Unmarshal([]byte(line), &a); err != nil {
		t.Fatal(err)
	}
	v := alertView(&a)
	got := fmt.Sprint(v.Measured, v.Thresholds)
	want := "[{entropy orig bits 7.957, class encrypted, n 4,096} {handshake no} {out bytes 293.0 KiB (300,032 bytes)} " +
		"{out in ratio 663.401} {window start 2026-12-01 10:59:19.253 UTC}] " +
		"[{EntropyThreshold 7} {TimeWindow 5m0s} {TrafficVolumeThreshold 4.0 KiB (4,096 bytes)}]"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

// TestSummary: the terminal's table lists senders and alerts, and
// escapes what a terminal would act on.
func TestSummary(t *testing.T) {
	c := New(Config{})
	f := flow(1, record.Outbound, "10.0.0.1:40000", "203.0.113.5:443", 2<<20, 100)
	f.OrigProc = proc("/tmp/evil\x1b]0;owned\x07")
	c.Record(f)
	c.AddAlert(&detect.Alert{ID: "a", Analytic: "AN1512", Severity: "high", Title: "sent\x1b[2J 2 MiB",
		Host: &detect.AlertHost{IP: "10.0.0.1"}, Destination: &detect.Destination{Name: "files.example.test", Port: 443}})
	var b bytes.Buffer
	if err := c.Report().WriteSummary(&b, 10, true); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if strings.ContainsAny(s, "\x1b\x07") {
		t.Errorf("control characters reach the terminal:\n%q", s)
	}
	for _, w := range []string{`evil\x1b]0;owned\x07`, "2.0 MiB", "files.example.test:443", `sent\x1b[2J 2 MiB`, "AN1512"} {
		if !strings.Contains(s, w) {
			t.Errorf("summary lacks %q:\n%s", w, s)
		}
	}
	b.Reset()
	c.Report().WriteSummary(&b, 10, false)
	if strings.Contains(b.String(), "SEVERITY") || strings.Contains(b.String(), "No alerts") {
		t.Errorf("alerts listed though the analytics did not run:\n%s", b.String())
	}
}

// BenchmarkRecord is the cost the collector adds per flow record.
func BenchmarkRecord(b *testing.B) {
	c := New(Config{})
	fs := make([]*record.Flow, 1<<14)
	for i := range fs {
		host := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8 & 3), byte(i)})
		fs[i] = flow(i, record.Outbound, netip.AddrPortFrom(host, 40000).String(), "203.0.113.9:443", uint64(i*37%5000), 100)
		fs[i].OrigProc, fs[i].Inspection = proc("/usr/bin/curl"), sni("files.example.test")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Record(fs[i&(len(fs)-1)])
	}
}
