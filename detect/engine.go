// Package detect runs the analytics over flow records and host events:
// baselines, prevalence and dedup state in fastcache on the traffic's own
// clock, and alerts that carry the evidence that fired them.
package detect

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
)

// Events is what the analytics ask of the host events: module loads, file
// writes, SaaS calls, appliance log lines (process.Index answers it).
type Events interface {
	Query(host string, from, to time.Time, guid string, pid int64, kinds ...feed.Kind) []feed.Event
}

// Stats counts what the engine did.
type Stats struct {
	Flows      uint64
	Events     uint64
	Alerts     uint64
	Suppressed uint64 // alerts whose dedup key was still live
	// DNSMessages are the DNS messages the DNS-tunnel analytic judged;
	// DNSKeysDropped the (host, domain) windows it had no room for.
	DNSMessages    uint64
	DNSKeysDropped uint64
	ByAnalytic     map[string]uint64
}

// Engine runs the analytics. It is safe for several exporters to call at
// once; each call takes the engine's lock, since the baselines are shared.
type Engine struct {
	mu       sync.Mutex
	cfg      *Config
	st       *State
	ev       Events
	out      func(*Alert)
	now      time.Time
	first    time.Time
	days     int64                // distinct days with traffic: the baselines' age
	last     int64                // the latest of them
	seen     map[flowID][2]uint64 // interim records' counts, so the next adds only the difference
	top      *topHosts
	fleet    *fleetState // nil: a lone sensor (fleet.go)
	dns      *dnsTunnel  // the DNS-tunnel analytic's windows (dns_tunnel.go)
	Stats    Stats
	flowAn   []flowAnalytic
	scratch  rec // the value being written
	hostsBuf []prevSeen
	v        view
	kb       []byte
}

// rec starts a value in the engine's scratch record; it is valid until
// the next call.
func (e *Engine) rec() *rec {
	e.scratch.b = e.scratch.b[:0]
	return &e.scratch
}

type flowID struct {
	cid   CommunityID
	start int64
}

// flowAnalytic is one analytic fed flow by flow.
type flowAnalytic interface {
	flow(e *Engine, f *Flow, v *view)
}

// New returns an engine over a compiled config (LoadConfig, Compiled) and
// a state (NewState, LoadState); ev may be nil when there are no host
// events. Alerts go to out, one call each, under the engine's lock.
func New(cfg *Config, st *State, ev Events, out func(*Alert)) *Engine {
	e := &Engine{cfg: cfg, st: st, ev: ev, out: out, seen: map[flowID][2]uint64{}, top: newTopHosts(), dns: newDNSTunnel(),
		Stats: Stats{ByAnalytic: map[string]uint64{}}}
	if v, ok := st.get("meta|first", forever); ok {
		r := reader{b: v}
		e.first = time.Unix(0, r.i64())
		e.days, e.last = r.i64(), r.i64()
	}
	e.top.load(st)
	e.flowAn = analytics(cfg)
	return e
}

// analytics lists the enabled analytics, in the order they run for each
// flow.
func analytics(cfg *Config) []flowAnalytic {
	var an []flowAnalytic
	for _, a := range []struct {
		on bool
		a  flowAnalytic
	}{
		{cfg.EncryptedChannel.Enabled, encryptedChannel{}},
		{cfg.AN1511.Enabled, exfilApp{}},
		{cfg.AN1512.Enabled, toolUpload{}},
		{cfg.AN1513.Enabled, macAppUpload{}},
		{cfg.AN1515.Enabled, datastoreTransfer{}},
		{cfg.WebFileSharing.Enabled, webFileSharing{}},
		{cfg.RareHost.Enabled, rareHost{}},
		{cfg.DNSTunnel.Enabled, dnsTunnelFlow{}},
	} {
		if a.on {
			an = append(an, a.a)
		}
	}
	return an
}

// Reconfigure puts a new compiled config in force from the next flow or
// event: thresholds, lists, peer groups, analytics switched on or off.
// The state (baselines, prevalence, open windows, dedup keys) is kept, so
// a reload does not restart training.
func (e *Engine) Reconfigure(cfg *Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg = cfg
	e.flowAn = analytics(cfg)
}

// UseEvents gives the analytics the host events to query.
func (e *Engine) UseEvents(ev Events) {
	e.mu.Lock()
	e.ev = ev
	e.mu.Unlock()
}

// view is one flow as the analytics share it: which end is ours, what it
// sent and received since the flow's last record, and who sent it.
type view struct {
	inside, remote netip.AddrPort
	origInside     bool
	outbound       bool // the internal end initiated, to an external host
	out, in        uint64
	totalOut       uint64 // the flow's totals so far
	totalIn        uint64
	proc           *process.Attribution // the process at the internal end
	host           string               // hostIP's, once made
	hostName       string
	dest           string // destName's, once made
	name           string // the server name: lower case, no port
	svcCat, svcDom string // the web service it belongs to, if listed
	dyn            string // the dynamic-DNS suffix it lies under
}

