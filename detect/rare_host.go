package detect

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// RareHostConfig: a process connected to an external host few internal
// hosts talk to.
type RareHostConfig struct {
	Enabled         bool     `yaml:"Enabled"`
	RarePrevalence  int      `yaml:"RarePrevalence"`
	Global          bool     `yaml:"Global"`
	IgnoreProcesses []string `yaml:"IgnoreProcesses"`
	IgnoreServices  []string `yaml:"IgnoreServices"`
}

// rareHost: a process connected to an external host that few internal
// hosts talk to (T1071). Prevalence is the count of internal hosts that
// reached the destination within Baseline.TrainingPeriod (30 days); alerts
// start once Baseline.ActivationAfter (14 days) of data has been seen and
// repeat at most once per Baseline.Dedup (a day) per host, process and
// destination. MSBuild, curl, VS Code extensions, a LOLBIN that an Office
// program spawned and UNIX LOLBINs rate higher. The globally rare variant
// is a destination no internal host had reached before this one.
type rareHost struct{}

// maxPrevalence bounds the hosts kept per destination: past it a
// destination is common whatever the threshold.
const maxPrevalence = 32

// prevSeen is one internal host of a destination's prevalence: a hash of
// its address and when it last reached the destination.
type prevSeen struct {
	h    uint64
	last int64
}

func (rareHost) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.RareHost
	if !v.outbound || f.Proto != 6 && f.Proto != 17 || v.remote.Port() == 53 || f.App == "dns" {
		return
	}
	if f.Proto == 6 && f.RespPkts == 0 {
		return // no answer: nothing was reached
	}
	if c.IgnoreServices != nil && inList(c.IgnoreServices, v.remote.Addr(), v.name) {
		return
	}
	prev, firstSeen, known := e.prevalence(v, f.Start)
	if !e.active() {
		return
	}
	global := !known
	if prev > c.RarePrevalence {
		return
	}
	if v.proc != nil && nameIn(v.proc.Image, c.IgnoreProcesses) {
		return
	}
	analytic := "rare_host"
	if global && c.Global {
		analytic = "rare_host_global"
	}
	a := e.alertFor(f, v, analytic, "T1071")
	a.Severity, a.Confidence = Low, "medium"
	why := ""
	if v.proc != nil {
		a.Severity, why = rareSeverity(e, v)
	} else {
		a.Confidence = "low"
	}
	if global && c.Global {
		a.Severity = raise(a.Severity)
	}
	who := "a host"
	if v.proc != nil {
		who = baseName(v.proc.Image)
	}
	a.Title = fmt.Sprintf("%s connected to %s, reached by %d internal host(s) in %v", who, v.destName(), prev, e.cfg.Baseline.TrainingPeriod)
	if global {
		a.Title = fmt.Sprintf("%s connected to %s, which no internal host had reached before", who, v.destName())
	}
	if why != "" {
		a.Title += " (" + why + ")"
	}
	a.Evidence.Measured["prevalence"] = prev
	a.Evidence.Thresholds["RarePrevalence"] = c.RarePrevalence
	a.Evidence.Baseline["first_seen"] = firstSeen.UTC()
	a.Evidence.Baseline["training_period"] = e.cfg.Baseline.TrainingPeriod.String()
	a.Evidence.Baseline["data_since"] = e.first.UTC()
	a.DedupKey = strings.Join([]string{"rare_host", v.hostIP(), procKey(v), v.destName()}, "|")
	e.emit(a)
}

