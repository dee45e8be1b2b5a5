package detect

import (
	"fmt"
	"hash/maphash"
	"sort"
	"strings"
	"time"
)

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

var hostSeed = maphash.MakeSeed()

func (rareHost) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.RareHost
	if !v.outbound || f.Proto != 6 && f.Proto != 17 || v.remote.Port() == 53 || f.App == "dns" {
		return
	}
	if f.Proto == 6 && f.RespPkts == 0 {
		return // no answer: nothing was reached
	}
	dest := strings.ToLower(v.dest)
	if c.IgnoreServices != nil && inList(c.IgnoreServices, v.remote.Addr(), f.ServerName) {
		return
	}
	prev, firstSeen, known := e.prevalence(dest, v.host, f.Start)
	if !e.active(f.Start) {
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
	a.Title = fmt.Sprintf("%s connected to %s, reached by %d internal host(s) in %v", who, v.dest, prev, e.cfg.Baseline.TrainingPeriod)
	if global {
		a.Title = fmt.Sprintf("%s connected to %s, which no internal host had reached before", who, v.dest)
	}
	if why != "" {
		a.Title += " (" + why + ")"
	}
	a.Evidence.Measured["prevalence"] = prev
	a.Evidence.Thresholds["RarePrevalence"] = c.RarePrevalence
	a.Evidence.Baseline["first_seen"] = firstSeen.UTC()
	a.Evidence.Baseline["training_period"] = e.cfg.Baseline.TrainingPeriod.String()
	a.Evidence.Baseline["data_since"] = e.first.UTC()
	a.DedupKey = strings.Join([]string{"rare_host", v.host, procKey(v), dest}, "|")
	e.emit(a)
}

// prevalence records that host reached dest at t and returns how many
// internal hosts reached it within the training period, this one
// included, when the destination was first seen, and whether any host had
// reached it before.
func (e *Engine) prevalence(dest, host string, t time.Time) (n int, first time.Time, known bool) {
	key := "pv|" + dest
	h := maphash.String(hostSeed, host)
	period := e.cfg.Baseline.TrainingPeriod.D()
	type seen struct {
		h    uint64
		last int64
	}
	var hosts []seen
	first = t
	if b, ok := e.st.get(key, t); ok {
		r := reader{b: b}
		f := r.i64()
		k := r.u64()
		for i := uint64(0); i < k && r.err == nil; i++ {
			hosts = append(hosts, seen{r.u64(), r.i64()})
		}
		if r.err == nil {
			first, known = time.Unix(0, f), len(hosts) > 0
		} else {
			hosts = nil
		}
	}
	cut := t.Add(-period).UnixNano()
	kept := hosts[:0]
	found := false
	for _, s := range hosts {
		if s.h == h {
			s.last, found = max(s.last, t.UnixNano()), true
		}
		if s.last >= cut {
			kept = append(kept, s)
		}
	}
	if !found {
		kept = append(kept, seen{h, t.UnixNano()})
	}
	if len(kept) > maxPrevalence {
		sort.Slice(kept, func(i, j int) bool { return kept[i].last > kept[j].last })
		kept = kept[:maxPrevalence]
	}
	r := (&rec{}).i64(first.UnixNano()).u64(uint64(len(kept)))
	for _, s := range kept {
		r.u64(s.h).i64(s.last)
	}
	e.st.set(key, t.Add(period), r.b)
	return len(kept), first, known
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
	case lists.office[baseName(v.proc.ParentImage)] && lists.tools[b].platform == "windows":
		return High, "a LOLBIN spawned by " + baseName(v.proc.ParentImage)
	case lists.unixLOLBin[b] || lists.unixLOLBin[strings.TrimRight(b, "0123456789.")]:
		return Medium, "a UNIX LOLBIN"
	case lists.tools[b].platform == "windows":
		return Medium, "a LOLBIN"
	}
	return Low, ""
}
