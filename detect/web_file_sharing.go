package detect

import (
	"fmt"
	"strings"
	"time"
)

// WebFileSharingConfig: first large uploads, dynamic DNS, the top
// file-sharing hosts, and transfer tools run then sending.
type WebFileSharingConfig struct {
	Enabled              bool     `yaml:"Enabled"`
	FirstUploadThreshold Bytes    `yaml:"FirstUploadThreshold"`
	UploadHistory        Duration `yaml:"UploadHistory"`
	FileSharingServices  []string `yaml:"FileSharingServices"`
	TopN                 int      `yaml:"TopN"`
	ToolCapabilities     []string `yaml:"ToolCapabilities"`
	ToolVolumeThreshold  Bytes    `yaml:"ToolVolumeThreshold"`
	TimeWindow           Duration `yaml:"TimeWindow"`
}

// webFileSharing is T1567's web file sharing behaviour: a first upload of
// FirstUploadThreshold (20 MB) or more from a host with no such upload in
// UploadHistory; destinations under dynamic-DNS suffixes; the top TopN
// hosts of the day by bytes sent to FileSharingServices, in the
// organisation and in each peer group; and a tunnel or sync tool
// (ToolCapabilities in the tools list) sending over ToolVolumeThreshold.
type webFileSharing struct{}

func (webFileSharing) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.WebFileSharing
	if !v.outbound {
		return
	}
	fileSharing := false
	cat, dom, ok := v.service(c.FileSharingServices)
	if ok {
		fileSharing = true
		e.top.add(dayOf(f.End), v.hostIP(), e.cfg.PeerGroup(v.inside.Addr()), v.out)
		if e.fleet != nil {
			e.uploaded(v.hostIP())
		}
	}
	dyn := v.dyn
	if v.out >= minUploadFlow {
		firstUpload(e, f, v, cat, dom, fileSharing, dyn)
	}
	if dyn != "" {
		a := e.alertFor(f, v, "dynamic_dns", "T1568")
		a.Severity, a.Confidence = Low, "medium"
		if v.totalOut >= 1<<20 {
			a.Severity = Medium
		}
		a.Destination.Service = "dynamic DNS (" + strings.TrimPrefix(dyn, ".") + ")"
		who := "a host"
		if v.proc != nil {
			who = baseName(v.proc.Image)
		}
		a.Title = fmt.Sprintf("%s connected to %s, a dynamic-DNS name, and sent %s", who, v.name, humanBytes(v.totalOut))
		a.Evidence.Measured["out_bytes"], a.Evidence.Measured["in_bytes"] = v.totalOut, v.totalIn
		a.Evidence.Measured["suffix"] = dyn
		a.DedupKey = strings.Join([]string{"dynamic_dns", v.hostIP(), v.name}, "|")
		e.emit(a)
	}
	if v.proc != nil && v.out > 0 {
		toolSends(e, f, v)
	}
}

// minUploadFlow is the least a flow must send to count toward an upload:
// the requests and acknowledgements of ordinary browsing stay out of the
// state, while an upload in chunks of 64 KiB or more still adds up.
const minUploadFlow = 64 << 10

func firstUpload(e *Engine, f *Flow, v *view, cat, dom string, fileSharing bool, dyn string) {
	c := &e.cfg.WebFileSharing
	key := "wfs|up|" + v.hostIP() + "|" + v.destName()
	w := e.addWindow(key, c.TimeWindow.D(), f.Start, v.out, v.in, f.CommunityID)
	if w.out < uint64(c.FirstUploadThreshold) {
		return
	}
	e.resetWindow(key)
	hist := "wfs|hist|" + v.hostIP()
	_, had := e.st.get(hist, f.End)
	e.st.set(hist, f.End.Add(c.UploadHistory.D()), nil)
	if e.fleet != nil {
		e.observeFirstUpload(v.hostIP(), f.End)
	}
	if had || !e.active() {
		return
	}
	a := e.alertFor(f, v, "first_large_upload", "T1567")
	a.Severity, a.Confidence = Medium, "medium"
	if fileSharing || dyn != "" {
		a.Severity = High
	}
	if v.proc == nil {
		a.Confidence = "low"
	}
	a.Destination.Service = serviceLabel(cat, dom)
	who := "a host"
	if v.proc != nil {
		who = baseName(v.proc.Image)
	}
	a.Title = fmt.Sprintf("first upload of %s or more from %s in %v: %s sent %s to %s", humanBytes(uint64(c.FirstUploadThreshold)),
		v.hostIP(), c.UploadHistory, who, humanBytes(w.out), v.destName())
	windowEvidence(a, w)
	a.Evidence.Thresholds["FirstUploadThreshold"] = uint64(c.FirstUploadThreshold)
	a.Evidence.Thresholds["TimeWindow"] = c.TimeWindow.String()
	a.Evidence.Baseline["upload_history"] = c.UploadHistory.String()
	a.Evidence.Baseline["previous_uploads"] = 0
	a.DedupKey = "first_large_upload|" + v.hostIP()
	e.emit(a)
}

