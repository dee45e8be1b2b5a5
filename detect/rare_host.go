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
	Enabled         bool           `yaml:"Enabled"`
	RarePrevalence  int            `yaml:"RarePrevalence"`
	Global          bool           `yaml:"Global"`
	GlobalRaise     bool           `yaml:"GlobalRaise"`
	IgnoreProcesses []string       `yaml:"IgnoreProcesses"`
	IgnoreServices  []string       `yaml:"IgnoreServices"`
	Severities      RareSeverities `yaml:"Severities"`
}

// Informational is the severity below Low: the rare-host seed's rating of
// its base alert (issue 15).
const Informational = "informational"

// RareSeverities rates each variation of the rare-host alert. The
// defaults are the seed's ratings (Cortex XDR, "A process connected to a
// rare external host"): the base alert and curl informational, UNIX
// LOLBINs and VS Code extensions low, a LOLBIN spawned by Office and
// MSBuild high, and MSBuild's second variation, Trusted Developer
// Utilities Proxy Execution (T1127.001), medium.
type RareSeverities struct {
	Base            string `yaml:"Base"`
	Curl            string `yaml:"Curl"`
	UnixLOLBin      string `yaml:"UnixLOLBin"`
	VSCodeExtension string `yaml:"VSCodeExtension"`
	OfficeLOLBin    string `yaml:"OfficeLOLBin"`
	// LOLBin is a Windows LOLBIN not spawned by Office, which the seed
	// does not name; its "commonly abused process" alert rates it low.
	LOLBin         string `yaml:"LOLBin"`
	MSBuild        string `yaml:"MSBuild"`
	MSBuildT112701 string `yaml:"MSBuildT1127.001"`
}

// check reports a value that is no severity.
func (s *RareSeverities) check(bad func(key, format string, a ...any)) {
	for k, v := range map[string]string{"Base": s.Base, "Curl": s.Curl, "UnixLOLBin": s.UnixLOLBin,
		"VSCodeExtension": s.VSCodeExtension, "OfficeLOLBin": s.OfficeLOLBin, "LOLBin": s.LOLBin, "MSBuild": s.MSBuild,
		"MSBuildT1127.001": s.MSBuildT112701} {
		switch v {
		case Informational, Low, Medium, High, Critical:
		default:
			bad("RareHost.Severities."+k, "%q: expected informational, low, medium, high or critical", v)
		}
	}
}

// rareHost: a process connected to an external host that few internal
// hosts talk to (T1071). Prevalence is the count of internal hosts that
// reached the destination within Baseline.TrainingPeriod (30 days); alerts
// start once Baseline.ActivationAfter (14 days) of data has been seen and
// repeat at most once per Baseline.Dedup (a day) per host, process and
// destination. Each variation (MSBuild, curl, VS Code extensions, a
// LOLBIN that an Office program spawned, UNIX LOLBINs) is rated as
// RareHost.Severities says; MSBuild raises a second alert under
// T1127.001. The globally rare variant is a destination no internal host
// had reached before this one, rated the same unless GlobalRaise.
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
	// Prevalence learns from every destination, ignored services
	// included: taken off IgnoreServices later, a service is as common
	// as it was all along, not never seen (issue 15).
	prev, firstSeen, known := e.prevalence(v, f.Start)
	if !e.active() {
		return
	}
	if c.IgnoreServices != nil && inList(c.IgnoreServices, v.remote.Addr(), v.name) {
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
	sev, why, variant := c.Severities.Base, "", rareBase
	if v.proc != nil {
		sev, why, variant = rareSeverity(e, v)
	}
	rareAlert(e, f, v, analytic, "T1071", sev, why, prev, firstSeen, global)
	if variant == rareMSBuild {
		// The seed's second MSBuild variation: the same connection as
		// Trusted Developer Utilities Proxy Execution.
		rareAlert(e, f, v, analytic, "T1127.001", c.Severities.MSBuildT112701, "MSBuild, Trusted Developer Utilities Proxy Execution",
			prev, firstSeen, global)
	}
}

// rareAlert raises one variation of the rare-host alert.
func rareAlert(e *Engine, f *Flow, v *view, analytic, technique, sev, why string, prev int, firstSeen time.Time, global bool) {
	c := &e.cfg.RareHost
	a := e.alertFor(f, v, analytic, technique)
	a.Severity, a.Confidence = sev, "medium"
	if v.proc == nil {
		a.Confidence = "low"
	}
	if global && c.Global && c.GlobalRaise {
		a.Severity = raiseRare(a.Severity)
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
	key := "rare_host"
	if technique != "T1071" {
		key += "|" + technique
	}
	a.DedupKey = strings.Join([]string{key, v.hostIP(), procKey(v), v.destName()}, "|")
	e.emit(a)
}

// raiseRare is raise, from Informational too.
func raiseRare(s string) string {
	if s == Informational {
		return Low
	}
	return raise(s)
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

// The rare-host variations a process falls into.
const (
	rareBase = iota
	rareMSBuild
	rareOther
)

// rareSeverity rates the process by the variation it falls into, as
// RareHost.Severities says: the seed's programs that attackers use to
// reach out.
func rareSeverity(e *Engine, v *view) (sev, why string, variant int) {
	img, b := v.proc.Image, baseName(v.proc.Image)
	lists := e.cfg.lists
	s := &e.cfg.RareHost.Severities
	limg := strings.ToLower(img)
	switch {
	case b == "msbuild.exe":
		return s.MSBuild, "MSBuild", rareMSBuild
	case b == "curl" || b == "curl.exe":
		return s.Curl, "curl", rareOther
	case strings.Contains(limg, `\.vscode\extensions\`) || strings.Contains(limg, "/.vscode/extensions/") ||
		strings.Contains(strings.ToLower(v.proc.Command), ".vscode/extensions") || strings.Contains(strings.ToLower(v.proc.Command), `.vscode\extensions`):
		return s.VSCodeExtension, "a VS Code extension", rareOther
	case lists.office[baseName(v.proc.ParentImage)] && isTool(lists, img, "windows"):
		return s.OfficeLOLBin, "a LOLBIN spawned by " + baseName(v.proc.ParentImage), rareOther
	case isUnixLOLBin(lists, img):
		return s.UnixLOLBin, "a UNIX LOLBIN", rareOther
	case isTool(lists, img, "windows"):
		return s.LOLBin, "a LOLBIN", rareOther
	}
	return s.Base, "", rareBase
}

func isTool(l *lists, image, platform string) bool {
	t, ok := l.tool(image)
	return ok && t.platform == platform
}

func isUnixLOLBin(l *lists, image string) bool {
	_, ok := byName(l.unixLOLBin, image)
	return ok
}
