package detect

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// DatastoreConfig is AN1515: ESXi services sending virtual disks out.
type DatastoreConfig struct {
	Enabled                    bool     `yaml:"Enabled"`
	ESXiHosts                  []string `yaml:"ESXiHosts"`
	Services                   []string `yaml:"Services"`
	DatastoreTransferThreshold Bytes    `yaml:"DatastoreTransferThreshold"`
	TimeWindow                 Duration `yaml:"TimeWindow"`
}

// datastoreTransfer is AN1515 (T1567, DET0548, ESXi): an ESXi host's
// services (vmx, hostd, vpxa) send more than DatastoreTransferThreshold
// to an external host within TimeWindow: a virtual disk leaving. ESXi runs
// no agent Outflow reads flows from, so its hosts are named in ESXiHosts;
// hostd and vpxa log lines of the window (NFC transfers, exports) are
// attached as evidence when a feed brings them.
type datastoreTransfer struct{}

func (datastoreTransfer) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.AN1515
	if !v.outbound || v.out == 0 {
		return
	}
	esxi := v.proc != nil && nameIn(v.proc.Image, c.Services)
	if !esxi {
		for _, h := range c.ESXiHosts {
			if a, err := netip.ParseAddr(h); err == nil && a == v.inside.Addr().Unmap() {
				esxi = true
			}
		}
	}
	if !esxi {
		return
	}
	key := "an1515|" + v.hostIP() + "|" + v.destName()
	w := e.addWindow(key, c.TimeWindow.D(), f.Start, v.out, v.in, f.CommunityID)
	if w.out <= uint64(c.DatastoreTransferThreshold) {
		return
	}
	e.resetWindow(key)
	a := e.alertFor(f, v, "AN1515", "T1567")
	a.Severity, a.Confidence = High, "medium"
	if v.proc != nil {
		a.Confidence = "high"
	}
	a.Title = fmt.Sprintf("ESXi host %s sent %s to external %s within %v", v.hostIP(), humanBytes(w.out), v.destName(), c.TimeWindow)
	windowEvidence(a, w)
	if e.ev != nil && v.hostName != "" {
		for _, ev := range e.ev.Query(v.hostName, w.start.Add(-c.TimeWindow.D()), f.End, "", -1, feed.KindServiceLog) {
			t := strings.ToLower(ev.Target)
			if strings.Contains(t, "nfc") || strings.Contains(t, "export") || strings.Contains(t, ".vmdk") {
				a.Evidence.Events = append(a.Evidence.Events, ev.Image+": "+ev.Target)
			}
		}
	}
	a.Evidence.Thresholds["DatastoreTransferThreshold"] = uint64(c.DatastoreTransferThreshold)
	a.Evidence.Thresholds["TimeWindow"] = c.TimeWindow.String()
	a.DedupKey = strings.Join([]string{"AN1515", v.hostIP(), v.destName()}, "|")
	e.emit(a)
}
