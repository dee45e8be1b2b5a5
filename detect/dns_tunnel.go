package detect

import (
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/net/publicsuffix"

	"github.com/outflow-sensor/outflow/flows"
)

// DNSTunnelConfig is the DNS-tunnel analytic (T1071.004, Application Layer
// Protocol: DNS; T1048.003, Exfiltration Over Unencrypted Non-C2
// Protocol): per internal host and registered domain, over TimeWindow,
// the unique names asked, how long and how random their subdomain parts
// are, the bytes the new names carry, and the bytes of the answers that
// can carry data (TXT, NULL, CNAME, MX, other non-address types).
//
// The anchors users compare with: RITA scores "C2 over DNS" by unique
// subdomains of a domain (default-config.hjson: c2_subdomain_threshold
// 100, the scores' base); Zeek's AnomalousDNS package counts unique
// queries per domain (8 an hour, 12 for resolvers, with a whitelist it
// says CDNs make necessary), flags queries over 90 characters and the
// NULL type iodine uses. Counting alone is what they warn CDNs set off, so
// here the count only opens the question: the names must also be long
// and random, or carry data, before the alert rises.
type DNSTunnelConfig struct {
	Enabled bool `yaml:"Enabled"`
	// TimeWindow is how long a host's counts under one domain run before
	// they start again.
	TimeWindow Duration `yaml:"TimeWindow"`
	// UniqueSubdomainThreshold: unique names under one registered domain
	// asked by one host in the window, below which nothing is judged.
	UniqueSubdomainThreshold int `yaml:"UniqueSubdomainThreshold"`
	// SubdomainLengthThreshold: mean length of the names' subdomain part
	// (what is left of the registered domain), in bytes.
	SubdomainLengthThreshold float64 `yaml:"SubdomainLengthThreshold"`
	// EntropyThreshold: mean Shannon entropy of the subdomain parts, bits
	// per character, dots left out.
	EntropyThreshold float64 `yaml:"EntropyThreshold"`
	// QueryBytesThreshold: subdomain bytes of the new names in the window,
	// what queries can carry upstream.
	QueryBytesThreshold Bytes `yaml:"QueryBytesThreshold"`
	// DataAnswerBytesThreshold: RDATA bytes of TXT, NULL, CNAME, MX and
	// other non-address answers in the window, what answers can carry down.
	DataAnswerBytesThreshold Bytes `yaml:"DataAnswerBytesThreshold"`
	// Resolvers are internal recursive resolvers (addresses or prefixes):
	// an alert on one says it forwards for its clients. Internal hosts
	// seen answering DNS to other internal hosts count as resolvers too.
	Resolvers []string `yaml:"Resolvers"`
	// AllowedDomains are registered domains whose names are data by design
	// (reputation and block-list lookups); they are not judged.
	AllowedDomains []string `yaml:"AllowedDomains"`
	// ProcessWait is how long an alert waits for the record of a flow
	// that carried the names, which names the process; a long flow's
	// first record comes at the sensor's active timeout (30 minutes by
	// default). Past it, the alert goes out without the process.
	ProcessWait Duration `yaml:"ProcessWait"`
	// MaxKeys bounds the (host, domain) windows held at once; a new key
	// beyond it is dropped and counted (Stats.DNSKeysDropped).
	MaxKeys int `yaml:"MaxKeys"`

	resolvers []netip.Prefix
	allowed   map[string]bool
}

