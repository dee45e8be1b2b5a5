package encode

import (
	"encoding/json"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/tls"
)

// ECSVersion is the ecs.version every ECS line carries: the mapping
// (docs/ecs.md) uses only fields that ECS 8.0 already defined, and the
// conformance suite checks each against the published definitions.
const ECSVersion = "8.0.0"

// appendECSFlow appends f as one Elastic Common Schema event: ECS fields
// where ECS defines one, everything else under "outflow". Keys with
// nothing to say are left out, never null. docs/ecs.md gives the mapping
// key by key.
func appendECSFlow(dst []byte, f *record.Flow) []byte {
	w := jw{b: append(dst, '{')}
	w.key("@timestamp")
	w.timestamp(f.Start)
	w.begin("ecs")
	w.lit("version", ECSVersion)
	w.end()

	w.begin("event")
	w.lit("kind", "event")
	w.raw("category", `["network"]`)
	if f.Final {
		w.raw("type", `["connection","end"]`)
	} else {
		w.raw("type", `["connection"]`)
	}
	w.lit("module", "outflow")
	w.lit("dataset", "outflow.flow")
	w.key("start")
	w.timestamp(f.Start)
	w.key("end")
	w.timestamp(f.End)
	w.i64("duration", max(f.End-f.Start, 0))
	w.end()

	name := ""
	if f.Inspection != nil {
		name = hostOnly(f.ServerName())
	}
	// Bytes are IP bytes, as NetFlow and IPFIX count octets: the one count
	// both captures and router exports have.
	// Ports are ECS's for the protocols that have them; an ICMP record's
	// "ports" are Zeek's type and code, kept under outflow.
	ports := f.Proto == 6 || f.Proto == 17 || f.Proto == 132
	w.endpoint("source", f.Orig, ports, f.OrigIPBytes, f.OrigPkts, "")
	w.endpoint("destination", f.Resp, ports, f.RespIPBytes, f.RespPkts, name)

	w.ecsNetwork(f)

	if !f.Observed && f.Export.Exporter.IsValid() {
		// ECS's observer is the device that saw the traffic: for an
		// exported record, the router.
		w.begin("observer")
		w.key("ip")
		w.b = append(w.b, '[')
		w.ip(f.Export.Exporter)
		w.b = append(w.b, ']')
		w.end()
	}

	w.begin("related")
	w.key("ip")
	w.b = append(w.b, '[')
	w.ip(f.Orig.Addr())
	if f.Resp.Addr() != f.Orig.Addr() {
		w.b = append(w.b, ',')
		w.ip(f.Resp.Addr())
	}
	w.b = append(w.b, ']')
	if name != "" {
		w.key("hosts")
		w.b = append(w.b, '[')
		w.b = appendJSONString(w.b, name)
		w.b = append(w.b, ']')
	}
	w.end()

	if s := f.Inspection; s != nil {
		w.ecsInspection(s, f.HTTPBody)
	}

	// process.* is one process: the originator's (the side that chose to
	// connect) when known, else the responder's; host.* is the host it ran
	// on. The other end's, when both are known, is outflow.resp_process.
	proc, end, procAddr := f.OrigProc, "orig", f.Orig.Addr()
	if proc == nil {
		proc, end, procAddr = f.RespProc, "resp", f.Resp.Addr()
	}
	if proc != nil {
		w.ecsProcess(proc)
		w.begin("host")
		w.key("ip")
		w.b = append(w.b, '[')
		w.ip(procAddr)
		w.b = append(w.b, ']')
		w.optStr("name", proc.Host)
		w.end()
	}

	w.outflowFlow(f, proc, end)
	return append(w.b, "}\n"...)
}

