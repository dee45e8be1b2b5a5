package detect

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/entropy"
)

// EncryptedConfig is T1573.001 (DET0143): encrypted payload without a
// protocol that explains it, and the host variant after a crypto module
// load.
type EncryptedConfig struct {
	Enabled                 bool                `yaml:"Enabled"`
	PayloadEntropyThreshold float64             `yaml:"PayloadEntropyThreshold"`
	EntropyThreshold        float64             `yaml:"EntropyThreshold"`
	MinSample               int                 `yaml:"MinSample"`
	TrafficVolumeThreshold  Bytes               `yaml:"TrafficVolumeThreshold"`
	TrafficAsymmetryRatio   float64             `yaml:"TrafficAsymmetryRatio"`
	PortProfiles            map[string][]string `yaml:"PortProfiles"`
	DoHResolvers            []string            `yaml:"DoHResolvers"`
	AllowedMgmtHosts        []string            `yaml:"AllowedMgmtHosts"`
	AllowedCryptoProcesses  []string            `yaml:"AllowedCryptoProcesses"`
	CryptoLibs              []string            `yaml:"CryptoLibs"`
	TrustedCryptoLibs       []string            `yaml:"TrustedCryptoLibs"`
	TimeWindow              Duration            `yaml:"TimeWindow"`

	ports map[uint16][]string
}

// compile checks the entropy thresholds, the port profiles and the
// management hosts, and builds the port lookup the analytic reads; bad
// reports a problem at a key, as Config.compile does.
func (e *EncryptedConfig) compile(bad func(key, format string, a ...any)) {
	for k, v := range map[string]float64{"EncryptedChannel.PayloadEntropyThreshold": e.PayloadEntropyThreshold,
		"EncryptedChannel.EntropyThreshold": e.EntropyThreshold} {
		if v < 0 || v > 8 {
			bad(k, "%v: bits per byte, between 0 and 8", v)
		}
	}
	if e.MinSample < 16 {
		bad("EncryptedChannel.MinSample", "at least 16 bytes; entropy of fewer says little")
	}
	e.ports = map[uint16][]string{}
	for p, protos := range e.PortProfiles {
		var port uint16
		if _, err := fmt.Sscanf(p, "%d", &port); err != nil || fmt.Sprint(port) != p {
			bad("EncryptedChannel.PortProfiles."+p, "%q is not a port number", p)
			continue
		}
		for _, pr := range protos {
			switch pr {
			case "tls", "quic", "ssh", "http", "dns", "opaque":
			default:
				if !oneWayProtocols[pr] {
					bad("EncryptedChannel.PortProfiles."+p, "%q: expected tls, quic, ssh, http, dns, opaque, syslog, netflow, ipfix, sflow or rtp", pr)
				}
			}
		}
		e.ports[port] = protos
	}
	for i, h := range e.AllowedMgmtHosts {
		if _, err := netip.ParsePrefix(h); err != nil {
			if _, err := netip.ParseAddr(h); err != nil && strings.ContainsAny(h, "/ ") {
				bad(fmt.Sprintf("EncryptedChannel.AllowedMgmtHosts[%d]", i), "%q: an address, a prefix or a host name", h)
			}
		}
	}
}

// encryptedChannel is T1573.001, Symmetric Cryptography (detection
// strategy DET0143): payload that reads as encrypted on a flow where no
// TLS, QUIC or SSH handshake explains it, from an internal host, over
// TrafficVolumeThreshold. The port's PortProfiles say what it should
// carry; a mismatch, a port with no profile, and TrafficAsymmetryRatio
// raise the severity. Public DoH resolvers and AllowedMgmtHosts are left
// out. The host variants (AN0400 Windows, AN0401 Linux, AN0402 macOS,
// AN0403 ESXi) add the process: outside AllowedCryptoProcesses, having
// loaded a module of CryptoLibs not in TrustedCryptoLibs within TimeWindow
// before the connection.
type encryptedChannel struct{}