// compile checks the section and builds its lookups; bad reports a
// problem at a key, as Config.compile does.
func (c *DNSTunnelConfig) compile(bad func(key, format string, a ...any)) {
	if c.TimeWindow <= 0 {
		bad("DNSTunnel.TimeWindow", "must be positive")
	}
	if c.UniqueSubdomainThreshold < 1 {
		bad("DNSTunnel.UniqueSubdomainThreshold", "at least 1")
	}
	if c.SubdomainLengthThreshold < 0 || c.SubdomainLengthThreshold > 253 {
		bad("DNSTunnel.SubdomainLengthThreshold", "%v: bytes, between 0 and 253 (the longest name)", c.SubdomainLengthThreshold)
	}
	if c.EntropyThreshold < 0 || c.EntropyThreshold > 8 {
		bad("DNSTunnel.EntropyThreshold", "%v: bits per character, between 0 and 8", c.EntropyThreshold)
	}
	if c.ProcessWait < 0 {
		bad("DNSTunnel.ProcessWait", "must not be negative")
	}
	if c.MaxKeys < 1 {
		bad("DNSTunnel.MaxKeys", "at least 1")
	}
	c.resolvers = nil
	for i, s := range c.Resolvers {
		p, ok := parseNet(s)
		if !ok {
			bad(fmt.Sprintf("DNSTunnel.Resolvers[%d]", i), "%q is neither an address nor a CIDR prefix", s)
			continue
		}
		c.resolvers = append(c.resolvers, p)
	}
	c.allowed = map[string]bool{}
	for i, d := range c.AllowedDomains {
		d = strings.ToLower(strings.Trim(strings.TrimSpace(d), "."))
		if d == "" || strings.ContainsAny(d, " /:") {
			bad(fmt.Sprintf("DNSTunnel.AllowedDomains[%d]", i), "%q is not a domain", c.AllowedDomains[i])
			continue
		}
		c.allowed[d] = true
	}
}

// dnsCounterBits sizes each window's linear counter (Whang et al., "A
// linear-time probabilistic counting algorithm", 1990): 4,096 bits, 512
// bytes, count unique names within a few percent up to some 10,000,
// well past every threshold, in a bounded space per key.
const dnsCounterBits = 4096

// dnsTuples is how many of a window's flows it remembers to find the
// one whose record names the process.
const dnsTuples = 16

// dnsKey is one internal host and registered domain.
type dnsKey struct {
	host   netip.Addr
	domain string
}

// dnsWindow is a key's counts in its window.
type dnsWindow struct {
	domain      string // the key's own copy: the one looked up with is borrowed
	start, last int64
	queries     uint64
	bits        [dnsCounterBits / 64]uint64
	set         int     // bits set
	newBytes    uint64  // subdomain bytes of the names first seen
	lenSum      uint64  // subdomain bytes over all queries
	entSum      float64 // subdomain entropy over all queries
	answers     [flows.NumDNSAnswerKinds]uint64
	answerBytes [flows.NumDNSAnswerKinds]uint64
	server      netip.AddrPort // the latest server asked
	tuples      [dnsTuples]uint64
	nTuples     int
	// state: 0 judging, 1 an alert waits for a flow record (due is when
	// it stops waiting), 2 alerted in this window.
	state uint8
	due   int64
}

// dnsTunnel is the analytic's state in the engine, outside the persisted
// state: a window lasts minutes, and a restart only starts them again.
type dnsTunnel struct {
	seed    maphash.Seed
	windows map[dnsKey]*dnsWindow
	pending []dnsKey
	served  map[netip.Addr]bool // internal hosts seen answering internal clients
	swept   int64               // packet time of the last sweep of windows for room
}

func newDNSTunnel() *dnsTunnel {
	return &dnsTunnel{seed: maphash.MakeSeed(), windows: map[dnsKey]*dnsWindow{}, served: map[netip.Addr]bool{}}
}

// maxServed bounds the set of internal hosts seen answering DNS.
const maxServed = 4096