// ecsNetwork writes network.*: the flow's protocol, direction, totals and
// VLANs.
func (w *jw) ecsNetwork(f *record.Flow) {
	w.begin("network")
	if !f.CommunityID.IsZero() {
		w.str("community_id", string(f.CommunityID.Bytes()))
	}
	if t := ianaKeyword(f.Proto); t != "" {
		w.lit("transport", t)
	}
	w.key("iana_number")
	w.b = append(w.b, '"')
	w.b = strconv.AppendUint(w.b, uint64(f.Proto), 10)
	w.b = append(w.b, '"')
	if f.Orig.Addr().Is4() {
		w.lit("type", "ipv4")
	} else {
		w.lit("type", "ipv6")
	}
	// Outflow's directions are ECS's perimeter values, by the same names.
	w.lit("direction", f.Direction.String())
	w.u64("bytes", f.OrigIPBytes+f.RespIPBytes)
	w.u64("packets", f.OrigPkts+f.RespPkts)
	if f.Inspection != nil && f.Inspection.App != flows.AppUnknown {
		w.lit("protocol", f.Inspection.App.String())
	}
	if f.VLAN != 0 {
		w.begin("vlan")
		w.keywordUint("id", uint64(f.VLAN))
		w.end()
	}
	if f.InnerVLAN != 0 {
		w.begin("inner")
		w.begin("vlan")
		w.keywordUint("id", uint64(f.InnerVLAN))
		w.end()
		w.end()
	}
	w.end()
}

// outflowFlow writes what ECS has no field for under outflow; proc is the
// process written as process.*, at the end named.
func (w *jw) outflowFlow(f *record.Flow, proc *process.Attribution, end string) {
	w.begin("outflow")
	w.boolean("observed_payload", f.Observed)
	if f.Proto == 1 || f.Proto == 58 {
		w.begin("icmp")
		w.u64("orig_p", uint64(f.Orig.Port()))
		w.u64("resp_p", uint64(f.Resp.Port()))
		w.end()
	}
	if f.Observed {
		w.u64("orig_bytes", f.OrigBytes)
		w.u64("resp_bytes", f.RespBytes)
		w.u64("missed_bytes", f.MissedBytes)
		w.u64("orig_frame_bytes", f.OrigFrameBytes)
		w.u64("resp_frame_bytes", f.RespFrameBytes)
		if h := f.History.Bytes(); len(h) > 0 {
			w.key("history")
			w.b = appendJSONString(w.b, h)
		}
		w.optStr("conn_state", f.State)
	}
	w.boolean("final", f.Final)
	if f.Evicted {
		w.boolean("evicted", true)
	}
	if f.Tunnel != 0 {
		w.lit("tunnel", f.Tunnel.String())
	}
	out, in := f.OutIn()
	w.u64("out_bytes", out)
	w.u64("in_bytes", in)
	if in != 0 {
		w.float("out_in_ratio", float64(out)/float64(in))
	}
	ob, rb := f.PayloadOrIPBytes()
	if ob+rb != 0 {
		w.float("upload_ratio", (float64(ob)-float64(rb))/float64(ob+rb))
	} else {
		w.float("upload_ratio", 0)
	}
	if f.Inspection != nil {
		w.outflowInspection(f.Inspection)
	}
	if !f.Observed {
		w.begin("export")
		w.u64("version", uint64(f.Export.Version))
		w.optStr("stitch", f.Export.Stitch)
		if f.Export.SamplingRate > 1 {
			w.u64("sampling_rate", uint64(f.Export.SamplingRate))
		}
		w.end()
	}
	if proc != nil {
		w.begin("process")
		w.lit("end", end)
		w.optStr("feed", proc.Feed)
		w.optStr("match", proc.Match)
		w.i64("skew_ms", proc.SkewMS)
		w.end()
		if end == "orig" && f.RespProc != nil {
			w.begin("resp_process")
			w.outflowProcess(f.RespProc)
			w.end()
		}
	}
	w.end()
}

// endpoint writes source or destination: port only when the protocol
// has ports; domain is the name the client used for it, "" when none.
func (w *jw) endpoint(obj string, ap netip.AddrPort, port bool, ipBytes, pkts uint64, domain string) {
	w.begin(obj)
	w.key("ip")
	w.ip(ap.Addr())
	w.key("address")
	w.ip(ap.Addr())
	if port {
		w.u64("port", uint64(ap.Port()))
	}
	w.u64("bytes", ipBytes)
	w.u64("packets", pkts)
	w.optStr("domain", domain)
	w.end()
}

