package detect

import (
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/flows"
)

// dnsFeed hands the engine a query and its answer, as the flow tables do.
func dnsFeed(e *Engine, ts time.Time, client, server netip.AddrPort, name string, qtype uint16, ans flows.DNSAnswerKind, ansBytes uint32) {
	m := flows.DNSMessage{TS: ts.UnixNano(), Client: client, Server: server, QType: qtype, Name: []byte(name)}
	e.DNS(&m)
	m.Response = true
	m.Answers[ans], m.AnswerBytes[ans] = 1, ansBytes
	e.DNS(&m)
}

// cdnNames are the CDN names of the shared captures' DNS (Zeek, nDPI,
// Suricata, Arkime traces), and more of each shape: CloudFront's d and 13
// base32 characters, Akamai's aNNNN.gN / dscX, Azure Traffic Manager's.
func cdnNames(rnd *rand.Rand) []string {
	names := []string{"a1867.g2.akamai.net", "a1952.dscq.akamai.net", "d2h5okjz9875in.cloudfront.net",
		"dl-obs.official.line.naver.jp.edgesuite.net", "identrust.edgesuite.net", "jsdelivr.map.fastly.net",
		"global.asimov.events.data.trafficmanager.net", "tm-prod-wd-csp-edge.trafficmanager.net",
		"au-bg-shim.trafficmanager.net", "ec2-18-196-145-224.eu-central-1.compute.amazonaws.com"}
	const b32 = "abcdefghijklmnopqrstuvwxyz234567"
	for i := 0; i < 300; i++ {
		var d [13]byte
		for j := range d {
			d[j] = b32[rnd.Intn(len(b32))]
		}
		names = append(names, "d"+string(d[:])+".cloudfront.net",
			fmt.Sprintf("a%d.dsc%c.akamai.net", rnd.Intn(10000), 'a'+rnd.Intn(26)),
			fmt.Sprintf("ec2-%d-%d-%d-%d.eu-central-1.compute.amazonaws.com", rnd.Intn(256), rnd.Intn(256), rnd.Intn(256), rnd.Intn(256)))
	}
	return names
}

// TestDNSTunnelCDNQuiet: a host that resolves a thousand CDN names in a
// few minutes, each three times, with CNAME answers, raises nothing.
func TestDNSTunnelCDNQuiet(t *testing.T) {
	var alerts []*Alert
	e := New(Compiled(), NewState(32<<20), nil, func(a *Alert) { alerts = append(alerts, a) })
	client, server := netip.MustParseAddrPort("10.1.2.3:40000"), netip.MustParseAddrPort("10.1.0.53:53")
	rnd := rand.New(rand.NewSource(1))
	ts := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	names := cdnNames(rnd)
	for r := 0; r < 3; r++ {
		for _, n := range names {
			ts = ts.Add(50 * time.Millisecond)
			dnsFeed(e, ts, client, server, n, 1, flows.DNSAnswerCNAME, 40)
		}
	}
	e.Close()
	if len(alerts) > 0 {
		t.Fatalf("%d alerts: %s", len(alerts), alerts[0].Title)
	}
	if e.Stats.DNSMessages != uint64(6*len(names)) {
		t.Fatalf("%d messages judged, %d fed", e.Stats.DNSMessages, 6*len(names))
	}
}

// tunnelNames are names as a base32 tunnel writes them: 3 labels of 60
// random characters under t.example-tunnel.net.
func tunnelNames(rnd *rand.Rand, n int) []string {
	const b32 = "abcdefghijklmnopqrstuvwxyz234567"
	var out []string
	for i := 0; i < n; i++ {
		var sb strings.Builder
		for l := 0; l < 3; l++ {
			for j := 0; j < 60; j++ {
				sb.WriteByte(b32[rnd.Intn(len(b32))])
			}
			sb.WriteByte('.')
		}
		out = append(out, sb.String()+"t.example-tunnel.net")
	}
	return out
}

