package encode

import (
	"net/netip"
	"strings"

	"github.com/outflow-sensor/outflow/detect"
)

// Alert severities as numbers: event.severity is their rank, and
// event.risk_score the score Elastic's prebuilt detection rules pair with
// that severity, so Outflow's alerts sort among Elastic's.
var alertSeverity = map[string]struct {
	rank int64
	risk float64
}{
	// Informational is below Elastic's lowest rule severity: rank 0,
	// and no risk.
	detect.Informational: {0, 0},
	detect.Low:           {1, 21}, detect.Medium: {2, 47}, detect.High: {3, 73}, detect.Critical: {4, 99},
}

// attackTechnique is an ATT&CK technique's name and tactic, for the
// techniques the analytics are tagged with. A technique not listed is
// written by its id alone.
type attackTechnique struct{ name, tactic string }

var attackTechniques = map[string]attackTechnique{
	"T1071":     {"Application Layer Protocol", "TA0011"},
	"T1567":     {"Exfiltration Over Web Service", "TA0010"},
	"T1567.002": {"Exfiltration to Cloud Storage", ""},
	"T1568":     {"Dynamic Resolution", "TA0011"},
	"T1573":     {"Encrypted Channel", "TA0011"},
	"T1573.001": {"Symmetric Cryptography", ""},
}

var attackTactics = map[string]string{"TA0010": "Exfiltration", "TA0011": "Command and Control"}

// appendECSAlert appends a as one ECS alert event; docs/ecs.md gives the
// mapping. Outflow's evidence (measured values, thresholds, baseline) has
// no ECS form and is under outflow.evidence as the analytics wrote it.
func appendECSAlert(dst []byte, a *detect.Alert) []byte {
	w := jw{b: append(dst, '{')}
	w.key("@timestamp")
	w.time(a.TS)
	w.begin("ecs")
	w.lit("version", ECSVersion)
	w.end()
	w.optStr("message", a.Title)

	network := a.Destination != nil || len(a.Evidence.CommunityIDs) > 0
	w.begin("event")
	w.lit("kind", "alert")
	if network {
		w.raw("category", `["intrusion_detection","network"]`)
	} else {
		w.raw("category", `["intrusion_detection"]`)
	}
	w.raw("type", `["info"]`)
	w.lit("module", "outflow")
	w.lit("dataset", "outflow.alert")
	w.optStr("id", a.ID)
	if s, ok := alertSeverity[a.Severity]; ok {
		w.i64("severity", s.rank)
		w.float("risk_score", s.risk)
	}
	w.optStr("reason", a.Title)
	w.end()

	if a.Analytic != "" {
		w.begin("rule")
		w.str("id", a.Analytic)
		w.str("name", a.Analytic)
		w.lit("ruleset", "outflow")
		w.end()
	}
	w.ecsThreat(a.Technique)

	hostIP, destIP := w.alertEnds(a)
	if p := a.Process; p != nil {
		w.alertProcess(p)
	}
	w.alertRelated(a, hostIP, destIP)
	w.outflowAlert(a)
	return append(w.b, "}\n"...)
}

// alertEnds writes the alert's two ends: host (and user, and source: the
// host is what sent) and destination, and the network flow when there is
// one. It returns their addresses, invalid when the alert has none.
func (w *jw) alertEnds(a *detect.Alert) (hostIP, destIP netip.Addr) {
	if h := a.Host; h != nil {
		hostIP, _ = netip.ParseAddr(h.IP)
		w.begin("host")
		if hostIP.IsValid() {
			w.key("ip")
			w.b = append(w.b, '[')
			w.ip(hostIP)
			w.b = append(w.b, ']')
		}
		w.optStr("name", h.Name)
		w.end()
		if h.User != "" {
			w.begin("user")
			w.str("name", h.User)
			w.end()
		}
		// The alert's host is the internal end, the destination the
		// remote one: the host is the source of what was sent.
		if hostIP.IsValid() {
			w.begin("source")
			w.key("ip")
			w.ip(hostIP)
			w.key("address")
			w.ip(hostIP)
			w.end()
		}
	}
	if d := a.Destination; d != nil {
		destIP, _ = netip.ParseAddr(d.IP)
		w.begin("destination")
		if destIP.IsValid() {
			w.key("ip")
			w.ip(destIP)
		}
		if d.Port != 0 {
			w.u64("port", uint64(d.Port))
		}
		w.optStr("domain", d.Name)
		switch {
		case d.Name != "":
			w.str("address", d.Name)
		case destIP.IsValid():
			w.key("address")
			w.ip(destIP)
		}
		w.end()
	}
	if ids := a.Evidence.CommunityIDs; len(ids) == 1 {
		w.begin("network")
		w.str("community_id", ids[0])
		w.end()
	}
	return hostIP, destIP
}