// ecsInspection writes what inspection learnt into ECS's tls, http, url
// and dns objects.
func (w *jw) ecsInspection(s *flows.Inspection, httpBody int64) {
	t, q := s.TLS, s.QUIC
	hasTLS := t != nil && (t.ClientHello || t.ServerHello)
	sni := ""
	switch {
	case hasTLS && t.SNI != "":
		sni = t.SNI
	case q != nil && q.SNI != "":
		sni = q.SNI // QUIC's handshake is TLS 1.3's, its SNI the same extension
	}
	w.begin("tls")
	if hasTLS {
		if t.ServerHello {
			if v, proto := tlsVersion(t.Version); v != "" {
				w.lit("version", v)
				w.lit("version_protocol", proto)
			}
			w.str("cipher", tls.CipherName(t.Cipher))
		}
		w.boolean("established", t.Established())
	}
	w.begin("client")
	w.optStr("server_name", sni)
	if hasTLS && t.ClientHello {
		w.optStr("ja3", t.JA3)
	}
	w.end()
	if hasTLS && t.ServerHello {
		w.begin("server")
		w.optStr("ja3s", t.JA3S)
		w.end()
	}
	w.end()

	if h := s.HTTP; h != nil && h.Method != "" {
		w.begin("http")
		w.begin("request")
		w.str("method", h.Method)
		if httpBody >= 0 {
			w.begin("body")
			w.i64("bytes", httpBody)
			w.end()
		}
		w.end()
		w.end()
		if host := hostOnly(h.Host); host != "" {
			w.begin("url")
			w.str("domain", host)
			w.end()
		}
	}

	if d := s.DNS; d != nil && d.Query != "" {
		w.begin("dns")
		if d.Response {
			w.lit("type", "answer")
			w.key("response_code")
			w.b = appendDNSRCode(w.b, d.RCode)
			if len(d.Answers) > 0 {
				w.key("answers")
				w.b = append(w.b, '[')
				for i, a := range d.Answers {
					if i > 0 {
						w.b = append(w.b, ',')
					}
					w.b = append(w.b, `{"data":`...)
					w.b = appendJSONString(w.b, a)
					w.b = append(w.b, '}')
				}
				w.b = append(w.b, ']')
			}
		} else {
			w.lit("type", "query")
		}
		w.begin("question")
		w.str("name", d.Query)
		w.key("type")
		w.b = appendDNSType(w.b, d.QType)
		w.end()
		w.end()
	}
}

// outflowInspection writes, under outflow, what inspection learnt that
// ECS has no field for.
func (w *jw) outflowInspection(s *flows.Inspection) {
	if t := s.TLS; t != nil && (t.ClientHello || t.ServerHello) {
		w.begin("tls")
		w.boolean("client_hello", t.ClientHello)
		w.boolean("server_hello", t.ServerHello)
		if t.StartTLS {
			w.boolean("starttls", true)
		}
		if len(t.ALPN) > 0 {
			w.strs("alpn", t.ALPN) // offered; ECS's next_protocol is the chosen one
		}
		if t.ClientHello {
			w.optStr("ja3_string", t.JA3String)
			w.optStr("ja4", t.JA4)
		}
		if t.ServerHello {
			w.optStr("ja3s_string", t.JA3SStr)
		}
		w.end()
	}
	if q := s.QUIC; q != nil && q.Version != 0 {
		w.begin("quic")
		w.key("version")
		w.b = append(w.b, '"')
		w.b = appendQUICVersion(w.b, q.Version)
		w.b = append(w.b, '"')
		if len(q.ALPN) > 0 {
			w.strs("alpn", q.ALPN)
		}
		w.optStr("ja4", q.JA4)
		w.end()
	}
	if s.Entropy[0].N > 0 || s.Entropy[1].N > 0 {
		w.begin("entropy")
		for d, name := range [2]string{"orig", "resp"} {
			if e := &s.Entropy[d]; e.N > 0 {
				w.begin(name)
				w.float("bits", e.Bits)
				w.i64("n", int64(e.N))
				w.float("chi2", e.Chi2)
				w.end()
			}
		}
		w.end()
		w.begin("payload_class")
		for d, name := range [2]string{"orig", "resp"} {
			if e := &s.Entropy[d]; e.N > 0 {
				w.lit(name, e.Class.String())
			}
		}
		w.end()
		w.begin("payload_class_reason")
		for d, name := range [2]string{"orig", "resp"} {
			if e := &s.Entropy[d]; e.N > 0 {
				w.lit(name, e.Reason.String())
			}
		}
		w.end()
	}
}