// toolSends: a tunnel or sync tool run and then sending. The tool is the
// socket's owner or its nearest ancestor with one of ToolCapabilities
// (Config.LineageDepth): rclone's or a tunnel's helper that holds the
// socket counts as the tool.
func toolSends(e *Engine, f *Flow, v *view) {
	c := &e.cfg.WebFileSharing
	var cap string
	l, ok := e.nearest(v.proc, func(image string) bool {
		t, ok := e.cfg.lists.tool(image)
		if !ok {
			return false
		}
		for _, want := range c.ToolCapabilities {
			if t.can(want) {
				cap = want
				return true
			}
		}
		return false
	})
	if !ok {
		return
	}
	toolName := baseName(l.image)
	key := "wfs|tool|" + v.hostIP() + "|" + toolName + "|" + v.destName()
	w := e.addWindow(key, c.TimeWindow.D(), f.Start, v.out, v.in, f.CommunityID)
	if w.out < uint64(c.ToolVolumeThreshold) {
		return
	}
	e.resetWindow(key)
	a := e.alertFor(f, v, "tool_then_send", "T1567")
	a.Severity, a.Confidence = Medium, "medium"
	started := ""
	if !l.start.IsZero() {
		at := f.Start.Add(msDur(v.proc.SkewMS))
		if d := at.Sub(l.start); d >= 0 && d <= c.TimeWindow.D() {
			a.Severity, started = High, fmt.Sprintf(", %v after it started", d.Round(time.Second))
			a.Evidence.Measured["started_before_s"] = d.Seconds()
		}
	}
	a.Title = fmt.Sprintf("%s (%s) sent %s to %s%s", whoIn(v.proc, l), cap, humanBytes(w.out), v.destName(), started)
	windowEvidence(a, w)
	e.lineageEvidence(a, v.proc, l)
	a.Evidence.Thresholds["ToolVolumeThreshold"] = uint64(c.ToolVolumeThreshold)
	a.DedupKey = strings.Join([]string{"tool_then_send", v.hostIP(), toolName, v.destName()}, "|")
	e.emit(a)
}

// endDay reports the day's top file-sharing hosts, of the organisation
// and of each peer group.
func (e *Engine) endDay(t time.Time) {
	c := &e.cfg.WebFileSharing
	if e.fleet != nil {
		e.fleetEndDay(t) // the other sensors' totals join the ranking
	}
	if !c.Enabled || c.TopN == 0 || e.top.day != dayOf(t) || len(e.top.bytes) == 0 {
		return
	}
	day := time.Unix(e.top.day*86400, 0).UTC()
	report := func(group string) {
		hosts := e.top.ranked(group)
		for i, h := range hosts {
			if i >= c.TopN || e.top.bytes[h] < 1<<20 {
				break
			}
			if e.fleet.remoteOnly(h) {
				continue // ranked here, reported by the sensor that saw it
			}
			scope := "the organisation"
			analytic := "top_file_sharing_org"
			if group != "" {
				scope, analytic = "peer group "+group, "top_file_sharing_peer"
			}
			a := &Alert{TS: day.Add(24*time.Hour - time.Nanosecond), Analytic: analytic, Technique: "T1567.002",
				Severity: Low, Confidence: "medium", Host: &AlertHost{IP: h, PeerGroup: e.top.names[h]},
				Title: fmt.Sprintf("%s was #%d of %s by bytes sent to file-sharing services on %s: %s", h, i+1, scope,
					day.Format("2006-01-02"), humanBytes(e.top.bytes[h])),
				Evidence: Evidence{Measured: map[string]any{"rank": i + 1, "out_bytes": e.top.bytes[h], "hosts": len(hosts)},
					Thresholds: map[string]any{"TopN": c.TopN}},
				DedupKey: fmt.Sprintf("%s|%s|%s|%s", analytic, group, h, day.Format("2006-01-02")),
			}
			e.emit(a)
		}
	}
	report("")
	for _, g := range e.cfg.peers {
		report(g.name)
	}
	e.top.bytes, e.top.names = map[string]uint64{}, map[string]string{}
}
