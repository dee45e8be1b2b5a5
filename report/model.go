package report

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/entropy"
)

// How much of the host table a page shows; the rest is counted.
const (
	maxHostsShown = 100
	maxProcsShown = 20
	maxDestsShown = 5
)

// Report is what a page shows, built from a Collector at one moment.
type Report struct {
	Sources    []string
	Start, End time.Time // capture time of the first and last flow
	Flows      uint64    // final flow records counted
	Interim    uint64    // interim records seen, not counted
	Out, In    uint64    // bytes the internal hosts sent and received
	External   uint64    // flows with no end in the home networks, in no host's row

	Alerts        []AlertView // most severe first, then by time
	AlertsDropped int         // alerts past Config.MaxAlerts, counted only
	AlertErrors   int         // alert lines that could not be read

	Hosts      []HostView // most bytes out first, at most 100
	HostsTotal int
	Rest       *ProcessView // flows of host and process pairs past Config.MaxRows

	// The scatter chart's bounds: it draws FlowsDrawn of FlowsSeen
	// flows, the MaxFlows largest and those alerts named; FlowsLost
	// flows named by an alert had left the collector before it came.
	FlowsDrawn, FlowsSeen, FlowsLost uint64
	MaxFlows                         int

	Charts chartData
}

// Severities counts the alerts by severity, most severe first: "1
// critical, 5 high".
func (r *Report) Severities() string {
	var parts []string
	for _, s := range []string{detect.Critical, detect.High, detect.Medium, detect.Low, detect.Informational} {
		n := 0
		for _, a := range r.Alerts {
			if a.Severity == s {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, formatCount(uint64(n))+" "+s)
		}
	}
	return strings.Join(parts, ", ")
}

// AlertView is one alert as the page words it.
type AlertView struct {
	*detect.Alert
	Time        string
	ProcessName string // "" when no process was attributed
	Measured    []Fact
	Thresholds  []Fact
	Baseline    []Fact
	Missing     []string // what the sensor could not see, in words
}

// Fact is one named value of an alert's evidence, written for a reader.
type Fact struct {
	Name, Value string
}

// HostView is one internal host with its processes.
type HostView struct {
	Host       string
	Name       string // from the alerts, when they named it
	Flows      uint64
	Out, In    uint64
	Alerts     []string // the analytics of every alert on this host
	Processes  []ProcessView
	MoreProcs  int // processes not shown
	HostAlerts []string
}

// ProcessView is what one process on a host sent and received.
type ProcessView struct {
	Process      string // "" when the flows were not attributed
	Flows        uint64
	Out, In      uint64
	Destinations []DestinationView // most bytes out first
	MoreDests    int               // destinations not shown (some may not be known)
	Alerts       []string          // analytics of the alerts on this process
}

// DestinationView is a destination of a process and what it was sent.
type DestinationView struct {
	Name string
	Out  uint64
}

// chartData is the charts' data, as the page's script reads it.
type chartData struct {
	Timeline Timeline    `json:"timeline"`
	Flows    scatterData `json:"flows"`
	Entropy  entropyData `json:"entropy"`
}

type scatterData struct {
	Quiet    []xy `json:"quiet"`
	Alerting []xy `json:"alerting"`
}

// xy is one flow of the scatter chart: bytes out and in as drawn (a zero
// is drawn at 1 on the log axes) and its label, real counts in it.
type xy struct {
	X uint64 `json:"x"`
	Y uint64 `json:"y"`
	L string `json:"l"`
}

type entropyData struct {
	Bins    []string       `json:"bins"`
	Classes []entropyClass `json:"classes"`
	Samples uint64         `json:"samples"`
}

type entropyClass struct {
	Name   string   `json:"name"`
	Counts []uint64 `json:"counts"`
}

// Report builds what the page shows from what was collected so far.
func (c *Collector) Report() *Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Report{Sources: c.cfg.Sources, Flows: c.records, Interim: c.interim, Out: c.out, In: c.in, External: c.external,
		AlertsDropped: c.alertsDropped, AlertErrors: c.alertErrors, MaxFlows: c.cfg.MaxFlows}
	if c.records > 0 {
		r.Start, r.End = time.Unix(0, c.first).UTC(), time.Unix(0, c.last).UTC()
	}
	for _, a := range c.alerts {
		r.Alerts = append(r.Alerts, alertView(a))
	}
	slices.SortStableFunc(r.Alerts, func(a, b AlertView) int {
		return cmp.Or(severityRank(b.Severity)-severityRank(a.Severity), a.TS.Compare(b.TS), strings.Compare(a.ID, b.ID))
	})
	r.Hosts, r.HostsTotal = c.hostViews()
	if c.rows.rest.flows > 0 {
		r.Rest = &ProcessView{Process: "(the rest)", Flows: c.rows.rest.flows, Out: c.rows.rest.out, In: c.rows.rest.in}
	}
	r.Charts.Timeline = c.timeline.bars()
	r.Charts.Flows, r.FlowsDrawn = c.scatter()
	r.FlowsSeen, r.FlowsLost = c.flows.seen, c.flows.lost
	r.Charts.Entropy = c.entropyData()
	return r
}

func severityRank(s string) int {
	switch s {
	case detect.Critical:
		return 4
	case detect.High:
		return 3
	case detect.Medium:
		return 2
	case detect.Low:
		return 1
	case detect.Informational:
		return 0
	}
	return -1
}