// ecsProcess writes process.* for one attributed process.
func (w *jw) ecsProcess(a *process.Attribution) {
	w.begin("process")
	if a.PID >= 0 {
		w.i64("pid", a.PID)
	}
	w.optStr("entity_id", a.GUID)
	w.optStr("executable", a.Image)
	w.optStr("name", imageName(a.Image))
	w.optStr("command_line", a.Command)
	if !a.Start.IsZero() {
		w.key("start")
		w.time(a.Start)
	}
	w.begin("user")
	w.optStr("name", a.User)
	w.end()
	w.begin("parent")
	if a.PPID > 0 {
		w.i64("pid", a.PPID)
	}
	w.optStr("entity_id", a.ParentGUID)
	w.optStr("executable", a.ParentImage)
	w.optStr("name", imageName(a.ParentImage))
	w.optStr("command_line", a.ParentCommand)
	w.end()
	w.end()
}

// outflowProcess writes the responder's process in Outflow's own names.
func (w *jw) outflowProcess(a *process.Attribution) {
	w.optStr("host", a.Host)
	if a.PID >= 0 {
		w.i64("pid", a.PID)
	}
	w.optStr("guid", a.GUID)
	w.optStr("image", a.Image)
	w.optStr("name", imageName(a.Image))
	w.optStr("command_line", a.Command)
	w.optStr("user", a.User)
	w.optStr("parent_image", a.ParentImage)
	w.optStr("feed", a.Feed)
	w.optStr("match", a.Match)
	w.i64("skew_ms", a.SkewMS)
}

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

// jwDepth bounds the nesting of objects the encoders write (event.*,
// process.parent.*, outflow.entropy.orig.*: three).
const jwDepth = 6

// jw writes one JSON object of nested objects in one pass over a record.
// An object is begun by name but written only with its first member, so
// one that has nothing to say leaves no "{}" behind, and no member needs
// to know whether it is the first.
type jw struct {
	b     []byte
	depth int // objects begun
	open  int // of those, written (open <= depth)
	names [jwDepth + 1]string
	some  [jwDepth + 1]bool // the written object at a level has a member
}

func (w *jw) begin(name string) {
	w.depth++
	w.names[w.depth] = name
}

func (w *jw) end() {
	if w.open == w.depth {
		w.b = append(w.b, '}')
		w.open--
	}
	w.depth--
}

// key writes the objects begun but not yet written, then `"k":`.
func (w *jw) key(k string) {
	for w.open < w.depth {
		w.member(w.names[w.open+1])
		w.b = append(w.b, '{')
		w.open++
		w.some[w.open] = false
	}
	w.member(k)
}

func (w *jw) member(k string) {
	b := w.b // one load and store of the slice, not one per append
	if w.some[w.open] {
		b = append(b, ',')
	}
	w.some[w.open] = true
	b = append(b, '"')
	b = append(b, k...)
	w.b = append(b, '"', ':')
}

func (w *jw) raw(k, v string) {
	w.key(k)
	w.b = append(w.b, v...)
}

// lit writes a string the encoder chose (a constant, a name from a
// table), which needs no escaping.
func (w *jw) lit(k, v string) {
	w.key(k)
	b := append(w.b, '"')
	b = append(b, v...)
	w.b = append(b, '"')
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

// optStr writes a string that is not empty; ECS leaves out what is not
// known.
func (w *jw) optStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jw) strs(k string, v []string) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

// strs1 writes a one-string array, for the fields ECS normalises to
// arrays.
func (w *jw) strs1(k, v string) {
	w.key(k)
	w.b = append(w.b, '[')
	w.b = appendJSONString(w.b, v)
	w.b = append(w.b, ']')
}

func (w *jw) u64(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jw) i64(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

// keywordUint writes a number as a string, for ECS keyword fields that
// hold numbers (VLAN ids).
func (w *jw) keywordUint(k string, v uint64) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '"')
}

// float writes v unless it is NaN or infinite, which JSON cannot hold.
func (w *jw) float(k string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	w.key(k)
	w.b = appendFloat(w.b, v)
}

func (w *jw) boolean(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jw) ip(a netip.Addr) {
	w.b = append(w.b, '"')
	w.b = a.AppendTo(w.b)
	w.b = append(w.b, '"')
}

