// Package process keeps what host-event feeds say about processes and their
// connections, and attributes each flow to the process at either end.
//
// A flow joins a host's connect event by its 5-tuple (what its Community ID
// hashes) within a window around the flow's start; the window is centred on
// a clock difference learned per host and feed from unambiguous matches, as
// real feeds disagree with the capture by milliseconds, hours or days. A feed
// that lacks the local port (auditd connect, VM Insights) joins by the host's
// own address and the remote address and port, never by the remote address
// alone. The process behind the event is resolved through its ProcessGuid,
// else host, pid and start time, for image, command line, user and parent.
package process

import (
	"maps"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// Process is one process a feed reported.
type Process struct {
	Host          string
	PID           int64
	GUID          string
	Start         time.Time
	Image         string
	Command       string
	User          string
	PPID          int64
	ParentGUID    string
	ParentImage   string
	ParentCommand string
	Feed          string
	// CommandTruncated says Command or ParentCommand was cut at
	// Config.MaxCommandLine bytes.
	CommandTruncated bool
}

// Attribution is the process at one end of a flow and how it was found.
type Attribution struct {
	Process
	Match  string // "5tuple": the connect event's full tuple; "host+remote": host address, remote address and port
	Feed   string // the feed of the connect event
	SkewMS int64  // the event's clock minus the flow's, as matched
	// Conflict lists the other processes whose connect events claim the
	// same flow end within the window (a forged or confused report): the
	// attribution is contested, and whoever reads it should trust it less.
	Conflict []ProcessRef
	// Ancestors are the process's parent, its parent's parent and so on,
	// nearest first, as far as the host events and Config.LineageDepth
	// go (lineage.go).
	Ancestors []Ancestor
}

// ProcessRef names a process that claimed a flow end.
type ProcessRef struct {
	Host  string
	PID   int64 // -1 when the feed did not say
	GUID  string
	Image string
	Feed  string // the feed of its connect event
}

// Config bounds the index.
type Config struct {
	// Window is how far from the flow's start, after the learned clock
	// difference, a connect event may lie.
	Window time.Duration
	// MaxProcesses and MaxConnects bound the counts; MaxBytes bounds the
	// memory the processes, connect events and other events hold, as
	// estimated from their structs and strings (budget.go says what goes
	// when it bites).
	MaxProcesses int
	MaxConnects  int
	MaxBytes     int64
	// MaxCommandLine caps each command line kept, in bytes; a longer one
	// is cut and its process marked CommandTruncated.
	MaxCommandLine int
	// Retention is how long a process or event is kept after its time, in
	// the events' clock.
	Retention time.Duration
	// LineageDepth is how many ancestors of an attributed process a join
	// resolves: 0 is DefaultLineageDepth, a negative depth none, and at
	// most MaxLineageDepth are resolved.
	LineageDepth int
}

// DefaultConfig: a two-minute window (the Security log of one fixture
// drifts by 50 s in four minutes), a million processes and connects,
// 64 MiB, command lines of 4 KiB, a day, four ancestors.
func DefaultConfig() Config {
	return Config{Window: 2 * time.Minute, MaxProcesses: 1 << 20, MaxConnects: 1 << 20, MaxBytes: 64 << 20,
		MaxCommandLine: 4 << 10, Retention: 24 * time.Hour, LineageDepth: DefaultLineageDepth}
}

type tupleKey struct {
	proto       uint8
	local       netip.AddrPort
	remote      netip.AddrPort
	hasLocalPrt bool
}

type hostFeed struct{ host, feed string }

type connect struct {
	ev    feed.Event
	seq   uint64
	bytes int64
}

// Stats counts the index's work.
type Stats struct {
	Processes, Connects uint64
	// Evicted is every process and event dropped for room: the sum of
	// the reasons below.
	Evicted uint64
	// EvictedConnects: connect events past their host's join horizon,
	// dropped for room. RefusedConnects: connect events still inside it,
	// the newest of a host over its share of the budget, dropped; a flood
	// shows here, and costs its own host alone.
	EvictedConnects, RefusedConnects uint64
	// EvictedProcesses: processes no stored connect event names, oldest
	// first, dropped for room (or past MaxProcesses).
	EvictedProcesses uint64
	// EvictedOthers: module loads, file writes, DNS queries and log
	// lines, dropped for room.
	EvictedOthers uint64
	// Truncated counts command lines cut at MaxCommandLine.
	Truncated uint64
	// Bytes is the memory held now, as estimated; MaxBytes its bound.
	Bytes, MaxBytes int64
	Joined, Missed  uint64 // flow ends with and without a process
	// Conflicts counts flow ends two processes claimed.
	Conflicts uint64
	// JoinedByFeed splits Joined by the feed of the connect event that
	// named the process (sysmon, auditd, osquery...).
	JoinedByFeed map[string]uint64
}

// Index holds processes and connect events. Safe for concurrent use.
type Index struct {
	cfg       Config
	mu        sync.Mutex
	byGUID    map[string]*Process
	byPID     map[hostPID][]*Process
	tuples    map[tupleKey][]*connect
	skew      map[hostFeed]time.Duration
	hostAddrs map[netip.Addr]string // addresses hosts reported as their own
	seq       uint64
	Stats     Stats
	// hosts holds what each reporting host (or "user:" account) keeps,
	// in arrival order, with its bytes: the budget is shared by host.
	hosts      map[string]*hostStore
	procCharge map[*Process]int64 // what each stored process is charged
	nConn      int
	nProc      int
	bytes      int64
	// Events other than processes and connects (module loads, file writes,
	// DNS queries), by host, for the analytics.
	others map[string][]feed.Event
}

type hostPID struct {
	host string
	pid  int64
}

// New returns an empty Index.
func New(cfg Config) *Index {
	d := DefaultConfig()
	if cfg.Window <= 0 {
		cfg.Window = d.Window
	}
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = d.MaxProcesses
	}
	if cfg.MaxConnects <= 0 {
		cfg.MaxConnects = d.MaxConnects
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = d.MaxBytes
	}
	if cfg.MaxCommandLine <= 0 {
		cfg.MaxCommandLine = d.MaxCommandLine
	}
	if cfg.Retention <= 0 {
		cfg.Retention = d.Retention
	}
	return &Index{cfg: cfg, byGUID: map[string]*Process{}, byPID: map[hostPID][]*Process{},
		tuples: map[tupleKey][]*connect{}, skew: map[hostFeed]time.Duration{}, hostAddrs: map[netip.Addr]string{},
		others: map[string][]feed.Event{}, hosts: map[string]*hostStore{}, procCharge: map[*Process]int64{}, Stats: Stats{MaxBytes: cfg.MaxBytes}}
}

