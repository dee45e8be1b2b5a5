package process

import (
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// The budget. Every process, connect event and other event is charged to
// the host that reported it (a SaaS record to its account), at its size
// as estimated from its struct and strings. Past Config.MaxBytes (or a
// count bound) room is made, one item at a time, from the host that
// added the last item when it holds more than its fair share (the budget
// over the hosts holding anything), else from the host holding most:
//
//  1. its oldest connect event, then other event, then process that no
//     stored connect event names, older than twice the window before the
//     newest event the host reported (a flow cannot join it any more,
//     whatever the learned clock difference within the window);
//  2. else its newest item, refused (RefusedConnects for a connect
//     event): what is inside the horizon came first, and stays.
//
// So a flood of forged connect events, for other hosts or for the same
// one, costs the flooding host (or host name) its own newest events and
// never evicts an event a flow may still join. A forger who claims a real
// host's name and dates its events far ahead moves that host's horizon
// and can still push its events out: that shows as EvictedConnects of the
// host, counted.
//
// Ancestors (lineage.go) cost the index nothing more: they are resolved
// from the stored processes when a flow joins, never stored, and their
// strings are those records' own (each already capped at MaxCommandLine).
// What a join hands out beside its Attribution is at most MaxLineageDepth
// small structs; an evicted parent simply ends the chain earlier.

// horizonWindows is how many windows back from a host's newest event an
// item stops mattering to a join.
const horizonWindows = 2

// connectOverhead is what a connect event costs beside its event: its
// entry in the tuple map and the two lists that point at it, with their
// growth. Measured: 100,000 forged connect events held 1,020 bytes each on
// the heap against 692 of event and strings; at 128 the index held 1.8
// times its budget in the soak.
const connectOverhead = 330

// indexOverhead is what a process costs beside its struct and strings:
// its entries in the GUID and pid maps. Measured as connectOverhead: 378
// bytes each held for 228 of struct and strings.
const indexOverhead = 150

// procScan is how many of a host's oldest processes an eviction looks at.
const procScan = 64

// item is one stored process or other event's arrival, and an other
// event's charge (a process's is in Index.procCharge, as merges change it).
type item struct {
	bytes int64
	seq   uint64
}

// hostStore is what one reporting host holds, each list in arrival order.
type hostStore struct {
	conns     []*connect
	procs     []*Process
	procItems []item
	others    []item // beside Index.others[host]
	bytes     int64
	newest    time.Time
	// pids and guids count the stored connect events naming each, so a
	// process in use is not evicted.
	pids  map[int64]int
	guids map[string]int
}

func (x *Index) host(name string) *hostStore {
	h := x.hosts[name]
	if h == nil {
		h = &hostStore{pids: map[int64]int{}, guids: map[string]int{}}
		x.hosts[name] = h
	}
	return h
}

func (x *Index) charge(h *hostStore, n int64) {
	h.bytes += n
	x.bytes += n
}

func (h *hostStore) see(t time.Time) {
	if t.After(h.newest) {
		h.newest = t
	}
}

func (h *hostStore) ref(e *feed.Event, n int) {
	if e.PID >= 0 {
		h.pids[e.PID] += n
		if h.pids[e.PID] <= 0 {
			delete(h.pids, e.PID)
		}
	}
	if e.GUID != "" {
		h.guids[e.GUID] += n
		if h.guids[e.GUID] <= 0 {
			delete(h.guids, e.GUID)
		}
	}
}

func (h *hostStore) inUse(p *Process) bool {
	return p.PID >= 0 && h.pids[p.PID] > 0 || p.GUID != "" && h.guids[p.GUID] > 0
}

func (x *Index) over() bool {
	return x.bytes > x.cfg.MaxBytes || x.nConn > x.cfg.MaxConnects || x.nProc > x.cfg.MaxProcesses
}

// fit makes room after key added an item, as the comment above says.
func (x *Index) fit(key string) {
	for x.over() {
		name, h := key, x.hosts[key]
		if h == nil || h.bytes <= x.cfg.MaxBytes/int64(len(x.hosts)) {
			name, h = x.largest()
		}
		if h == nil || !x.shed(name, h) {
			return
		}
		x.Stats.Evicted++
		x.forgetIfEmpty(name, h)
	}
}

func (x *Index) largest() (string, *hostStore) {
	var name string
	var big *hostStore
	for n, h := range x.hosts {
		if big == nil || h.bytes > big.bytes {
			name, big = n, h
		}
	}
	return name, big
}

// shed drops one item of a host; false when it holds none.
func (x *Index) shed(name string, h *hostStore) bool {
	horizon := h.newest.Add(-horizonWindows * x.cfg.Window)
	if len(h.conns) > 0 && h.conns[0].ev.Time.Before(horizon) {
		x.dropConnectAt(h, 0)
		x.Stats.EvictedConnects++
		return true
	}
	if o := x.others[name]; len(o) > 0 && o[0].Time.Before(horizon) {
		x.dropOther(name, h, 0)
		x.Stats.EvictedOthers++
		return true
	}
	// A bounded look from the oldest: processes in use stay, and a scan
	// of them all per eviction would be quadratic.
	for i, p := range h.procs[:min(len(h.procs), procScan)] {
		if p.Start.Before(horizon) && !h.inUse(p) {
			x.dropProcessAt(h, i)
			x.Stats.EvictedProcesses++
			return true
		}
	}
	// All of it may still join a flow: the newest arrival goes.
	var cs, ps, os uint64
	if n := len(h.conns); n > 0 {
		cs = h.conns[n-1].seq
	}
	if n := len(h.procItems); n > 0 {
		ps = h.procItems[n-1].seq
	}
	if n := len(h.others); n > 0 {
		os = h.others[n-1].seq
	}
	switch {
	case cs > 0 && cs >= ps && cs >= os:
		x.dropConnectAt(h, len(h.conns)-1)
		x.Stats.RefusedConnects++
	case ps > 0 && ps >= os:
		x.dropProcessAt(h, len(h.procs)-1)
		x.Stats.EvictedProcesses++
	case os > 0:
		x.dropOther(name, h, len(h.others)-1)
		x.Stats.EvictedOthers++
	default:
		return false
	}
	return true
}

func (x *Index) dropConnectAt(h *hostStore, i int) {
	c := h.conns[i]
	x.dropConnect(c)
	h.ref(&c.ev, -1)
	x.charge(h, -c.bytes)
	x.nConn--
	h.conns = removeAt(h.conns, i)
}

func (x *Index) dropProcessAt(h *hostStore, i int) {
	p := h.procs[i]
	x.dropProcess(p)
	x.charge(h, -x.procCharge[p])
	delete(x.procCharge, p)
	x.nProc--
	h.procs = removeAt(h.procs, i)
	h.procItems = removeAt(h.procItems, i)
}

func (x *Index) dropOther(name string, h *hostStore, i int) {
	x.charge(h, -h.others[i].bytes)
	h.others = removeAt(h.others, i)
	list := removeAt(x.others[name], i)
	if len(list) == 0 {
		delete(x.others, name)
	} else {
		x.others[name] = list
	}
}

// forgetIfEmpty drops a host that holds nothing, so host names a forger
// makes up do not pile up.
func (x *Index) forgetIfEmpty(name string, h *hostStore) {
	if len(h.conns) == 0 && len(h.procs) == 0 && len(h.others) == 0 {
		delete(x.hosts, name)
	}
}

// removeAt removes s[i], keeping the order; the freed slot is zeroed so
// what it pointed at can be collected.
func removeAt[T any](s []T, i int) []T {
	var zero T
	if i == 0 {
		s[0] = zero
		return s[1:]
	}
	copy(s[i:], s[i+1:])
	s[len(s)-1] = zero
	return s[:len(s)-1]
}

// eventBytes estimates what an event holds.
func eventBytes(e *feed.Event) int64 {
	return int64(unsafe.Sizeof(*e)) + int64(len(e.Host)+len(e.Feed)+len(e.GUID)+len(e.ParentGUID)+len(e.Image)+
		len(e.Command)+len(e.User)+len(e.ParentImg)+len(e.ParentCmd)+len(e.Target)+len(e.Results)+len(e.Action))
}

// processBytes estimates what a process holds.
func processBytes(p *Process) int64 {
	return int64(unsafe.Sizeof(*p)) + indexOverhead + int64(len(p.Host)+len(p.GUID)+len(p.Image)+len(p.Command)+
		len(p.User)+len(p.ParentGUID)+len(p.ParentImage)+len(p.ParentCommand)+len(p.Feed))
}

// capStrings cuts an event's long strings at MaxCommandLine bytes (on a
// character boundary) and reports whether a command line was cut. The
// prefix is copied: a slice of a long string would keep all of it.
func (x *Index) capStrings(e *feed.Event) (cmdCut bool) {
	limit := x.cfg.MaxCommandLine
	cut := func(s *string) bool {
		if len(*s) <= limit {
			return false
		}
		n := limit
		for n > 0 && !utf8.RuneStart((*s)[n]) {
			n--
		}
		*s = strings.Clone((*s)[:n])
		x.Stats.Truncated++
		return true
	}
	cmdCut = cut(&e.Command)
	cmdCut = cut(&e.ParentCmd) || cmdCut
	cut(&e.Image)
	cut(&e.ParentImg)
	cut(&e.Target)
	cut(&e.Results)
	cut(&e.User)
	return cmdCut
}