func (encryptedChannel) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.EncryptedChannel
	if !f.Final || !v.origInside || f.Proto != 6 && f.Proto != 17 {
		return
	}
	if f.Handshake || f.App == "tls" || f.App == "quic" || f.App == "ssh" || f.App == "openvpn" || f.App == "wireguard" {
		return
	}
	// A one-way flow (payload in one direction only: a UDP stream, a TCP
	// upload the peer only acknowledges) is judged like a two-way one
	// (issue 15): TLS, QUIC and SSH handshakes show in either direction,
	// so the half that carried the payload holds its own. A half never
	// seen is another matter (asymmetric routing, a capture of one
	// direction): an originator with no packets was guessed from the
	// ports, and a TCP peer always acknowledges, so one with no packets
	// was not captured rather than silent.
	if f.OrigPkts == 0 || f.Proto == 6 && f.RespPkts == 0 {
		return
	}
	if v.totalOut+v.totalIn < uint64(c.TrafficVolumeThreshold) {
		return
	}
	oneWay := f.OrigBytes == 0 || f.RespBytes == 0
	if r := e.cfg.lists.doh(v.remote.Addr(), v.name); r != "" || inList(c.DoHResolvers, v.remote.Addr(), v.name) {
		return
	}
	if inList(c.AllowedMgmtHosts, v.remote.Addr(), v.name) || inList(c.AllowedMgmtHosts, v.inside.Addr(), "") {
		return
	}
	port := v.remote.Port()
	profile, hasProfile := c.ports[port]
	if contains(profile, "opaque") {
		return
	}
	if oneWay && (f.App == "dns" || framedOneWay(profile)) {
		// A protocol that is one-way by design and carries its own
		// framing or handshake, which inspection does not decode: DNS as
		// inspection read it; syslog, flow exports and RTP media on the
		// ports registered for them.
		return
	}
	hostVariant := v.proc != nil && !nameIn(v.proc.Image, c.AllowedCryptoProcesses)
	var loads []feed.Event
	if hostVariant && e.ev != nil {
		loads = cryptoLoads(e, c, v, f.Start)
	}
	hostVariant = hostVariant && len(loads) > 0

	threshold := c.PayloadEntropyThreshold
	if hostVariant {
		threshold = c.EntropyThreshold // the module load corroborates
	}
	dir := -1
	if f.Observed {
		for i := 0; i < 2; i++ {
			if f.Class[i] == entropy.Encrypted && f.N[i] >= c.MinSample && f.Bits[i] >= threshold {
				if dir < 0 || f.N[i] > f.N[dir] {
					dir = i
				}
			}
		}
		if dir < 0 {
			return
		}
	} else if !hostVariant || hasProfile {
		// Router flows carry no payload: only a crypto module load and a
		// port with no expected protocol make a case, a weak one.
		return
	}

	out, in := v.totalOut, v.totalIn
	r := ratio(out, in)
	// Nothing came back: infinitely asymmetric, whatever went out.
	asymmetric := c.TrafficAsymmetryRatio > 0 && (in == 0 && out > 0 || r >= c.TrafficAsymmetryRatio)
	mismatch := hasProfile && !contains(profile, f.App)
	a := e.alertFor(f, v, "DET0143", "T1573.001")
	a.Severity, a.Confidence = Low, "low"
	if mismatch || !hasProfile {
		a.Severity = Medium
	}
	if asymmetric && a.Severity == Medium {
		a.Severity = High
	}
	if f.Observed && f.N[dir] >= 1024 {
		a.Confidence = "medium"
	}
	what := "encrypted payload"
	switch {
	case f.App == "http":
		what = "encrypted bodies over plain HTTP"
	case f.App != "unknown" && f.App != "":
		what = "encrypted payload inside " + f.App
	}
	if oneWay {
		what = "one-way " + what
	}
	// The title says which way the encrypted bytes went: the side whose
	// payload read as encrypted, seen from the internal host (the
	// originator here). Router flows carry no payload to tell.
	verb, prep := "exchanged", "with"
	switch {
	case dir == 0:
		verb, prep = "sent", "to"
	case dir == 1:
		verb, prep = "received", "from"
	case oneWay && out > 0:
		verb, prep = "sent", "to"
	case oneWay:
		verb, prep = "received", "from"
	}
	where := fmt.Sprintf("%s port %d", strings.ToUpper(protoName(f.Proto)), port)
	switch {
	case mismatch:
		where += " (expected " + strings.Join(profile, " or ") + ")"
	case !hasProfile:
		where += " (no profile: a non-standard port)"
	}
	proc := "a host"
	if v.proc != nil {
		proc = baseName(v.proc.Image)
	}
	a.Title = fmt.Sprintf("%s %s %s with no TLS, QUIC or SSH handshake %s %s on %s", proc, verb, what, prep, v.destName(), where)
	if hostVariant {
		a.Analytic = hostAnalytic(v.proc.Image)
		a.Severity, a.Confidence = High, "high"
		if !f.Observed {
			a.Severity, a.Confidence = Medium, "low"
		}
		var libs []string
		for _, l := range loads {
			libs = append(libs, baseName(l.Target))
			a.Evidence.Events = append(a.Evidence.Events, fmt.Sprintf("%s %s module_load %s", l.Time.UTC().Format(time.RFC3339Nano), l.Feed, l.Target))
		}
		a.Title += ", after loading " + strings.Join(dedupe(libs), ", ")
		a.Evidence.Thresholds["TimeWindow"] = c.TimeWindow.String()
		a.Evidence.Thresholds["EntropyThreshold"] = c.EntropyThreshold
	} else {
		a.Evidence.Thresholds["PayloadEntropyThreshold"] = c.PayloadEntropyThreshold
	}
	m := a.Evidence.Measured
	if !hostVariant && v.proc != nil && e.ev != nil {
		// Why the host variant did not apply, said as it is: a process on
		// the allowed list was not looked up, which is not a load missing.
		if nameIn(v.proc.Image, c.AllowedCryptoProcesses) {
			m["host_variant"] = baseName(v.proc.Image) + " is on AllowedCryptoProcesses: its crypto module loads were not considered"
		} else {
			a.Missing = append(a.Missing, "crypto module load")
			m["host_variant"] = fmt.Sprintf("no untrusted crypto module load by %s within TimeWindow (%v) before the connection", baseName(v.proc.Image), c.TimeWindow)
		}
	}
	if f.Observed {
		side := [2]string{"orig", "resp"}
		for i := 0; i < 2; i++ {
			if f.N[i] > 0 {
				m["entropy_"+side[i]] = map[string]any{"bits": round3(f.Bits[i]), "n": f.N[i], "class": f.Class[i].String()}
			}
		}
	}
	m["app_proto"] = f.App
	m["handshake"] = false
	m["out_bytes"], m["in_bytes"], m["out_in_ratio"] = out, in, round3(r)
	if oneWay {
		// out/in has no value when nothing came in: null, as in the flow
		// record, and the flow is said to be one-way.
		m["one_way"] = true
		if in == 0 {
			m["out_in_ratio"] = nil
			m["asymmetry"] = "infinite: the peer sent no payload"
		}
	}
	if hasProfile {
		m["port_profile"] = profile
	}
	a.Evidence.Thresholds["TrafficVolumeThreshold"] = uint64(c.TrafficVolumeThreshold)
	a.Evidence.Thresholds["TrafficAsymmetryRatio"] = c.TrafficAsymmetryRatio
	a.Evidence.Thresholds["MinSample"] = c.MinSample
	a.DedupKey = strings.Join([]string{"T1573.001", v.hostIP(), procKey(v), v.remote.String()}, "|")
	e.emit(a)
}