func (w *jw) timestamp(ns int64) {
	w.b = append(w.b, '"')
	w.b = appendTimestamp(w.b, ns)
	w.b = append(w.b, '"')
}

// time writes t as RFC 3339 in UTC; outside the years Unix nanoseconds
// hold (1678 to 2261), through the time package.
func (w *jw) time(t time.Time) {
	if y := t.Year(); y > 1678 && y < 2261 {
		w.timestamp(t.UnixNano())
		return
	}
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

// appendFloat writes a finite float as JSON does: plain decimals for
// ordinary magnitudes, an exponent for the rest.
func appendFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(dst, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

// appendJSONString quotes s for JSON. Names come off the wire and out of
// host logs, so control characters are escaped and invalid UTF-8 becomes
// U+FFFD rather than breaking the line for the reader.
func appendJSONString[S string | []byte](dst []byte, s S) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		var b [utf8.UTFMax]byte
		r, n := utf8.DecodeRune(b[:copy(b[:], s[i:])])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

// appendAny writes a value of an alert's evidence. The analytics put
// numbers, strings, booleans and times there; the common kinds are
// written here, the rest as encoding/json would, and a value it cannot
// write is null. Map keys are sorted, as encoding/json sorts them.
func appendAny(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendJSONString(dst, x)
	case bool:
		return strconv.AppendBool(dst, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(dst, "null"...)
		}
		return appendFloat(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case []string:
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		return append(dst, ']')
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAny(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendAny(dst, x[k])
		}
		return append(dst, '}')
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// imageName is a program's file name without its directory, as the feed
// wrote it (ECS's process.name keeps the case).
func imageName(image string) string {
	if i := strings.LastIndexAny(image, `\/`); i >= 0 {
		return image[i+1:]
	}
	return image
}

// hostOnly is a name without the port an HTTP Host may carry:
// "example.com:8080" and "[2001:db8::1]:80" lose it, a bare IPv6 address
// keeps its colons.
func hostOnly(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return s
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		return s[:i]
	}
	return s
}

// ianaKeyword is the IANA protocol keyword ECS's network.transport takes,
// lower case; "" for the protocols not named here (iana_number still
// says which).
func ianaKeyword(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 2:
		return "igmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 41:
		return "ipv6"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 58:
		return "ipv6-icmp"
	case 132:
		return "sctp"
	}
	return ""
}

// tlsVersion splits a negotiated version into ECS's tls.version and
// tls.version_protocol ("1.3", "tls"); "" for versions ECS cannot name.
func tlsVersion(v uint16) (version, protocol string) {
	switch v {
	case 0x0300:
		return "3.0", "ssl"
	case 0x0301:
		return "1.0", "tls"
	case 0x0302:
		return "1.1", "tls"
	case 0x0303:
		return "1.2", "tls"
	case 0x0304:
		return "1.3", "tls"
	}
	return "", ""
}

func appendQUICVersion(dst []byte, v uint32) []byte {
	switch v {
	case 1:
		return append(dst, '1')
	case 0x6b3343cf:
		return append(dst, '2')
	}
	dst = append(dst, "0x"...)
	return strconv.AppendUint(dst, uint64(v), 16)
}

// DNS names of the common query types and response codes (RFC 1035 and
// the IANA registry); others are written as RFC 3597's TYPEnnn, and a
// response code as its number.
var dnsTypes = map[uint16]string{1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
	64: "SVCB", 65: "HTTPS", 99: "SPF", 255: "ANY", 257: "CAA"}

var dnsRCodes = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

func appendDNSType(dst []byte, t uint16) []byte {
	dst = append(dst, '"')
	if n, ok := dnsTypes[t]; ok {
		dst = append(dst, n...)
	} else {
		dst = append(dst, "TYPE"...)
		dst = strconv.AppendUint(dst, uint64(t), 10)
	}
	return append(dst, '"')
}

func appendDNSRCode(dst []byte, c uint8) []byte {
	dst = append(dst, '"')
	if int(c) < len(dnsRCodes) {
		dst = append(dst, dnsRCodes[c]...)
	} else {
		dst = strconv.AppendUint(dst, uint64(c), 10)
	}
	return append(dst, '"')
}
