package encode

import (
	"net/netip"
	"strconv"

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
		w.b = flows.AppendJSONString(w.b, name)
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
			w.b = flows.AppendJSONString(w.b, h)
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
		w.ancestors(proc.Ancestors)
		w.conflict(proc.Conflict)
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
					w.b = flows.AppendJSONString(w.b, a)
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
	w.ancestors(a.Ancestors)
	w.conflict(a.Conflict)
}

// conflict writes the other processes whose connect events claimed the
// same flow end, and "confidence": "contested", as the JSON record does.
func (w *jw) conflict(list []process.ProcessRef) {
	if len(list) == 0 {
		return
	}
	w.str("confidence", "contested")
	w.processes("conflict", len(list), func(i int) (int64, [6][2]string) {
		r := &list[i]
		return r.PID, [6][2]string{{"host", r.Host}, {"guid", r.GUID}, {"image", r.Image}, {"name", imageName(r.Image)},
			{"feed", r.Feed}}
	})
}

// ancestors writes a process's ancestors, nearest first, as an array of
// objects in Outflow's names: ECS has process.parent and nothing above
// it.
func (w *jw) ancestors(list []process.Ancestor) {
	w.processes("ancestors", len(list), func(i int) (int64, [6][2]string) {
		a := &list[i]
		return a.PID, [6][2]string{{"guid", a.GUID}, {"image", a.Image}, {"name", imageName(a.Image)},
			{"command_line", a.Command}, {"user", a.User}}
	})
}

// processes writes key: an array of n objects, each a pid (left out when
// negative) and the named strings that are not empty.
func (w *jw) processes(key string, n int, member func(i int) (int64, [6][2]string)) {
	if n == 0 {
		return
	}
	w.key(key)
	b := append(w.b, '[')
	for i := 0; i < n; i++ {
		pid, kvs := member(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		first := true
		if pid >= 0 {
			b = appendMember(b, &first, "pid")
			b = strconv.AppendInt(b, pid, 10)
		}
		for _, kv := range kvs {
			if kv[0] != "" && kv[1] != "" {
				b = appendMember(b, &first, kv[0])
				b = flows.AppendJSONString(b, kv[1])
			}
		}
		b = append(b, '}')
	}
	w.b = append(b, ']')
}

// appendMember writes `"k":`, after a comma unless it is the object's
// first member.
func appendMember(b []byte, first *bool, k string) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}
