package process

import (
	"encoding/json"
	"net/netip"
	"strings"
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
	chosen, rivals := x.pick(cands, f.Start, nil)
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
		chosen, rivals = x.pick(list, f.Start, keep)
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
	// Reports of the same process fill in what the lead lacks; a report
	// naming another process is a rival claim, kept beside it.
	for _, c := range append(chosen, rivals...) {
		if c == lead {
			continue
		}
		p := x.resolve(&c.ev)
		if same(&a.Process, &p) {
			merge(&a.Process, &p)
			continue
		}
		r := ProcessRef{Host: p.Host, PID: p.PID, GUID: p.GUID, Image: p.Image, Feed: c.ev.Feed}
		known := false
		for _, q := range a.Conflict {
			known = known || q == r
		}
		if !known {
			a.Conflict = append(a.Conflict, r)
		}
	}
	if len(a.Conflict) > 0 {
		x.Stats.Conflicts++
	}
	a.Ancestors = x.ancestors(&a.Process)
	return a
}

// same says whether two reports name one process: one GUID, or one pid
// of one host running one program (Sysmon's report beside the Security
// log's; a connect event by pid beside one by GUID). Start times are not
// compared: the feeds see a process start seconds apart, or not at all.
func same(a, b *Process) bool {
	if a.Host != b.Host {
		return false
	}
	if a.GUID != "" && a.GUID == b.GUID {
		return true
	}
	if a.PID >= 0 && b.PID >= 0 && a.PID != b.PID {
		return false
	}
	an, bn := feed.ImageName(a.Image), feed.ImageName(b.Image)
	return an == "" || bn == "" || strings.EqualFold(an, bn)
}

// pick returns, per host and feed, the connect event nearest the flow's
// start after that feed's learned clock difference, within the window. A
// host and feed with no difference learned yet take their only candidate,
// and learn from it; the latest difference wins, so a drifting clock is
// followed. The group's other events within the window are returned as
// rivals: the same tuple claimed twice in a window is one process
// reported twice, or a forgery, and the join says which.
func (x *Index) pick(cands []*connect, start time.Time, keep func(*connect) bool) (chosen, rivals []*connect) {
	if len(cands) == 0 {
		return nil, nil
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
		for _, c := range g {
			if c != best && abs(c.ev.Time.Sub(start)-sk) <= x.cfg.Window {
				rivals = append(rivals, c)
			}
		}
	}
	return out, rivals
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
	// after the parent's own exec. A pid's record that started after the
	// child is a later process that reused it, not the parent
	// (lineage.go's parentOf).
	var parent *Process
	if realGUID(p.ParentGUID) != "" || p.PPID > 0 && p.ParentImage == "" {
		parent = x.parentOf(&p)
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

// jsonAncestor is one ancestor, nearest first; what is unknown is left
// out.
type jsonAncestor struct {
	PID         *int64 `json:"pid,omitempty"`
	GUID        string `json:"guid,omitempty"`
	Image       string `json:"image,omitempty"`
	Name        string `json:"name,omitempty"`
	CommandLine string `json:"command_line,omitempty"`
	User        string `json:"user,omitempty"`
}

type jsonRef struct {
	Host  string `json:"host"`
	PID   *int64 `json:"pid"`
	GUID  string `json:"guid,omitempty"`
	Image string `json:"image"`
	Name  string `json:"name"`
	Feed  string `json:"feed"`
}

type jsonAttribution struct {
	Host        string      `json:"host"`
	PID         *int64      `json:"pid"`
	GUID        string      `json:"guid,omitempty"`
	Image       string      `json:"image"`
	Name        string      `json:"name"`
	CommandLine string      `json:"command_line,omitempty"`
	Truncated   bool        `json:"command_line_truncated,omitempty"`
	User        string      `json:"user,omitempty"`
	Parent      *jsonParent `json:"parent,omitempty"`
	// Ancestors start at the parent: "parent" is kept as it was for the
	// readers that know only it.
	Ancestors []jsonAncestor `json:"ancestors,omitempty"`
	Feed      string         `json:"feed"`
	Match     string         `json:"match"`
	SkewMS    int64          `json:"skew_ms"`
	// Confidence is "contested" when Conflict names other claimants.
	Confidence string    `json:"confidence,omitempty"`
	Conflict   []jsonRef `json:"conflict,omitempty"`
}

func pidOrNil(pid int64) *int64 {
	if pid < 0 {
		return nil
	}
	return &pid
}

// AppendJSON appends `,"key":{...}` for a, nothing for nil.
func AppendJSON(dst []byte, key string, a *Attribution) []byte {
	if a == nil {
		return dst
	}
	j := jsonAttribution{Host: a.Host, PID: pidOrNil(a.PID), GUID: a.GUID, Image: a.Image, Name: feed.ImageName(a.Image),
		CommandLine: a.Command, Truncated: a.CommandTruncated, User: a.User, Feed: a.Feed, Match: a.Match, SkewMS: a.SkewMS}
	for _, r := range a.Conflict {
		j.Confidence = "contested"
		j.Conflict = append(j.Conflict, jsonRef{Host: r.Host, PID: pidOrNil(r.PID), GUID: r.GUID, Image: r.Image,
			Name: feed.ImageName(r.Image), Feed: r.Feed})
	}
	if a.ParentImage != "" || a.ParentCommand != "" {
		j.Parent = &jsonParent{Image: a.ParentImage, CommandLine: a.ParentCommand}
	}
	for _, an := range a.Ancestors {
		j.Ancestors = append(j.Ancestors, jsonAncestor{PID: pidOrNil(an.PID), GUID: an.GUID, Image: an.Image,
			Name: feed.ImageName(an.Image), CommandLine: an.Command, User: an.User})
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