func alertView(a *detect.Alert) AlertView {
	v := AlertView{Alert: a, Time: a.TS.UTC().Format("2006-01-02 15:04:05.000 UTC"),
		Measured: facts(a.Evidence.Measured, false), Thresholds: facts(a.Evidence.Thresholds, true),
		Baseline: facts(a.Evidence.Baseline, false)}
	if a.Process != nil {
		v.ProcessName = a.Process.Name
	}
	for _, m := range a.Missing {
		v.Missing = append(v.Missing, missingWords(m))
	}
	return v
}

// hostViews are the hosts, most bytes out first, with the alerts that
// name each (the collector's lock held).
func (c *Collector) hostViews() ([]HostView, int) {
	byProc := map[rowKey][]string{}
	byHost := map[netip.Addr][]string{}
	names := map[netip.Addr]string{}
	for _, a := range c.alerts {
		if a.Host == nil {
			continue
		}
		ip, err := netip.ParseAddr(a.Host.IP)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		byHost[ip] = append(byHost[ip], a.Analytic)
		if a.Host.Name != "" {
			names[ip] = a.Host.Name
		}
		if a.Process != nil {
			k := rowKey{ip, a.Process.Name}
			byProc[k] = append(byProc[k], a.Analytic)
		}
	}
	hosts := map[netip.Addr]*HostView{}
	for k, row := range c.rows.rows {
		h := hosts[k.host]
		if h == nil {
			h = &HostView{Host: k.host.String(), Name: names[k.host], Alerts: byHost[k.host]}
			hosts[k.host] = h
		}
		h.Flows += row.flows
		h.Out += row.out
		h.In += row.in
		h.Processes = append(h.Processes, processView(k.proc, row, byProc[k]))
	}
	list := make([]HostView, 0, len(hosts))
	for _, h := range hosts {
		slices.SortFunc(h.Processes, func(a, b ProcessView) int {
			return cmp.Or(cmp.Compare(b.Out, a.Out), cmp.Compare(b.In, a.In), strings.Compare(a.Process, b.Process))
		})
		if len(h.Processes) > maxProcsShown {
			h.MoreProcs = len(h.Processes) - maxProcsShown
			h.Processes = h.Processes[:maxProcsShown]
		}
		list = append(list, *h)
	}
	slices.SortFunc(list, func(a, b HostView) int {
		return cmp.Or(cmp.Compare(len(b.Alerts), len(a.Alerts)), cmp.Compare(b.Out, a.Out), strings.Compare(a.Host, b.Host))
	})
	total := len(list)
	if len(list) > maxHostsShown {
		list = list[:maxHostsShown]
	}
	return list, total
}

func processView(proc string, r *row, alerts []string) ProcessView {
	p := ProcessView{Process: proc, Flows: r.flows, Out: r.out, In: r.in, Alerts: alerts}
	for d, out := range r.dests {
		p.Destinations = append(p.Destinations, DestinationView{Name: d.String(), Out: out})
	}
	slices.SortFunc(p.Destinations, func(a, b DestinationView) int {
		return cmp.Or(cmp.Compare(b.Out, a.Out), strings.Compare(a.Name, b.Name))
	})
	if len(p.Destinations) > maxDestsShown {
		p.MoreDests = len(p.Destinations) - maxDestsShown
		p.Destinations = p.Destinations[:maxDestsShown]
	}
	if r.otherDests > 0 {
		p.MoreDests++ // at least one more, not remembered
	}
	return p
}

// scatter is the flows to draw, largest first, split by whether an alert
// named them (the collector's lock held).
func (c *Collector) scatter() (scatterData, uint64) {
	ps, alerting := c.flows.kept()
	idx := make([]int, len(ps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		return cmp.Or(cmp.Compare(ps[j].size(), ps[i].size()), strings.Compare(ps[i].cid, ps[j].cid))
	})
	var s scatterData
	for _, i := range idx {
		p := ps[i]
		pt := xy{X: max(p.out, 1), Y: max(p.in, 1), L: flowLabel(p)}
		if alerting[i] {
			s.Alerting = append(s.Alerting, pt)
		} else {
			s.Quiet = append(s.Quiet, pt)
		}
	}
	return s, uint64(len(ps))
}

// flowLabel says which flow a point is, for its tooltip.
func flowLabel(p *point) string {
	var b strings.Builder
	b.WriteString(p.host.String())
	if p.proc != "" {
		b.WriteString(" ")
		b.WriteString(clip(p.proc, 40))
	}
	b.WriteString(" → ")
	if p.name != "" {
		b.WriteString(clip(p.name, 60))
		b.WriteString(" ")
	}
	b.WriteString(p.remote.String())
	b.WriteString(": out ")
	b.WriteString(formatBytes(p.out))
	b.WriteString(", in ")
	b.WriteString(formatBytes(p.in))
	return b.String()
}

// clip cuts s to n runes at most, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func (c *Collector) entropyData() entropyData {
	e := entropyData{Bins: make([]string, entropyBins)}
	for i := range e.Bins {
		e.Bins[i] = formatFloat(float64(i)/2) + "–" + formatFloat(float64(i+1)/2)
	}
	for cl := 1; cl < numClasses; cl++ { // unknown is not drawn
		counts := c.entropy[cl][:]
		for _, n := range counts {
			e.Samples += n
		}
		e.Classes = append(e.Classes, entropyClass{Name: entropy.Class(cl).String(), Counts: slices.Clone(counts)})
	}
	return e
}
