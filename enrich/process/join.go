package process

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// Flow is what the join needs of a flow record.
type Flow struct {
	Proto      uint8
	Orig, Resp netip.AddrPort
	Start      time.Time
}

// Join attributes both ends of a flow: the originator's process and, for
// an internal flow whose responder is also instrumented, the responder's.
func (x *Index) Join(f Flow) (orig, resp *Attribution) {
	x.mu.Lock()
	defer x.mu.Unlock()
	orig = x.end(f, f.Orig, f.Resp, true)
	resp = x.end(f, f.Resp, f.Orig, false)
	return orig, resp
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// end finds the process at local, talking to remote; initiator says local
// is the flow's originator.
func (x *Index) end(f Flow, local, remote netip.AddrPort, initiator bool) *Attribution {
	cands := x.tuples[tupleKey{proto: f.Proto, local: local, remote: remote, hasLocalPrt: true}]
	chosen := x.pick(cands, f.Start, nil)
	match := "5tuple"
	if len(chosen) == 0 {
		// Feeds without the local port: the host that owns the local
		// address, the remote address, and the service port.
		host, known := x.hostAddrs[local.Addr()]
		keep := func(c *connect) bool {
			e := &c.ev
			if e.Initiated != initiator {
				return false
			}
			if la, _ := e.Local(); la.IsValid() && !la.IsUnspecified() {
				return la == local.Addr()
			}
			return known && e.Host == host || e.HostAddr == local.Addr()
		}
		service := f.Resp.Port()
		var list []*connect
		list = append(list, x.tuples[tupleKey{proto: f.Proto, remote: netip.AddrPortFrom(remote.Addr(), service)}]...)
		if !initiator {
			list = append(list, x.tuples[tupleKey{proto: f.Proto, remote: remote}]...)
		}
		chosen = x.pick(list, f.Start, keep)
		match = "host+remote"
	}
	if len(chosen) == 0 {
		if _, known := x.hostAddrs[local.Addr()]; known {
			x.Stats.Missed++
		}
		return nil
	}
	x.Stats.Joined++
	// The richest report leads (Sysmon's, with its GUID); the others
	// fill in what it lacks (the filtering platform's pid).
	lead := chosen[0]
	for _, c := range chosen[1:] {
		if c.ev.GUID != "" && lead.ev.GUID == "" {
			lead = c
		}
	}
	if x.Stats.JoinedByFeed == nil {
		x.Stats.JoinedByFeed = map[string]uint64{}
	}
	x.Stats.JoinedByFeed[lead.ev.Feed]++
	a := &Attribution{Process: x.resolve(&lead.ev), Match: match, Feed: lead.ev.Feed,
		SkewMS: lead.ev.Time.Sub(f.Start).Milliseconds()}
	for _, c := range chosen {
		if c != lead {
			p := x.resolve(&c.ev)
			merge(&a.Process, &p)
		}
	}
	return a
}

// pick returns, per host and feed, the connect event nearest the flow's
// start after that feed's learned clock difference, within the window. A
// host and feed with no difference learned yet take their only candidate,
// and learn from it; the latest difference wins, so a drifting clock is
// followed.
func (x *Index) pick(cands []*connect, start time.Time, keep func(*connect) bool) []*connect {
	if len(cands) == 0 {
		return nil
	}
	groups := map[hostFeed][]*connect{}
	var order []hostFeed
	for _, c := range cands {
		if keep != nil && !keep(c) {
			continue
		}
		hf := hostFeed{c.ev.Host, c.ev.Feed}
		if _, ok := groups[hf]; !ok {
			order = append(order, hf)
		}
		groups[hf] = append(groups[hf], c)
	}
	var out []*connect
	for _, hf := range order {
		g := groups[hf]
		sk, learned := x.skew[hf]
		var best *connect
		var bestD time.Duration
		for _, c := range g {
			d := abs(c.ev.Time.Sub(start) - sk)
			if best == nil || d < bestD {
				best, bestD = c, d
			}
		}
		switch {
		case learned && bestD <= x.cfg.Window:
		case !learned && len(g) == 1:
		case !learned && bestD <= x.cfg.Window:
			// Several candidates and no difference learned: the
			// nearest, if it is near.
		default:
			continue
		}
		if len(g) == 1 || learned {
			x.skew[hf] = best.ev.Time.Sub(start)
		}
		out = append(out, best)
	}
	return out
}

// resolve finds the process behind an event: by GUID, else by host and pid
// at the event's time; the event's own fields fill what is unknown.
func (x *Index) resolve(e *feed.Event) Process {
	p := Process{PID: -1, PPID: -1}
	g := x.byGUID[e.GUID]
	switch {
	case g != nil && (e.PID < 0 || g.PID < 0 || g.PID == e.PID):
		p = *g
	case e.PID >= 0 && x.byPIDAt(e.Host, e.PID, e.Time) != nil:
		// A pid that is not the GUID's: the process forked (keeping its
		// parent's GUID) and exec'd; its own start record is by pid.
		p = *x.byPIDAt(e.Host, e.PID, e.Time)
	case g != nil:
		// Forked and not (yet) exec'd: a copy of the GUID's process.
		p = *g
		p.PID, p.PPID, p.ParentGUID = e.PID, g.PID, g.GUID
		p.ParentImage, p.ParentCommand = g.Image, g.Command
	}
	p.Host = e.Host
	if p.PID < 0 {
		p.PID = e.PID
	}
	if p.Image == "" {
		p.Image = e.Image
	}
	if p.User == "" {
		p.User = e.User
	}
	if p.GUID == "" {
		p.GUID = e.GUID
	}
	if p.Feed == "" {
		p.Feed = e.Feed
	}
	// The parent's own start record, when the feed has it, is what it
	// ran; the child's record saw the parent's command line later, maybe
	// after the parent's own exec.
	var parent *Process
	if p.ParentGUID != "" {
		parent = x.byGUID[p.ParentGUID]
	}
	if parent == nil && p.PPID > 0 && p.ParentImage == "" {
		parent = x.byPIDAt(p.Host, p.PPID, p.Start)
	}
	if parent != nil && (parent.Command != "" || p.ParentImage == "") {
		p.ParentImage, p.ParentCommand = parent.Image, parent.Command
	}
	return p
}

// byPIDAt returns the latest process of that pid started no later than at
// (pids are reused), else the earliest known.
func (x *Index) byPIDAt(host string, pid int64, at time.Time) *Process {
	list := x.byPID[hostPID{host, pid}]
	if len(list) == 0 {
		return nil
	}
	best := list[0]
	for _, p := range list {
		if !p.Start.After(at) {
			best = p
		}
	}
	return best
}

// Query returns the events other than processes and connects (module
// loads, file writes, DNS queries, appliance log lines) that a host
// reported between from and to, of the given kinds (all when none), and
// of one process when guid or pid (>= 0) is given. SaaS file operations
// are kept under the host name "user:" + the account.
func (x *Index) Query(host string, from, to time.Time, guid string, pid int64, kinds ...feed.Kind) []feed.Event {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []feed.Event
	for _, e := range x.others[host] {
		if e.Time.Before(from) || e.Time.After(to) {
			continue
		}
		if guid != "" && e.GUID != guid || guid == "" && pid >= 0 && e.PID != pid {
			continue
		}
		if len(kinds) > 0 {
			ok := false
			for _, k := range kinds {
				ok = ok || e.Kind == k
			}
			if !ok {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

type jsonParent struct {
	Image       string `json:"image,omitempty"`
	CommandLine string `json:"command_line,omitempty"`
}

type jsonAttribution struct {
	Host        string      `json:"host"`
	PID         *int64      `json:"pid"`
	GUID        string      `json:"guid,omitempty"`
	Image       string      `json:"image"`
	Name        string      `json:"name"`
	CommandLine string      `json:"command_line,omitempty"`
	User        string      `json:"user,omitempty"`
	Parent      *jsonParent `json:"parent,omitempty"`
	Feed        string      `json:"feed"`
	Match       string      `json:"match"`
	SkewMS      int64       `json:"skew_ms"`
}

// AppendJSON appends `,"key":{...}` for a, nothing for nil.
func AppendJSON(dst []byte, key string, a *Attribution) []byte {
	if a == nil {
		return dst
	}
	j := jsonAttribution{Host: a.Host, GUID: a.GUID, Image: a.Image, Name: feed.ImageName(a.Image),
		CommandLine: a.Command, User: a.User, Feed: a.Feed, Match: a.Match, SkewMS: a.SkewMS}
	if a.PID >= 0 {
		pid := a.PID
		j.PID = &pid
	}
	if a.ParentImage != "" || a.ParentCommand != "" {
		j.Parent = &jsonParent{Image: a.ParentImage, CommandLine: a.ParentCommand}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return dst
	}
	dst = append(dst, `,"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return append(dst, b...)
}