// prevalence records that the flow's internal host reached its destination
// (the server name, else the address) at t and returns how many
// internal hosts reached it within the training period, this one
// included, when the destination was first seen, and whether any host had
// reached it before. The value is fixed-width: the first-seen time, then
// per host a hash of its address and its last-seen time, 8 bytes each.
func (e *Engine) prevalence(v *view, t time.Time) (n int, first time.Time, known bool) {
	e.kb = append(e.kb[:0], "pv|"...)
	if v.name != "" {
		e.kb = append(e.kb, v.name...)
	} else {
		e.kb = v.remote.Addr().AppendTo(e.kb)
	}
	key := e.kb
	h := hostHash(v.inside.Addr())
	now := t.UnixNano()
	cut := t.Add(-e.cfg.Baseline.TrainingPeriod.D()).UnixNano()
	first = t
	hosts := e.hostsBuf[:0]
	if b, ok := e.st.getKey(key, t); ok && len(b) >= 8 && (len(b)-8)%16 == 0 {
		first = time.Unix(0, int64(binary.LittleEndian.Uint64(b)))
		for b = b[8:]; len(b) >= 16; b = b[16:] {
			hosts = append(hosts, prevSeen{binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:]))})
		}
		known = len(hosts) > 0
	}
	defer func() { e.hostsBuf = hosts[:0] }()
	kept := hosts[:0]
	found, changed := false, false
	var was int64 // the host's last-seen before this flow, for the fleet
	for _, s := range hosts {
		if s.h == h {
			was = s.last
			// Last-seen times are kept to the hour: a host that talks to
			// a destination all day rewrites it once an hour, not per flow.
			if now-s.last > int64(time.Hour) {
				s.last, changed = now, true
			}
			found = true
		}
		if s.last >= cut {
			kept = append(kept, s)
		} else {
			changed = true
		}
	}
	if !found {
		if len(kept) >= maxPrevalence {
			// Common already: no more hosts need counting.
			return len(kept), first, known
		}
		kept, changed = append(kept, prevSeen{h, now}), true
	}
	if !changed {
		return len(kept), first, known
	}
	r := e.rec()
	r.b = binary.LittleEndian.AppendUint64(r.b, uint64(first.UnixNano()))
	for _, s := range kept {
		r.b = binary.LittleEndian.AppendUint64(r.b, s.h)
		r.b = binary.LittleEndian.AppendUint64(r.b, uint64(s.last))
	}
	e.st.setKey(key, t.Add(e.cfg.Baseline.TrainingPeriod.D()), r.b)
	if e.fleet != nil && (!found || dayOf(time.Unix(0, was)) != dayOf(t)) {
		e.observePrevalence(key[len("pv|"):], h, first, t) // once per host, destination and day
	}
	return len(kept), first, known
}

// hostHash names an internal host in prevalence values: FNV-1a of its
// address, the same in every run, so a state saved by one run counts
// hosts for the next.
func hostHash(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// rareSeverity rates the process: higher for programs that attackers
// use to reach out.
func rareSeverity(e *Engine, v *view) (string, string) {
	img, b := v.proc.Image, baseName(v.proc.Image)
	lists := e.cfg.lists
	limg := strings.ToLower(img)
	switch {
	case b == "msbuild.exe":
		return High, "MSBuild"
	case b == "curl" || b == "curl.exe":
		return High, "curl"
	case strings.Contains(limg, `\.vscode\extensions\`) || strings.Contains(limg, "/.vscode/extensions/") ||
		strings.Contains(strings.ToLower(v.proc.Command), ".vscode/extensions") || strings.Contains(strings.ToLower(v.proc.Command), `.vscode\extensions`):
		return High, "a VS Code extension"
	case lists.office[baseName(v.proc.ParentImage)] && isTool(lists, img, "windows"):
		return High, "a LOLBIN spawned by " + baseName(v.proc.ParentImage)
	case isUnixLOLBin(lists, img):
		return Medium, "a UNIX LOLBIN"
	case isTool(lists, img, "windows"):
		return Medium, "a LOLBIN"
	}
	return Low, ""
}

func isTool(l *lists, image, platform string) bool {
	t, ok := l.tool(image)
	return ok && t.platform == platform
}

func isUnixLOLBin(l *lists, image string) bool {
	_, ok := byName(l.unixLOLBin, image)
	return ok
}
