package detect

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// wire is an in-memory fleet: what one engine observes is merged into
// the others, as package fleet does through Kafka.
type wire struct {
	from string
	to   []*Engine
	saw  []Observation
}

func (w *wire) Observe(o *Observation) {
	c := *o
	c.Sensor = w.from
	w.saw = append(w.saw, c)
}

// deliver merges what was observed into the other engines (outside the
// observing engine's lock, as the real consumer does).
func (w *wire) deliver() {
	for i := range w.saw {
		for _, e := range w.to {
			e.Merge(&w.saw[i])
		}
	}
	w.saw = w.saw[:0]
}

// TestFleetPrevalence: three engines, each seeing a different host reach
// one new destination, learn from each other: the first alerts (one
// host), the second too (two hosts, RarePrevalence 2), the third does not
// (three); afterwards a fourth host is rare nowhere. Merging the same
// observations again changes nothing, and merging alone never alerts.
func TestFleetPrevalence(t *testing.T) {
	cfg := Compiled()
	cfg.Baseline.ActivationAfter = 0
	var es [3]*Engine
	var cs [3]*collector
	var ws [3]*wire
	for i := range es {
		es[i], cs[i] = newEngine(t, cfg, nil)
	}
	for i := range es {
		ws[i] = &wire{from: fmt.Sprintf("s%d", i+1)}
		for j := range es {
			if j != i {
				ws[i].to = append(ws[i].to, es[j])
			}
		}
		es[i].SetObserver(ws[i])
	}
	reach := func(i int, at time.Time, host, name string) {
		f := tcp(at, host, "203.0.113.50", 443, 500, 700)
		f.ServerName, f.OrigProc = name, proc("/usr/bin/curl", "curl https://"+name)
		es[i].Flow(f)
		ws[i].deliver()
	}
	rare := func(i int, name string) int {
		n := 0
		for _, a := range cs[i].alerts {
			if (a.Analytic == "rare_host" || a.Analytic == "rare_host_global") && a.Destination.Name == name {
				n++
			}
		}
		return n
	}
	for i := range es {
		reach(i, day0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("10.0.%d.5", i+1), "new.example")
	}
	if rare(0, "new.example") != 1 || rare(1, "new.example") != 1 || rare(2, "new.example") != 0 {
		t.Fatalf("rare alerts %d %d %d, want 1 1 0", rare(0, "new.example"), rare(1, "new.example"), rare(2, "new.example"))
	}
	for i := range es {
		if n := es[i].Prevalence("new.example"); n != 3 {
			t.Fatalf("engine %d: prevalence %d, want 3", i, n)
		}
	}
	for i := range es {
		reach(i, day0.Add(time.Hour), "10.0.9.9", "new.example")
		if rare(i, "new.example") != []int{1, 1, 0}[i] {
			t.Fatalf("engine %d: a fourth host is rare", i)
		}
	}
	// Idempotent: the same observations again, and an older one, change
	// nothing; merging raises no alert.
	before := cs[0].alerts
	e := es[0]
	val := func() []byte { v, _ := e.st.get("pv|new.example", day0); return append([]byte(nil), v...) }
	v0 := val()
	o := Observation{Kind: ObsPrevalence, Sensor: "s2", Dest: "new.example", HostHash: hostHash(mustAddr("10.0.2.5")), First: day0, Time: day0.Add(time.Minute)}
	e.Merge(&o)
	e.Merge(&o)
	o.Time = day0 // an older sighting of the same host
	e.Merge(&o)
	if !reflect.DeepEqual(val(), v0) {
		t.Errorf("merging known observations changed the state\n%x\n%x", v0, val())
	}
	o = Observation{Kind: ObsPrevalence, Sensor: "s2", Dest: "merged-only.example", HostHash: 1, Time: day0}
	e.Merge(&o)
	if len(cs[0].alerts) != len(before) || e.Prevalence("merged-only.example") != 1 {
		t.Errorf("merge alerted or was not kept: %d alerts, prevalence %d", len(cs[0].alerts)-len(before), e.Prevalence("merged-only.example"))
	}
	// Older than the training period by the engine's clock: ignored.
	o = Observation{Kind: ObsPrevalence, Sensor: "s2", Dest: "old.example", HostHash: 2, Time: day0.Add(-31 * 24 * time.Hour)}
	e.Merge(&o)
	if e.Prevalence("old.example") != 0 {
		t.Error("an observation past the training period was merged")
	}
}

// TestFleetObservationsPerDay: a host reaching a destination all day is
// observed once that day, and again the next day.
func TestFleetObservationsPerDay(t *testing.T) {
	cfg := Compiled()
	e, _ := newEngine(t, cfg, nil)
	w := &wire{from: "s1"}
	e.SetObserver(w)
	for h := 0; h < 48; h++ {
		f := tcp(day0.Add(time.Duration(h)*time.Hour), "10.0.0.5", "203.0.113.9", 443, 500, 700)
		f.ServerName = "daily.example"
		e.Flow(f)
	}
	var days []int64
	for _, o := range w.saw {
		if o.Kind == ObsPrevalence {
			days = append(days, dayOf(o.Time))
		}
	}
	if want := []int64{dayOf(day0), dayOf(day0) + 1, dayOf(day0) + 2}; !reflect.DeepEqual(days, want) {
		t.Fatalf("observed on days %v, want %v", days, want)
	}
}