// DNS runs the DNS-tunnel analytic over one DNS message (the sensor's
// flow tables hand it every message of every DNS flow). m is borrowed for
// the call.
func (e *Engine) DNS(m *flows.DNSMessage) {
	if m.Server.Port() != 53 {
		return // mDNS and LLMNR name local things, not a domain's; no lock for them
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &e.cfg.DNSTunnel
	if !c.Enabled {
		return
	}
	e.Stats.DNSMessages++
	t := time.Unix(0, m.TS)
	e.tick(t)
	d := e.dns
	client, server := m.Client.Addr().Unmap(), m.Server.Addr().Unmap()
	if !e.cfg.Home(client) {
		return
	}
	if e.cfg.Home(server) && m.Response && !d.served[server] && len(d.served) < maxServed {
		d.served[server] = true
	}
	if m.QType == 12 || len(m.Name) == 0 {
		return // PTR: reverse names are addresses, as AnomalousDNS leaves them
	}
	// The name is borrowed: looked up without a copy, copied only to
	// become a new key. publicsuffix holds nothing of it.
	name := unsafe.String(&m.Name[0], len(m.Name))
	if strings.HasSuffix(name, ".arpa") {
		return
	}
	domain, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil || c.allowed[domain] {
		return
	}
	k := dnsKey{host: client, domain: domain}
	w := d.windows[k]
	if w == nil {
		if len(d.windows) >= c.MaxKeys {
			// A sweep walks every window: at most one per eighth of a
			// window, not one per new domain of a full table.
			if m.TS-d.swept >= int64(c.TimeWindow)/8 {
				d.swept = m.TS
				d.expire(e, m.TS)
			}
			if len(d.windows) >= c.MaxKeys {
				e.Stats.DNSKeysDropped++
				return
			}
		}
		k.domain = strings.Clone(domain)
		w = &dnsWindow{domain: k.domain, start: m.TS}
		d.windows[k] = w
	} else {
		k.domain = w.domain
		if m.TS-w.start > int64(c.TimeWindow) {
			if w.state == 1 {
				d.fire(e, k, w, nil, nil) // its flow's record did not come in time
			}
			*w = dnsWindow{domain: k.domain, start: m.TS}
		}
	}
	if m.TS > w.last {
		w.last = m.TS
	}
	sub := name[:max(len(name)-len(domain)-1, 0)]
	if m.Response {
		for i := range m.Answers {
			w.answers[i] += uint64(m.Answers[i])
			w.answerBytes[i] += uint64(m.AnswerBytes[i])
		}
	} else {
		w.queries++
		w.lenSum += uint64(len(sub))
		w.entSum += labelEntropy(sub)
		h := maphash.String(d.seed, name) % dnsCounterBits
		if bit := uint64(1) << (h % 64); w.bits[h/64]&bit == 0 {
			w.bits[h/64] |= bit
			w.set++
			w.newBytes += uint64(len(sub))
		}
	}
	w.server = netip.AddrPortFrom(server, m.Server.Port())
	if w.state == 0 {
		w.addTuple(d.tuple(m.Client, m.Server))
		if dnsSeverity(c, w) != "" {
			w.state, w.due = 1, m.TS+int64(c.ProcessWait)
			d.pending = append(d.pending, k)
		}
	}
	d.expirePending(e, m.TS)
}

// tuple hashes a flow's ends, the client's port and the server.
func (d *dnsTunnel) tuple(client, server netip.AddrPort) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	a, s := client.Addr().Unmap().As16(), server.Addr().Unmap().As16()
	h.Write(a[:])
	h.Write(s[:])
	var p [4]byte
	p[0], p[1] = byte(client.Port()>>8), byte(client.Port())
	p[2], p[3] = byte(server.Port()>>8), byte(server.Port())
	h.Write(p[:])
	return h.Sum64()
}

// addTuple remembers a flow of the window, the latest dnsTuples of them.
func (w *dnsWindow) addTuple(t uint64) {
	n := min(w.nTuples, dnsTuples)
	for _, x := range w.tuples[:n] {
		if x == t {
			return
		}
	}
	w.tuples[w.nTuples%dnsTuples] = t
	w.nTuples++
}

func (w *dnsWindow) has(t uint64) bool {
	for _, x := range w.tuples[:min(w.nTuples, dnsTuples)] {
		if x == t {
			return true
		}
	}
	return false
}