// oneWayProtocols are the PortProfiles names of protocols that are one-way
// by design and carry their own framing or handshake, which inspection
// does not decode: syslog (RFC 5424 over UDP, TCP, TLS or DTLS), flow
// exports (NetFlow, IPFIX, sFlow) and RTP or SRTP media. A one-way flow to
// a port whose profile names one stays quiet.
var oneWayProtocols = map[string]bool{"syslog": true, "netflow": true, "ipfix": true, "sflow": true, "rtp": true}

// framedOneWay reports whether a port's profile names a one-way protocol.
func framedOneWay(profile []string) bool {
	for _, p := range profile {
		if oneWayProtocols[p] {
			return true
		}
	}
	return false
}

// cryptoLoads returns the process's loads of crypto modules within the
// window before the flow, on the feed's clock.
func cryptoLoads(e *Engine, c *EncryptedConfig, v *view, start time.Time) []feed.Event {
	at := start.Add(time.Duration(v.proc.SkewMS) * time.Millisecond)
	evs := e.ev.Query(v.proc.Host, at.Add(-c.TimeWindow.D()), at.Add(time.Second), v.proc.GUID, v.proc.PID, feed.KindModuleLoad)
	var out []feed.Event
	for _, ev := range evs {
		if nameIn(ev.Target, c.CryptoLibs) && !nameIn(ev.Target, c.TrustedCryptoLibs) && !pathIn(ev.Target, c.TrustedCryptoLibs) {
			out = append(out, ev)
		}
	}
	return out
}

// hostAnalytic is DET0143's analytic for the platform an image path
// belongs to.
func hostAnalytic(image string) string {
	b := baseName(image)
	switch {
	case strings.Contains(image, `\`) || strings.HasSuffix(b, ".exe"):
		return "AN0400"
	case b == "hostd" || b == "vpxa" || b == "vmx" || strings.HasPrefix(image, "/bin/hostd") || strings.HasPrefix(image, "/usr/lib/vmware/"):
		return "AN0403"
	case strings.HasPrefix(image, "/Applications/") || strings.HasPrefix(image, "/System/") || strings.HasPrefix(image, "/Library/") ||
		strings.HasPrefix(image, "/Users/"):
		return "AN0402"
	}
	return "AN0401"
}

// inList reports whether an address or a server name is among entries
// that are addresses, prefixes or names (a leading dot: subdomains); the
// name is in lower case.
func inList(entries []string, a netip.Addr, name string) bool {
	a = a.Unmap()
	for _, s := range entries {
		if p, err := netip.ParsePrefix(s); err == nil {
			if a.IsValid() && p.Contains(a) {
				return true
			}
			continue
		}
		if x, err := netip.ParseAddr(s); err == nil {
			if a == x.Unmap() {
				return true
			}
			continue
		}
		if name != "" && underDomain(name, strings.ToLower(s)) {
			return true
		}
	}
	return false
}

// pathIn matches whole paths (globs allowed) in a list.
func pathIn(p string, list []string) bool {
	for _, x := range list {
		if strings.ContainsAny(x, `/\`) {
			if ok, _ := path.Match(strings.ToLower(x), strings.ToLower(p)); ok {
				return true
			}
		}
	}
	return false
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return fmt.Sprint(p)
}

func round3(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}