// hostIP names the internal host in state keys and alerts: its address.
// It is made when an analytic needs it, not for every flow.
func (v *view) hostIP() string {
	if v.host == "" {
		v.host = v.inside.Addr().String()
	}
	return v.host
}

// destName names the remote end: its server name, else its address.
func (v *view) destName() string {
	if v.dest == "" {
		v.dest = v.name
		if v.dest == "" {
			v.dest = v.remote.Addr().String()
		}
	}
	return v.dest
}

// service reports whether the flow's server is one of want.
func (v *view) service(want []string) (category, domain string, ok bool) {
	return matches(v.name, v.svcCat, v.svcDom, want)
}

// Flow runs the analytics over one flow record.
func (e *Engine) Flow(f *Flow) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Stats.Flows++
	e.tick(f.End)
	// The view lives in the engine: passed to the analytics through an
	// interface, a local one would be allocated per flow.
	e.v = view{}
	v := &e.v
	oh, rh := e.cfg.Home(f.Orig.Addr()), e.cfg.Home(f.Resp.Addr())
	switch {
	case oh:
		v.origInside, v.inside, v.remote, v.proc = true, f.Orig, f.Resp, f.OrigProc
		v.outbound = !rh
	case rh:
		v.inside, v.remote, v.proc = f.Resp, f.Orig, f.RespProc
	default:
		return // neither end is ours
	}
	v.totalOut, v.totalIn = f.sent(v.origInside)
	id := flowID{f.CommunityID, f.Start.UnixNano()}
	prev := e.seen[id]
	v.out, v.in = v.totalOut-min(prev[0], v.totalOut), v.totalIn-min(prev[1], v.totalIn)
	if f.Final {
		delete(e.seen, id)
	} else {
		if len(e.seen) > 1<<20 {
			clear(e.seen) // a bound; what is lost is counted twice at worst
		}
		e.seen[id] = [2]uint64{v.totalOut, v.totalIn}
	}
	if v.proc != nil {
		v.hostName = v.proc.Host
	}
	if f.ServerName != "" {
		v.name = strings.ToLower(hostOnly(f.ServerName))
		v.svcCat, v.svcDom = e.cfg.lists.service(v.name)
		v.dyn = e.cfg.lists.dynamicDNS(v.name)
	}
	for _, a := range e.flowAn {
		a.flow(e, f, v)
	}
}

// Event runs the analytics fed by host events (the SaaS one).
func (e *Engine) Event(ev *feed.Event) {
	if ev.Kind != feed.KindSaaSFile || !e.cfg.AN1514.Enabled {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Stats.Events++
	e.tick(ev.Time)
	saasCalls(e, ev)
}

// tick moves the engine's clock, the latest time seen, and ends the day
// for the daily analytics when it rolls over.
func (e *Engine) tick(t time.Time) {
	changed := false
	if e.first.IsZero() || t.Before(e.first) {
		e.first, changed = t, true
	}
	if d := dayOf(t); d > e.last {
		e.days, e.last, changed = e.days+1, d, true
	}
	if changed {
		e.st.set("meta|first", forever, e.rec().i64(e.first.UnixNano()).i64(e.days).i64(e.last).b)
	}
	if t.After(e.now) {
		if !e.now.IsZero() && dayOf(t) != dayOf(e.now) {
			e.endDay(e.now)
		}
		e.now = t
	}
}

func dayOf(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// active reports whether the baselines have seen enough data to alert:
// traffic on ActivationAfter's worth of distinct days. A capture holding
// one flow from 2016 and one from 2022 is two days of data, not six years.
func (e *Engine) active() bool {
	need := int64((e.cfg.Baseline.ActivationAfter.D() + 24*time.Hour - 1) / (24 * time.Hour))
	return e.days > need // need whole days before the current one
}

// Snapshot returns the counts so far; safe while flows are fed.
func (e *Engine) Snapshot() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.Stats
	s.ByAnalytic = make(map[string]uint64, len(e.Stats.ByAnalytic))
	for k, v := range e.Stats.ByAnalytic {
		s.ByAnalytic[k] = v
	}
	return s
}

// Close ends the day in progress for the daily analytics (a replay's
// last day), so its top hosts are reported.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.now.IsZero() {
		e.endDay(e.now)
	}
	e.dns.close(e)
}

// Save writes the state to path, with the day's running totals.
func (e *Engine) Save(path string) error {
	e.mu.Lock()
	e.top.save(e.st)
	e.mu.Unlock()
	return e.st.Save(path)
}

// emit sends an alert unless its dedup key is live.
func (e *Engine) emit(a *Alert) {
	key := "dd|" + a.DedupKey
	if _, ok := e.st.get(key, a.TS); ok {
		e.Stats.Suppressed++
		return
	}
	e.st.set(key, a.TS.Add(e.cfg.Baseline.Dedup.D()), nil)
	a.finish()
	e.Stats.Alerts++
	e.Stats.ByAnalytic[a.Analytic]++
	e.out(a)
}