// unique estimates the distinct names from the counter's empty bits.
func (w *dnsWindow) unique() float64 {
	zero := dnsCounterBits - w.set
	if zero == 0 {
		zero = 1 // saturated: the estimate's ceiling
	}
	return math.Round(dnsCounterBits * math.Log(float64(dnsCounterBits)/float64(zero)))
}

func (w *dnsWindow) dataAnswers() (n, b uint64) {
	for k := flows.DNSAnswerCNAME; k < flows.NumDNSAnswerKinds; k++ {
		n += w.answers[k]
		b += w.answerBytes[k]
	}
	return n, b
}

// dnsSeverity judges a window: nothing below UniqueSubdomainThreshold or
// when the names are ordinary, however many; low for long names that do
// not look random; medium for long random names, or for data carried
// beyond a threshold; high for both.
func dnsSeverity(c *DNSTunnelConfig, w *dnsWindow) string {
	if w.queries == 0 || w.unique() < float64(c.UniqueSubdomainThreshold) {
		return ""
	}
	meanLen := float64(w.lenSum) / float64(w.queries)
	long := meanLen >= c.SubdomainLengthThreshold
	random := long && w.entSum/float64(w.queries) >= c.EntropyThreshold
	_, ab := w.dataAnswers()
	volume := w.newBytes >= uint64(c.QueryBytesThreshold) || ab >= uint64(c.DataAnswerBytesThreshold)
	switch {
	case random && volume:
		return High
	case random, volume:
		return Medium
	case long:
		return Low
	}
	return ""
}

// labelEntropy is the Shannon entropy of s's bytes, dots left out, in
// bits per byte.
func labelEntropy(s string) float64 {
	var counts [256]uint16
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '.' {
			counts[s[i]]++
			n++
		}
	}
	if n == 0 {
		return 0
	}
	h := 0.0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' || counts[c] == 0 {
			continue
		}
		p := float64(counts[c]) / float64(n)
		h -= p * math.Log2(p)
		counts[c] = 0 // each byte value once
	}
	return h
}

// dnsTunnelFlow is the analytic's part in the flow loop: a UDP flow that
// carried the names of a window waiting to alert names its process.
type dnsTunnelFlow struct{}

func (dnsTunnelFlow) flow(e *Engine, f *Flow, v *view) {
	d := e.dns
	if len(d.pending) == 0 || f.Proto != 17 || !v.origInside {
		return
	}
	t := d.tuple(f.Orig, f.Resp)
	for i := 0; i < len(d.pending); i++ {
		k := d.pending[i]
		w := d.windows[k]
		if w == nil || w.state != 1 || k.host != v.inside.Addr() || !w.has(t) {
			continue
		}
		d.fire(e, k, w, f, v)
		i--
	}
	d.expirePending(e, f.End.UnixNano())
}

// expirePending sends the alerts whose flow record did not come within
// ProcessWait.
func (d *dnsTunnel) expirePending(e *Engine, now int64) {
	for i := 0; i < len(d.pending); i++ {
		if w := d.windows[d.pending[i]]; w == nil || w.state != 1 || now >= w.due {
			k := d.pending[i]
			if w != nil && w.state == 1 {
				d.fire(e, k, w, nil, nil)
			} else {
				d.drop(k)
			}
			i--
		}
	}
}

// drop takes k off the pending list.
func (d *dnsTunnel) drop(k dnsKey) {
	for i, x := range d.pending {
		if x == k {
			d.pending = append(d.pending[:i], d.pending[i+1:]...)
			return
		}
	}
}

// expire forgets windows past their end, to make room for new keys.
func (d *dnsTunnel) expire(e *Engine, now int64) {
	span := int64(e.cfg.DNSTunnel.TimeWindow)
	for k, w := range d.windows {
		if now-w.start > span && w.state != 1 {
			delete(d.windows, k)
		}
	}
}