// Add takes one host event.
func (x *Index) Add(in *feed.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	// The caller's event is left as it came (the analytics read it too);
	// the index keeps a copy with its command lines capped.
	ev := *in
	e := &ev
	cut := x.capStrings(e)
	key := e.Host
	if e.HostAddr.IsValid() {
		x.hostAddrs[e.HostAddr] = e.Host
	}
	switch e.Kind {
	case feed.KindProcessStart:
		x.addProcess(e, cut)
	case feed.KindConnect:
		x.addConnect(e)
	case feed.KindModuleLoad, feed.KindFileCreate, feed.KindDNSQuery, feed.KindServiceLog:
		x.addOther(e.Host, e)
	case feed.KindSaaSFile:
		// A cloud service's record names the account, not a host.
		key = "user:" + e.User
		x.addOther(key, e)
	}
	// Every event with a GUID or pid names a process, even when its
	// creation came before the feed began: keep what it says.
	if e.Kind != feed.KindProcessStart && (e.GUID != "" || e.PID >= 0) && e.Image != "" {
		x.notice(e)
	}
	x.fit(key)
	if key != e.Host {
		x.fit(e.Host)
	}
}

func (x *Index) addOther(key string, e *feed.Event) {
	h := x.host(key)
	x.seq++
	x.others[key] = append(x.others[key], *e)
	h.others = append(h.others, item{bytes: eventBytes(e), seq: x.seq})
	x.charge(h, h.others[len(h.others)-1].bytes)
	h.see(e.Time)
	if len(h.others) > x.cfg.MaxConnects {
		x.dropOther(key, h, 0)
		x.Stats.EvictedOthers++
		x.Stats.Evicted++
	}
}

func (x *Index) addProcess(e *feed.Event, cut bool) {
	p := &Process{Host: e.Host, PID: e.PID, GUID: e.GUID, Start: e.Time, Image: e.Image, Command: e.Command,
		User: e.User, PPID: e.PPID, ParentGUID: e.ParentGUID, ParentImage: e.ParentImg, ParentCommand: e.ParentCmd, Feed: e.Feed,
		CommandTruncated: cut}
	if p.GUID != "" {
		if old := x.byGUID[p.GUID]; old != nil {
			// A second report of the same process (Sysmon and Security
			// both) fills what the first lacked.
			x.mergeCharged(old, p)
			return
		}
		x.byGUID[p.GUID] = p
	}
	if p.PID >= 0 {
		k := hostPID{p.Host, p.PID}
		list := x.byPID[k]
		// The same process reported by a second feed (4688 beside
		// Sysmon 1): merge rather than keep two.
		for _, q := range list {
			if sameProcess(q, p) {
				x.mergeCharged(q, p)
				if q.GUID != "" {
					x.byGUID[q.GUID] = q
				}
				return
			}
		}
		list = append(list, p)
		sort.Slice(list, func(i, j int) bool { return list[i].Start.Before(list[j].Start) })
		x.byPID[k] = list
	}
	h := x.host(p.Host)
	x.seq++
	h.procs = append(h.procs, p)
	h.procItems = append(h.procItems, item{seq: x.seq})
	x.procCharge[p] = processBytes(p)
	x.charge(h, x.procCharge[p])
	h.see(p.Start)
	x.nProc++
	x.Stats.Processes++
}

