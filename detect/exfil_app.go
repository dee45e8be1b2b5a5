package detect

import (
	"fmt"
	"strings"
)

// ExfilAppConfig is AN1511: an application that normally does not talk
// to the network sending to a monitored web service.
type ExfilAppConfig struct {
	Enabled              bool     `yaml:"Enabled"`
	MonitoredServices    []string `yaml:"MonitoredServices"` // service categories or domains
	MonitoredProcesses   []string `yaml:"MonitoredProcesses"`
	ExfilVolumeThreshold Bytes    `yaml:"ExfilVolumeThreshold"`
	TimeWindow           Duration `yaml:"TimeWindow"`
	MinOutInRatio        float64  `yaml:"MinOutInRatio"`
}

// exfilApp is AN1511 (T1567, detection strategy DET0548, Windows): an
// application that normally keeps off the network, Office or PowerShell
// (MonitoredProcesses), sends more than ExfilVolumeThreshold to a
// MonitoredServices destination within TimeWindow, with at least
// MinOutInRatio more out than in. The application is the socket's owner
// or its nearest ancestor in the list (Config.LineageDepth): Word that
// started the program that sends counts. Without process data the volume
// alone is reported, at low severity and confidence.
type exfilApp struct{}

func (exfilApp) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.AN1511
	if !v.outbound || v.out == 0 {
		return
	}
	cat, dom, ok := v.service(c.MonitoredServices)
	if !ok {
		return
	}
	app, appName, ok := e.listedOrUnknown(v.proc, c.MonitoredProcesses)
	if !ok {
		return
	}
	key := "an1511|" + v.hostIP() + "|" + appName + "|" + dom
	w := e.addWindow(key, c.TimeWindow.D(), f.Start, v.out, v.in, f.CommunityID)
	if w.out <= uint64(c.ExfilVolumeThreshold) || ratio(w.out, w.in) < c.MinOutInRatio {
		return
	}
	e.resetWindow(key)
	a := e.alertFor(f, v, "AN1511", "T1567.002")
	a.Destination.Service = serviceLabel(cat, dom)
	a.Severity, a.Confidence = High, "high"
	who := "a host"
	if v.proc == nil {
		a.Severity, a.Confidence = Low, "low"
	} else {
		who = whoIn(v.proc, app)
		e.lineageEvidence(a, v.proc, app)
	}
	a.Title = fmt.Sprintf("%s uploaded %s to %s (%s) within %v", who, humanBytes(w.out), v.name, serviceLabel(cat, dom), c.TimeWindow)
	windowEvidence(a, w)
	a.Evidence.Thresholds["ExfilVolumeThreshold"] = uint64(c.ExfilVolumeThreshold)
	a.Evidence.Thresholds["MinOutInRatio"] = c.MinOutInRatio
	a.Evidence.Thresholds["TimeWindow"] = c.TimeWindow.String()
	a.DedupKey = strings.Join([]string{"AN1511", v.hostIP(), appName, dom}, "|")
	e.emit(a)
}

// windowEvidence puts a window's totals into an alert.
func windowEvidence(a *Alert, w window) {
	a.Evidence.CommunityIDs = w.cids
	m := a.Evidence.Measured
	m["out_bytes"], m["in_bytes"], m["out_in_ratio"], m["flows"] = w.out, w.in, round3(ratio(w.out, w.in)), w.flows
	m["window_start"] = w.start.UTC()
}

func serviceLabel(cat, dom string) string {
	switch {
	case cat == "":
		return dom
	case dom == "":
		return cat
	}
	return strings.TrimPrefix(dom, ".") + " (" + cat + ")"
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