// alertFor fills in what every flow alert says of the flow's ends.
func (e *Engine) alertFor(f *Flow, v *view, analytic, technique string) *Alert {
	a := &Alert{TS: f.End, Analytic: analytic, Technique: technique,
		Host:        &AlertHost{IP: v.inside.Addr().String(), Name: v.hostName, PeerGroup: e.cfg.PeerGroup(v.inside.Addr())},
		Process:     alertProcess(v.proc),
		Destination: &Destination{IP: v.remote.Addr().String(), Port: v.remote.Port(), Name: v.name},
		Evidence:    Evidence{Measured: map[string]any{}, Thresholds: map[string]any{}, Baseline: map[string]any{}},
	}
	if !f.CommunityID.IsZero() {
		a.Evidence.CommunityIDs = []string{f.CommunityID.String()}
	}
	if v.proc == nil {
		a.Missing = append(a.Missing, "process")
	}
	if !f.Observed {
		a.Missing = append(a.Missing, "payload")
	}
	return a
}

// procKey names the internal end's program in state keys.
func procKey(v *view) string {
	if v.proc == nil {
		return "-"
	}
	return baseName(v.proc.Image)
}

// window is a running total over a TimeWindow, started by its first
// flow: bytes each way, flows, and the first Community IDs.
type window struct {
	start   time.Time
	out, in uint64
	flows   uint64
	cids    []string
}

const maxWindowCIDs = 16

// addWindow adds a flow's bytes to the window under key and returns the
// totals; a window past its end starts again.
func (e *Engine) addWindow(key string, span time.Duration, t time.Time, out, in uint64, cid CommunityID) window {
	w := window{start: t}
	if b, ok := e.st.get(key, t); ok {
		r := reader{b: b}
		start := time.Unix(0, r.i64())
		o, i, n := r.u64(), r.u64(), r.u64()
		k := r.u64()
		var cids []string
		for j := uint64(0); j < k && r.err == nil; j++ {
			cids = append(cids, r.str())
		}
		if r.err == nil {
			w = window{start: start, out: o, in: i, flows: n, cids: cids}
		}
	}
	w.out += out
	w.in += in
	w.flows++
	if !cid.IsZero() && len(w.cids) < maxWindowCIDs && !containsCID(w.cids, &cid) {
		w.cids = append(w.cids, cid.String())
	}
	r := e.rec().i64(w.start.UnixNano()).u64(w.out).u64(w.in).u64(w.flows).u64(uint64(len(w.cids)))
	for _, c := range w.cids {
		r.str(c)
	}
	e.st.set(key, w.start.Add(span), r.b)
	return w
}

// resetWindow ends a window once it has alerted, so the next alert needs
// a fresh threshold's worth.
func (e *Engine) resetWindow(key string) { e.st.del(key) }

func containsCID(list []string, c *CommunityID) bool {
	for _, x := range list {
		if c.Is(x) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// topHosts is the day's bytes to file-sharing services per internal host.
type topHosts struct {
	day   int64
	bytes map[string]uint64
	names map[string]string // host -> peer group
}

func newTopHosts() *topHosts {
	return &topHosts{bytes: map[string]uint64{}, names: map[string]string{}}
}

const maxTopHosts = 1 << 16

func (t *topHosts) add(day int64, host, group string, n uint64) {
	if t.day != day {
		t.day, t.bytes, t.names = day, map[string]uint64{}, map[string]string{}
	}
	if _, ok := t.bytes[host]; !ok && len(t.bytes) >= maxTopHosts {
		return
	}
	t.bytes[host] += n
	t.names[host] = group
}

// ranked returns the hosts by bytes, most first, within a peer group ("":
// all).
func (t *topHosts) ranked(group string) []string {
	var hs []string
	for h := range t.bytes {
		if group == "" || t.names[h] == group {
			hs = append(hs, h)
		}
	}
	sort.Slice(hs, func(i, j int) bool {
		if t.bytes[hs[i]] != t.bytes[hs[j]] {
			return t.bytes[hs[i]] > t.bytes[hs[j]]
		}
		return hs[i] < hs[j]
	})
	return hs
}

func (t *topHosts) save(st *State) {
	r := (&rec{}).i64(t.day).u64(uint64(len(t.bytes)))
	for h, n := range t.bytes {
		r.str(h).str(t.names[h]).u64(n)
	}
	b := make([]byte, 8, 8+len(r.b))
	binary.LittleEndian.PutUint64(b, uint64(forever.UnixNano()))
	st.c.SetBig([]byte("top|day"), append(b, r.b...))
}

func (t *topHosts) load(st *State) {
	v := st.c.GetBig(nil, []byte("top|day"))
	if len(v) < 8 {
		return
	}
	r := reader{b: v[8:]}
	day, n := r.i64(), r.u64()
	m, g := map[string]uint64{}, map[string]string{}
	for i := uint64(0); i < n && r.err == nil; i++ {
		h, grp, b := r.str(), r.str(), r.u64()
		m[h], g[h] = b, grp
	}
	if r.err == nil {
		t.day, t.bytes, t.names = day, m, g
	}
}