// close sends the alerts still waiting: a replay's end.
func (d *dnsTunnel) close(e *Engine) {
	for len(d.pending) > 0 {
		k := d.pending[0]
		if w := d.windows[k]; w != nil && w.state == 1 {
			d.fire(e, k, w, nil, nil)
		} else {
			d.drop(k)
		}
	}
}

// fire sends the window's alert, with the process and Community ID of f
// when a flow record that carried its names came (nil: none did).
func (d *dnsTunnel) fire(e *Engine, k dnsKey, w *dnsWindow, f *Flow, v *view) {
	d.drop(k)
	w.state = 2
	c := &e.cfg.DNSTunnel
	sev := dnsSeverity(c, w)
	if sev == "" {
		return
	}
	var a *Alert
	if f != nil {
		a = e.alertFor(f, v, "dns_tunnel", "T1071.004")
		a.TS = time.Unix(0, w.last).UTC()
	} else {
		a = &Alert{TS: time.Unix(0, w.last).UTC(), Analytic: "dns_tunnel", Technique: "T1071.004",
			Host:     &AlertHost{IP: k.host.String(), PeerGroup: e.cfg.PeerGroup(k.host)},
			Evidence: Evidence{Measured: map[string]any{}, Thresholds: map[string]any{}, Baseline: map[string]any{}},
			Missing:  []string{"process"}}
	}
	a.Destination = &Destination{IP: w.server.Addr().String(), Port: w.server.Port(), Name: k.domain}
	a.Severity, a.Confidence = sev, Medium
	if sev == High {
		a.Confidence = High
	}
	resolver := d.served[k.host]
	for _, p := range c.resolvers {
		resolver = resolver || p.Contains(k.host)
	}
	who := k.host.String()
	if a.Process != nil {
		who = a.Process.Name + " on " + who
	}
	if resolver {
		a.Title = fmt.Sprintf("DNS tunnel suspected under %s: resolver %s forwards the names for its clients; the tunnel's end is one of them", k.domain, k.host)
	} else {
		a.Title = fmt.Sprintf("DNS tunnel suspected: %s asks %s for long, unique names carrying data", who, k.domain)
	}
	n, ab := w.dataAnswers()
	ms := a.Evidence.Measured
	ms["also_technique"] = "T1048.003"
	ms["queries"] = w.queries
	ms["unique_subdomains"] = w.unique()
	ms["mean_subdomain_length"] = round2(float64(w.lenSum) / float64(max(w.queries, 1)))
	ms["mean_label_entropy"] = round2(w.entSum / float64(max(w.queries, 1)))
	// Names the counter had not seen: a lower bound, collisions in the
	// counter hide some; the total counts every query, repeats included.
	ms["query_name_bytes"] = w.newBytes
	ms["query_name_bytes_total"] = w.lenSum
	ms["data_answers"] = n
	ms["data_answer_bytes"] = ab
	types := map[string]uint64{}
	for i, name := range [...]string{"A/AAAA", "CNAME", "TXT", "NULL", "MX", "other"} {
		if w.answers[i] > 0 {
			types[name] = w.answerBytes[i]
		}
	}
	ms["answer_bytes_by_type"] = types
	ms["window_seconds"] = round2(float64(w.last-w.start) / 1e9)
	if resolver {
		ms["resolver_forwarding"] = true
	}
	th := a.Evidence.Thresholds
	th["UniqueSubdomainThreshold"] = c.UniqueSubdomainThreshold
	th["SubdomainLengthThreshold"] = c.SubdomainLengthThreshold
	th["EntropyThreshold"] = c.EntropyThreshold
	th["QueryBytesThreshold"] = uint64(c.QueryBytesThreshold)
	th["DataAnswerBytesThreshold"] = uint64(c.DataAnswerBytesThreshold)
	th["TimeWindow"] = c.TimeWindow.D().String()
	a.DedupKey = "dns_tunnel|" + k.host.String() + "|" + k.domain
	e.emit(a)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