// mergeCharged merges src into dst and charges dst's host what dst grew.
func (x *Index) mergeCharged(dst, src *Process) {
	before := processBytes(dst)
	merge(dst, src)
	grown := processBytes(dst) - before
	if grown == 0 {
		return
	}
	if _, ok := x.procCharge[dst]; ok {
		x.procCharge[dst] += grown
		x.charge(x.host(dst.Host), grown)
	}
}

// sameProcess: two start reports of one pid on one host close in time with
// the same image file name.
func sameProcess(a, b *Process) bool {
	d := a.Start.Sub(b.Start)
	if d < 0 {
		d = -d
	}
	return d < 5*time.Second && feed.ImageName(a.Image) == feed.ImageName(b.Image)
}

func merge(dst, src *Process) {
	if dst.GUID == "" {
		dst.GUID = src.GUID
	}
	if dst.Command == "" {
		dst.Command = src.Command
		dst.CommandTruncated = dst.CommandTruncated || src.CommandTruncated
	}
	if dst.User == "" {
		dst.User = src.User
	}
	if dst.ParentGUID == "" {
		dst.ParentGUID = src.ParentGUID
	}
	if dst.ParentImage == "" {
		dst.ParentImage = src.ParentImage
	}
	if dst.ParentCommand == "" {
		dst.ParentCommand = src.ParentCommand
	}
	if dst.PPID < 0 {
		dst.PPID = src.PPID
	}
	if dst.PID < 0 {
		dst.PID = src.PID
	}
	// A full path beats a short name ("bash" from a connect event).
	if !strings.ContainsAny(dst.Image, `\/`) && strings.ContainsAny(src.Image, `\/`) {
		dst.Image = src.Image
	}
}

func (x *Index) dropProcess(p *Process) {
	if p.GUID != "" && x.byGUID[p.GUID] == p {
		delete(x.byGUID, p.GUID)
	}
	k := hostPID{p.Host, p.PID}
	list := x.byPID[k]
	for i, q := range list {
		if q == p {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(x.byPID, k)
	} else {
		x.byPID[k] = list
	}
}

// notice records a process known only from its other events.
func (x *Index) notice(e *feed.Event) {
	if e.GUID != "" && x.byGUID[e.GUID] != nil {
		return
	}
	if e.GUID == "" {
		if list := x.byPID[hostPID{e.Host, e.PID}]; len(list) > 0 {
			return
		}
	}
	x.addProcess(&feed.Event{Kind: feed.KindProcessStart, Host: e.Host, PID: e.PID, GUID: e.GUID, Image: e.Image,
		User: e.User, PPID: -1, Feed: e.Feed, Time: time.Time{}}, false)
}

func keyOf(e *feed.Event) tupleKey {
	local, lport := e.Local()
	remote, rport := e.Remote()
	k := tupleKey{proto: e.Proto, remote: netip.AddrPortFrom(remote, rport)}
	if e.HasSrcPort {
		k.local, k.hasLocalPrt = netip.AddrPortFrom(local, lport), true
	}
	return k
}

func (x *Index) addConnect(e *feed.Event) {
	x.seq++
	c := &connect{ev: *e, seq: x.seq}
	// The join reads command lines from the process's own record, never
	// from its connect events: they are not kept twice.
	c.ev.Command, c.ev.ParentCmd = "", ""
	c.bytes = eventBytes(&c.ev) + connectOverhead
	local, _ := e.Local()
	if e.HasSrcPort && local.IsValid() && !local.IsUnspecified() && !local.IsLoopback() {
		x.hostAddrs[local] = e.Host
	}
	k := keyOf(e)
	x.tuples[k] = append(x.tuples[k], c)
	h := x.host(e.Host)
	h.conns = append(h.conns, c)
	h.ref(&c.ev, 1)
	h.see(e.Time)
	x.charge(h, c.bytes)
	x.nConn++
	x.Stats.Connects++
}

func (x *Index) dropConnect(c *connect) {
	k := keyOf(&c.ev)
	list := x.tuples[k]
	for i, q := range list {
		if q == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(x.tuples, k)
	} else {
		x.tuples[k] = list
	}
}

// Snapshot returns the counters.
func (x *Index) Snapshot() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.Stats
	s.Bytes = x.bytes
	s.JoinedByFeed = maps.Clone(x.Stats.JoinedByFeed)
	return s
}

// Expire drops processes and connect events older than the retention,
// counted back from now in the events' clock.
func (x *Index) Expire(now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	limit := now.Add(-x.cfg.Retention)
	for name, h := range x.hosts {
		for len(h.conns) > 0 && h.conns[0].ev.Time.Before(limit) {
			x.dropConnectAt(h, 0)
		}
		for i := 0; i < len(h.procs); {
			if p := h.procs[i]; !p.Start.IsZero() && p.Start.Before(limit) {
				x.dropProcessAt(h, i)
				continue
			}
			i++
		}
		x.forgetIfEmpty(name, h)
	}
}