// TestDNSTunnelResolver: a resolver forwarding a client's tunnel is named
// as a resolver, not blamed; the client behind it is alerted on as itself.
func TestDNSTunnelResolver(t *testing.T) {
	var alerts []*Alert
	e := New(Compiled(), NewState(32<<20), nil, func(a *Alert) { alerts = append(alerts, a) })
	client, resolver := netip.MustParseAddrPort("10.1.2.3:40000"), netip.MustParseAddrPort("10.1.0.53:53")
	upstream := netip.MustParseAddrPort("203.0.113.1:53")
	ts := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, n := range tunnelNames(rand.New(rand.NewSource(2)), 500) {
		ts = ts.Add(10 * time.Millisecond)
		dnsFeed(e, ts, client, resolver, n, 16, flows.DNSAnswerTXT, 200)
		dnsFeed(e, ts, netip.AddrPortFrom(resolver.Addr(), 33000), upstream, n, 16, flows.DNSAnswerTXT, 200)
	}
	e.Close()
	if len(alerts) != 2 {
		t.Fatalf("%d alerts, want the client's and the resolver's", len(alerts))
	}
	for _, a := range alerts {
		fwd := a.Evidence.Measured["resolver_forwarding"] == true
		if a.Severity != High || a.Destination.Name != "example-tunnel.net" || fwd != (a.Host.IP == "10.1.0.53") {
			t.Errorf("%s %s %s forwarding %v: %s", a.Host.IP, a.Severity, a.Destination.Name, fwd, a.Title)
		}
		if fwd && !strings.Contains(a.Title, "resolver 10.1.0.53 forwards") {
			t.Errorf("title %q", a.Title)
		}
	}
}

// TestDNSTunnelSeverity: the same names rate by what they carry: long
// random names alone are medium, with data high; long names of few
// characters low. (English reads near 4.1 bits a letter, above the
// threshold: long English names rate as random ones do.)
func TestDNSTunnelSeverity(t *testing.T) {
	c := &Compiled().DNSTunnel
	w := &dnsWindow{}
	add := func(sub string, n int) {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("%s%d.example.net", sub, i)
			w.queries++
			w.lenSum += uint64(len(name) - len("example.net") - 1)
			w.entSum += labelEntropy(name[:len(name)-len("example.net")-1])
			h := uint64(i*2654435761) % dnsCounterBits
			if w.bits[h/64]&(1<<(h%64)) == 0 {
				w.bits[h/64] |= 1 << (h % 64)
				w.set++
			}
		}
	}
	add("node-0000-0000-0000-0000-0000-0000-0000-0000-", 150) // long, low entropy
	if s := dnsSeverity(c, w); s != Low {
		t.Fatalf("long words: %q", s)
	}
	*w = dnsWindow{}
	add("k7q2x9m4v8b3n6c1z5l0p2r7t4y9w3e8u6j1h5g9f3d7s", 150) // entropy over 4 bits
	if s := dnsSeverity(c, w); s != Medium {
		t.Fatalf("random, little data: %q (entropy %v)", s, w.entSum/float64(w.queries))
	}
	w.answerBytes[flows.DNSAnswerNULL] = 100 << 10
	if s := dnsSeverity(c, w); s != High {
		t.Fatalf("random, data in NULL answers: %q", s)
	}
}

// TestDNSTunnelConfigErrors: every bad key of the section is named.
func TestDNSTunnelConfigErrors(t *testing.T) {
	_, err := ParseConfig("outflow.yaml", []byte(`DNSTunnel:
  TimeWindow: 0s
  UniqueSubdomainThreshold: 0
  EntropyThreshold: 9
  MaxKeys: 0
  Resolvers: [not-an-address]
  AllowedDomains: ["a b"]
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, k := range []string{"DNSTunnel.TimeWindow", "DNSTunnel.UniqueSubdomainThreshold", "DNSTunnel.EntropyThreshold",
		"DNSTunnel.MaxKeys", "DNSTunnel.Resolvers[0]", "DNSTunnel.AllowedDomains[0]"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("%s not named in %v", k, err)
		}
	}
}
