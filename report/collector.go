package report

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/entropy"
	"github.com/outflow-sensor/outflow/record"
)

// Config bounds what a Collector keeps: whatever the capture, its memory
// is a few tens of MB at most.
type Config struct {
	// Sources name what was replayed (the captures), for the page's head.
	Sources []string
	// MaxFlows is how many of the largest flows (bytes out and in) the
	// scatter chart keeps; every flow an alert names is kept besides.
	MaxFlows int
	// MaxRows bounds the host and process rows; past it, new ones are
	// added up in one row for the rest.
	MaxRows int
	// MaxAlerts bounds the alerts kept in full; the rest are counted.
	MaxAlerts int
}

// DefaultConfig keeps the 5,000 largest flows, 10,000 host and process
// rows and 5,000 alerts.
func DefaultConfig() Config {
	return Config{MaxFlows: 5000, MaxRows: 10000, MaxAlerts: 5000}
}

// Collector gathers what a report shows from a sensor's records and
// alerts. Record and the Alerts writer may be called from any goroutine.
type Collector struct {
	cfg Config
	mu  sync.Mutex

	records, interim uint64 // final records counted; interim ones seen
	out, in          uint64 // bytes the home ends sent and received
	external         uint64 // flows with no end in the home networks
	first, last      int64  // capture time of the records, Unix ns

	rows     rowTable
	flows    flowKeep
	timeline timeline
	entropy  [numClasses][entropyBins]uint64

	alerts        []*detect.Alert
	alertsDropped int // past MaxAlerts
	alertErrors   int // lines that were not alerts
}

// New returns a Collector bounded by cfg; zero bounds take the defaults.
func New(cfg Config) *Collector {
	def := DefaultConfig()
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = def.MaxFlows
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = def.MaxRows
	}
	if cfg.MaxAlerts <= 0 {
		cfg.MaxAlerts = def.MaxAlerts
	}
	c := &Collector{cfg: cfg}
	c.rows.init(cfg.MaxRows)
	c.flows.init(cfg.MaxFlows, cfg.MaxAlerts)
	c.timeline.init()
	return c
}

// Record takes one flow record; it is what sensor.ReplayConfig.Records
// calls. f is only read during the call. Interim records of a flow that
// goes on are not counted: the flow's final record carries its totals.
func (c *Collector) Record(f *record.Flow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !f.Final {
		c.interim++
		return
	}
	c.records++
	if f.Start > 0 && (c.first == 0 || f.Start < c.first) {
		c.first = f.Start
	}
	c.last = max(c.last, f.End)
	out, in := f.OutIn()
	host, remote, proc := ends(f)
	name := ""
	if remote == f.Resp {
		name = f.ServerName() // the responder's name
	}
	pn := procName(proc)
	if f.Direction == record.External {
		// No internal host to put it under: drawn, not in the table.
		c.external++
	} else {
		c.out += out
		c.in += in
		c.rows.add(host, pn, remote, name, out, in)
	}
	c.flows.add(point{cid: f.CommunityID.String(), out: out, in: in, host: host, remote: remote, proc: pn, name: name})
	c.timeline.add(f.Start, false)
	if in := f.Inspection; in != nil {
		for _, s := range in.Entropy {
			// Under entropy.MinSample bytes a sample says nothing: its
			// class is unknown, and it is not drawn.
			if s.Class != entropy.Unknown && int(s.Class) < numClasses {
				c.entropy[s.Class][entropyBin(s.Bits)]++
			}
		}
	}
}

// ends are a flow's internal host, its other end and the process at the
// internal host; for a flow between two outside addresses, the
// originator plays the internal host.
func ends(f *record.Flow) (host netip.Addr, remote netip.AddrPort, proc *process.Attribution) {
	if f.Direction == record.Inbound {
		return f.Resp.Addr().Unmap(), f.Orig, f.RespProc
	}
	return f.Orig.Addr().Unmap(), f.Resp, f.OrigProc
}

// procName is a process's name as alerts give it: the image's base name,
// lower case; "" when no process was attributed.
func procName(a *process.Attribution) string {
	if a == nil {
		return ""
	}
	image := a.Image
	if i := strings.LastIndexAny(image, `\/`); i >= 0 {
		image = image[i+1:]
	}
	return strings.ToLower(image)
}

// addAlert keeps one alert (the collector's lock held).
func (c *Collector) addAlert(a *detect.Alert) {
	c.timeline.add(a.TS.UnixNano(), true)
	c.flows.alert(a.Evidence.CommunityIDs)
	if len(c.alerts) >= c.cfg.MaxAlerts {
		c.alertsDropped++
		return
	}
	c.alerts = append(c.alerts, a)
}

// AddAlert takes one alert, for a caller that has them typed; a is kept
// and must not change after the call.
func (c *Collector) AddAlert(a *detect.Alert) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addAlert(a)
}
