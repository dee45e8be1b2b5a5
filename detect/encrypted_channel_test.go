package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/entropy"
)

// cipher is a flow from an internal host whose originator (o) or
// responder (r) payload reads as encrypted.
func cipher(proto uint8, dport uint16, out, in uint64, encOrig, encResp bool) *Flow {
	f := tcp(day0, "10.0.0.5", "203.0.113.9", dport, out, in)
	f.Proto = proto
	if in == 0 && proto == 17 {
		f.RespPkts = 0
	}
	for i, enc := range []bool{encOrig, encResp} {
		if enc {
			f.Class[i], f.Bits[i], f.N[i] = entropy.Encrypted, 7.96, 4096
		}
	}
	return f
}

// TestEncryptedChannelOneWay: a flow with payload one way only is judged
// like a two-way one; nothing back is infinite asymmetry, said as such
// (no division by zero); one-way protocols that carry their own framing
// stay quiet on their registered ports, DNS as inspection read it; a half
// never captured is not judged.
func TestEncryptedChannelOneWay(t *testing.T) {
	for _, c := range []struct {
		name string
		f    *Flow
		want string // severity, "" quiet
	}{
		{"UDP, no profile", cipher(17, 40000, 64<<10, 0, true, false), High},
		{"TCP, no profile", cipher(6, 9443, 200<<10, 0, true, false), High},
		{"UDP to 443, no QUIC", cipher(17, 443, 64<<10, 0, true, false), High},
		{"under the volume threshold", cipher(17, 40000, 3000, 0, true, false), ""},
		{"RTP port (SRTP media)", cipher(17, 5004, 64<<10, 0, true, false), ""},
		{"syslog port", cipher(17, 514, 64<<10, 0, true, false), ""},
		{"IPFIX port", cipher(17, 4739, 64<<10, 0, true, false), ""},
		{"sFlow port", cipher(17, 6343, 64<<10, 0, true, false), ""},
		{"an inbound one-way stream", cipher(6, 40000, 0, 64<<10, false, true), Medium},
		{"a responder never captured (TCP)", func() *Flow { f := cipher(6, 9443, 64<<10, 0, true, false); f.RespPkts = 0; return f }(), ""},
		{"an originator never captured", func() *Flow { f := cipher(17, 40000, 0, 64<<10, false, true); f.OrigPkts = 0; return f }(), ""},
	} {
		e, col := newEngine(t, nil, nil)
		e.Flow(c.f)
		a := col.by("DET0143")
		if c.want == "" {
			if len(col.alerts) != 0 {
				t.Errorf("%s: %s %s", c.name, col.alerts[0].Severity, col.alerts[0].Title)
			}
			continue
		}
		if len(a) != 1 || len(col.alerts) != 1 || a[0].Severity != c.want {
			t.Errorf("%s: %d alerts %+v, want one at %s", c.name, len(col.alerts), col.alerts, c.want)
			continue
		}
		m := a[0].Evidence.Measured
		if m["one_way"] != true || !strings.Contains(a[0].Title, "one-way") {
			t.Errorf("%s: not said one-way: %q %v", c.name, a[0].Title, m)
		}
		if c.f.RespBytes == 0 && (m["out_in_ratio"] != nil || !strings.HasPrefix(m["asymmetry"].(string), "infinite")) {
			t.Errorf("%s: out_in_ratio %v, asymmetry %v", c.name, m["out_in_ratio"], m["asymmetry"])
		}
		if b := a[0].AppendJSON(nil); !strings.Contains(string(b), `"out_in_ratio":null`) && c.f.RespBytes == 0 {
			t.Errorf("%s: %s", c.name, b)
		}
	}
	// DNS as inspection read it stays quiet one way; on port 53 an
	// unknown protocol does not.
	e, col := newEngine(t, nil, nil)
	f := cipher(17, 53, 64<<10, 0, true, false)
	f.App = "dns"
	e.Flow(f)
	g := cipher(17, 53, 64<<10, 0, true, false)
	g.CommunityID = CIDOf([]byte("other"))
	e.Flow(g)
	if len(col.alerts) != 1 || col.alerts[0].Severity != High || !strings.Contains(col.alerts[0].Title, "(expected dns)") {
		t.Fatalf("DNS: %+v", col.alerts)
	}
}

// TestEncryptedChannelTitleDirection: the title says which way the
// encrypted bytes went. A download of random bytes over plain HTTP is
// "received ... from", an upload "sent ... to".
func TestEncryptedChannelTitleDirection(t *testing.T) {
	down := cipher(6, 80, 300, 2<<20, false, true)
	down.App = "http"
	up := cipher(6, 80, 2<<20, 300, true, false)
	up.App, up.CommunityID = "http", CIDOf([]byte("up"))
	for f, want := range map[*Flow]string{
		down: "a host received encrypted bodies over plain HTTP with no TLS, QUIC or SSH handshake from 203.0.113.9",
		up:   "a host sent encrypted bodies over plain HTTP with no TLS, QUIC or SSH handshake to 203.0.113.9",
	} {
		e, col := newEngine(t, nil, nil)
		e.Flow(f)
		if len(col.alerts) != 1 || !strings.HasPrefix(col.alerts[0].Title, want) {
			t.Errorf("%d alerts %+v, want one titled %q", len(col.alerts), col.alerts, want)
		}
	}
}

// TestEncryptedChannelAllowedProcessEvidence: an allowed crypto process
// (openvpn) whose libcrypto load the host events hold is not told as
// missing that load: the alert says the process is on the allowed list. A
// process that loaded nothing is missing the load.
func TestEncryptedChannelAllowedProcessEvidence(t *testing.T) {
	ev := events{{Kind: feed.KindModuleLoad, Host: "ws1", PID: 4242, Time: day0.Add(-30 * time.Second),
		Target: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", Feed: "test"}}
	e, col := newEngine(t, nil, ev)
	f := cipher(6, 4443, 200<<10, 3000, true, false)
	f.OrigProc = proc("/usr/sbin/openvpn", "openvpn --config client.conf")
	e.Flow(f)
	if len(col.alerts) != 1 {
		t.Fatalf("%d alerts", len(col.alerts))
	}
	a := col.alerts[0]
	if a.Analytic != "DET0143" || contains(a.Missing, "crypto module load") ||
		a.Evidence.Measured["host_variant"] != "openvpn is on AllowedCryptoProcesses: its crypto module loads were not considered" {
		t.Errorf("allowed: %s missing %v measured %v", a.Analytic, a.Missing, a.Evidence.Measured)
	}
	// Not allowed, nothing loaded: the load is missing, and said why.
	e, col = newEngine(t, nil, events{})
	f.OrigProc = proc("/usr/local/bin/agent", "agent")
	e.Flow(f)
	a = col.alerts[0]
	if !contains(a.Missing, "crypto module load") || !strings.HasPrefix(a.Evidence.Measured["host_variant"].(string), "no untrusted crypto module load by agent") {
		t.Errorf("not allowed: missing %v measured %v", a.Missing, a.Evidence.Measured)
	}
}