// TestFleetTopHosts: the day's ranking sums the sensors' totals, a
// total republished (a restart) or delivered twice counts once, and each
// engine reports only the hosts it saw.
func TestFleetTopHosts(t *testing.T) {
	cfg := Compiled()
	cfg.Baseline.ActivationAfter = 0
	cfg.PeerGroups = map[string][]string{"finance": {"10.0.1.0/24"}}
	if errs := cfg.compile("test"); len(errs) > 0 {
		t.Fatal(errs)
	}
	a, ca := newEngine(t, cfg, nil)
	b, cb := newEngine(t, cfg, nil)
	wa, wb := &wire{from: "a", to: []*Engine{b}}, &wire{from: "b", to: []*Engine{a}}
	a.SetObserver(wa)
	b.SetObserver(wb)
	up := func(e *Engine, at time.Time, src string, n uint64) {
		f := tcp(at, src, "203.0.113.9", 443, n, 10<<10)
		f.ServerName, f.App, f.Handshake = "wetransfer.com", "tls", true
		e.Flow(f)
	}
	up(a, day0, "10.0.1.5", 4<<20)
	up(a, day0.Add(time.Minute), "10.0.1.5", 4<<20)
	up(b, day0, "10.0.1.6", 6<<20)
	up(b, day0.Add(time.Minute), "10.0.1.5", 3<<20) // the same host on b's link
	a.PublishCounters()
	b.PublishCounters()
	// Delivered twice, plus an older, lower total of a's: max per sensor.
	dup := append([]Observation(nil), wa.saw...)
	wa.deliver()
	wa.saw = append(dup, Observation{Kind: ObsUpload, Sensor: "a", Host: "10.0.1.5", Day: dayOf(day0), Bytes: 1 << 20})
	wa.deliver()
	wb.deliver()
	a.Close()
	b.Close()
	type row struct {
		host  string
		rank  int
		bytes uint64
	}
	rows := func(c *collector, analytic string) []row {
		var r []row
		for _, x := range c.by(analytic) {
			r = append(r, row{x.Host.IP, x.Evidence.Measured["rank"].(int), x.Evidence.Measured["out_bytes"].(uint64)})
		}
		return r
	}
	// 10.0.1.5: 8 MiB on a, 3 MiB on b; 10.0.1.6: 6 MiB on b.
	if got, want := rows(ca, "top_file_sharing_org"), []row{{"10.0.1.5", 1, 11 << 20}}; !reflect.DeepEqual(got, want) {
		t.Errorf("a reports %v, want %v", got, want)
	}
	if got, want := rows(cb, "top_file_sharing_org"), []row{{"10.0.1.5", 1, 11 << 20}, {"10.0.1.6", 2, 6 << 20}}; !reflect.DeepEqual(got, want) {
		t.Errorf("b reports %v, want %v", got, want)
	}
	if got := rows(cb, "top_file_sharing_peer"); len(got) != 2 || got[1].rank != 2 {
		t.Errorf("b's peer group report %v", got)
	}
}

// TestFleetFirstUpload: a host's large upload seen by another sensor
// means its next one here is no first.
func TestFleetFirstUpload(t *testing.T) {
	cfg := Compiled()
	cfg.Baseline.ActivationAfter = 0
	e, c := newEngine(t, cfg, nil)
	o := Observation{Kind: ObsFirstUpload, Sensor: "s2", Host: "10.0.1.5", Time: day0.Add(-24 * time.Hour)}
	e.Merge(&o)
	e.Merge(&o)
	f := tcp(day0, "10.0.1.5", "203.0.113.9", 443, 25<<20, 10<<10)
	f.ServerName = "wetransfer.com"
	e.Flow(f)
	f = tcp(day0, "10.0.1.6", "203.0.113.9", 443, 25<<20, 10<<10)
	f.ServerName = "wetransfer.com"
	e.Flow(f)
	if a := c.by("first_large_upload"); len(a) != 1 || a[0].Host.IP != "10.0.1.6" {
		t.Fatalf("%+v", a)
	}
}

// TestFleetRestore: a sensor that lost its state takes its own upload
// totals back from the topics and goes on from them.
func TestFleetRestore(t *testing.T) {
	cfg := Compiled()
	e, _ := newEngine(t, cfg, nil)
	w := &wire{from: "s1"}
	e.SetObserver(w)
	o := Observation{Kind: ObsUpload, Sensor: "s1", Host: "10.0.1.5", Day: dayOf(day0), Bytes: 5 << 20}
	e.Restore(&o)
	e.Restore(&o)
	f := tcp(day0, "10.0.1.5", "203.0.113.9", 443, 1<<20, 10<<10)
	f.ServerName = "wetransfer.com"
	e.Flow(f)
	e.PublishCounters()
	if n := len(w.saw); n == 0 || w.saw[n-1].Kind != ObsUpload || w.saw[n-1].Bytes != 6<<20 {
		t.Fatalf("published %+v, want a total of 6 MiB", w.saw)
	}
}

// BenchmarkEngineFlowObserved is BenchmarkEngineFlow's new-hosts case
// with an observer that keeps nothing: the cost of publishing where every
// flow is a host new to its destination (the worst case; each such flow
// is one observation).
func BenchmarkEngineFlowObserved(b *testing.B) {
	e := New(Compiled(), NewState(256<<20), nil, func(*Alert) {})
	e.SetObserver(discard{})
	f := &Flow{Proto: 6, OrigBytes: 500, RespBytes: 4000, OrigPkts: 4, RespPkts: 3, Final: true, Observed: true, App: "tls",
		Handshake: true, HTTPBody: -1, CommunityID: CIDOf([]byte("1:x"))}
	names := make([]string, 1<<18)
	for i := range names {
		names[i] = fmt.Sprintf("site%d.example", i)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.ServerName = names[i%len(names)]
		f.Orig = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000))
		f.Resp = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 200)}), 443)
		f.Start = t0.Add(time.Duration(i) * time.Millisecond)
		f.End = f.Start.Add(time.Second)
		e.Flow(f)
	}
}

type discard struct{}

func (discard) Observe(*Observation) {}