// alertProcess writes process.* for the alert's process.
func (w *jw) alertProcess(p *detect.AlertProcess) {
	w.begin("process")
	if p.PID != 0 {
		w.i64("pid", p.PID)
	}
	w.optStr("entity_id", p.GUID)
	w.optStr("executable", p.Image)
	if n := imageName(p.Image); n != "" {
		w.str("name", n)
	} else {
		w.optStr("name", p.Name)
	}
	w.optStr("command_line", p.CommandLine)
	w.begin("user")
	w.optStr("name", p.User)
	w.end()
	w.begin("parent")
	w.optStr("executable", p.ParentImage)
	w.optStr("name", imageName(p.ParentImage))
	w.end()
	w.end()
}

// alertRelated writes related.*, for pivoting on any address, name or
// user the alert names.
func (w *jw) alertRelated(a *detect.Alert, hostIP, destIP netip.Addr) {
	w.begin("related")
	if hostIP.IsValid() || destIP.IsValid() {
		w.key("ip")
		w.b = append(w.b, '[')
		if hostIP.IsValid() {
			w.ip(hostIP)
		}
		if destIP.IsValid() && destIP != hostIP {
			if hostIP.IsValid() {
				w.b = append(w.b, ',')
			}
			w.ip(destIP)
		}
		w.b = append(w.b, ']')
	}
	var hosts [2]string
	n := 0
	if a.Host != nil && a.Host.Name != "" {
		hosts[n] = a.Host.Name
		n++
	}
	if a.Destination != nil && a.Destination.Name != "" {
		hosts[n] = a.Destination.Name
		n++
	}
	if n > 0 {
		w.strs("hosts", hosts[:n])
	}
	var users [2]string
	n = 0
	if a.Host != nil && a.Host.User != "" {
		users[n] = a.Host.User
		n++
	}
	if a.Process != nil && a.Process.User != "" && (n == 0 || a.Process.User != users[0]) {
		users[n] = a.Process.User
		n++
	}
	if n > 0 {
		w.strs("user", users[:n])
	}
	w.end()
}

// outflowAlert writes what ECS has no field for under outflow, the
// evidence whole.
func (w *jw) outflowAlert(a *detect.Alert) {
	w.begin("outflow")
	w.optStr("severity", a.Severity)
	w.optStr("confidence", a.Confidence)
	w.optStr("dedup_key", a.DedupKey)
	if len(a.Missing) > 0 {
		w.strs("missing", a.Missing)
	}
	if a.Host != nil && a.Host.PeerGroup != "" {
		w.begin("host")
		w.str("peer_group", a.Host.PeerGroup)
		w.end()
	}
	if a.Destination != nil && a.Destination.Service != "" {
		w.begin("destination")
		w.str("service", a.Destination.Service)
		w.end()
	}
	if a.Process != nil && a.Process.Feed != "" {
		w.begin("process")
		w.str("feed", a.Process.Feed)
		w.end()
	}
	ev := &a.Evidence
	w.begin("evidence")
	if len(ev.CommunityIDs) > 0 {
		w.strs("community_ids", ev.CommunityIDs)
	}
	for _, m := range [...]struct {
		key string
		m   map[string]any
	}{{"measured", ev.Measured}, {"thresholds", ev.Thresholds}, {"baseline", ev.Baseline}} {
		if len(m.m) > 0 {
			w.key(m.key)
			w.b = appendAny(w.b, m.m)
		}
	}
	if len(ev.Events) > 0 {
		w.strs("events", ev.Events)
	}
	w.end()
	w.end()
}

// ecsThreat writes threat.* for an ATT&CK technique id ("T1567" or the
// sub-technique "T1567.002"). The arrays hold one entry: an alert has one
// technique.
func (w *jw) ecsThreat(id string) {
	if id == "" {
		return
	}
	parent, sub, isSub := strings.Cut(id, ".")
	pt := attackTechniques[parent]
	w.begin("threat")
	w.lit("framework", "MITRE ATT&CK")
	if pt.tactic != "" {
		w.begin("tactic")
		w.strs1("id", pt.tactic)
		w.strs1("name", attackTactics[pt.tactic])
		w.key("reference")
		w.b = append(w.b, `["https://attack.mitre.org/tactics/`...)
		w.b = append(w.b, pt.tactic...)
		w.b = append(w.b, `/"]`...)
		w.end()
	}
	w.begin("technique")
	w.strs1("id", parent)
	if pt.name != "" {
		w.strs1("name", pt.name)
	}
	w.key("reference")
	w.b = append(w.b, `["https://attack.mitre.org/techniques/`...)
	w.b = appendURLPath(w.b, parent)
	w.b = append(w.b, `/"]`...)
	if isSub {
		w.begin("subtechnique")
		w.strs1("id", id)
		if st := attackTechniques[id]; st.name != "" {
			w.strs1("name", st.name)
		}
		w.key("reference")
		w.b = append(w.b, `["https://attack.mitre.org/techniques/`...)
		w.b = appendURLPath(w.b, parent)
		w.b = append(w.b, '/')
		w.b = appendURLPath(w.b, sub)
		w.b = append(w.b, `/"]`...)
		w.end()
	}
	w.end()
	w.end()
}

// appendURLPath appends an id's letters and digits, dropping anything
// else: the ids come from code, but a reference must stay a URL.
func appendURLPath(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			dst = append(dst, c)
		}
	}
	return dst
}
