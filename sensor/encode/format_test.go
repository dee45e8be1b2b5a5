package encode

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
)

// rich is sample() with everything a record can carry: a TLS handshake,
// an HTTP request, a DNS answer, entropy, both processes and VLAN tags.
func rich() *record.Flow {
	f := sample()
	f.Resp = netip.MustParseAddrPort("198.51.100.10:443")
	f.VLAN, f.InnerVLAN = 100, 200
	f.Inspection = &flows.Inspection{App: flows.AppTLS,
		TLS: &flows.TLSInfo{ClientHello: true, ServerHello: true, Encrypted: [2]bool{true, true}, Version: 0x0304, Cipher: 0x1301,
			SNI: "upload.example.test", ALPN: []string{"h2", "http/1.1"}, JA3: "e7d705a3286e19ea42f587b344ee6865",
			JA3String: "771,4865,0-10,29,0", JA3S: "f4febc55ea12b31ae17cfb7e614afda8", JA3SStr: "771,4865,43-51", JA4: "t13d1516h2_8daaf6152771_b0da82dd1658"},
		HTTP: &flows.HTTPInfo{Method: "PUT", Host: "upload.example.test:8443", ContentLength: -1},
		DNS:  &flows.DNSInfo{Query: "upload.example.test", QType: 28, Response: true, RCode: 3, Answers: []string{"2001:db8::1"}},
	}
	f.Inspection.Entropy[0] = flows.EntropySample{Bits: 7.9991, N: 4096, Chi2: 250.5}
	f.HTTPBody = 3145728
	f.OrigProc = &process.Attribution{Process: process.Process{Host: "lab-client", PID: 4242, GUID: "{0000-guid}",
		Start: time.Date(2026, 11, 22, 11, 33, 18, 0, time.UTC), Image: "/usr/bin/curl", Command: "curl -T docs.tar https://upload.example.test/",
		User: "alice", PPID: 4200, ParentImage: "/usr/bin/bash", ParentCommand: "bash"}, Match: "5tuple", Feed: "auditd", SkewMS: -3}
	f.RespProc = &process.Attribution{Process: process.Process{Host: "server", PID: 80, Image: `C:\Program Files\Srv\Srv.EXE`}, Match: "5tuple", Feed: "sysmon"}
	return f
}

// exported is sample() as a router export reports it: IP counters only.
func exported() *record.Flow {
	f := sample()
	f.Observed, f.OrigBytes, f.RespBytes, f.State = false, 0, 0, ""
	f.History = record.History{}
	f.Export = record.Export{Exporter: netip.MustParseAddr("192.0.2.1"), Version: 10, Stitch: "biflow", SamplingRate: 100}
	return f
}

func alert() *detect.Alert {
	return &detect.Alert{TS: time.Date(2026, 11, 22, 11, 40, 0, 5, time.UTC), ID: "4f1c2a7d9e0b3c61", Analytic: "AN1512",
		Technique: "T1567.002", Severity: detect.High, Confidence: "high", Title: "curl uploaded 3.0 MiB to upload.example.test",
		Host:        &detect.AlertHost{IP: "10.77.0.2", Name: "lab-client", PeerGroup: "lab-clients"},
		Process:     &detect.AlertProcess{PID: 4242, Image: "/usr/bin/curl", Name: "curl", CommandLine: "curl -T docs.tar", User: "alice", ParentImage: "/usr/bin/bash", Feed: "auditd"},
		Destination: &detect.Destination{IP: "198.51.100.10", Port: 443, Name: "upload.example.test", Service: "file-sharing"},
		Evidence: detect.Evidence{CommunityIDs: []string{"1:Lg5TWtb29GS0R32KFwREu+Rj/cI="},
			Measured:   map[string]any{"out_bytes": uint64(3145912), "ratio": 0.5, "archiver_in_command": true, "first_seen": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
			Thresholds: map[string]any{"DataVolumeThreshold": uint64(1 << 20), "TimeWindow": "1h0m0s"},
			Events:     []string{"auditd:1234"}},
		Missing: []string{"payload"}, DedupKey: "AN1512|10.77.0.2|curl"}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{JSON, ECS, Zeek} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("%s: %v, %v", f, got, err)
		}
		var u Format
		if b, _ := f.MarshalText(); u.UnmarshalText(b) != nil || u != f {
			t.Errorf("%s: text round trip gave %v", f, u)
		}
	}
	_, err := ParseFormat("xml")
	if err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Fatalf("xml: %v", err)
	}
	for _, name := range []string{"json", "ecs", "zeek"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not list %s: %v", name, err)
		}
	}
	if JSON != 0 {
		t.Error("the zero Format is not JSON")
	}
	if !JSON.CanAlerts() || !ECS.CanAlerts() || Zeek.CanAlerts() {
		t.Error("CanAlerts: only zeek has no alert form")
	}
	if JSON.Header(time.Now()) != nil || ECS.Header(time.Now()) != nil || ECS.Trailer(time.Now()) != nil {
		t.Error("JSON and ECS files have no header or trailer")
	}
}

// TestOneLine: every Append of every format writes exactly one line, and
// the JSON ones parse.
func TestOneLine(t *testing.T) {
	recs := map[string]*record.Flow{"sample": sample(), "rich": rich(), "exported": exported()}
	for _, f := range []Format{JSON, ECS, Zeek} {
		for name, r := range recs {
			checkLine(t, f.String()+" "+name, f, f.AppendFlow([]byte("prefix"), r)[len("prefix"):])
		}
		checkLine(t, f.String()+" alert", f, f.AppendAlert(nil, alert()))
	}
}

// checkLine: one line ending in '\n'; JSON that parses for the JSON
// formats; for Zeek, the conn.log's column count.
func checkLine(t *testing.T, what string, f Format, line []byte) {
	t.Helper()
	if len(line) == 0 || line[len(line)-1] != '\n' || bytes.IndexByte(line, '\n') != len(line)-1 {
		t.Fatalf("%s: not one line: %q", what, line)
	}
	if f == Zeek && line[0] != '{' {
		if n := len(bytes.Split(line[:len(line)-1], []byte{'\t'})); n != len(zeekFields) {
			t.Fatalf("%s: %d columns, want %d: %q", what, n, len(zeekFields), line)
		}
		return
	}
	if !json.Valid(line) {
		t.Fatalf("%s: invalid JSON: %s", what, line)
	}
}

// FuzzStrings feeds arbitrary strings into every string a record or an
// alert carries (names off the wire, host logs, the TCP history and
// state) and checks each format still writes one valid line: JSON that
// parses for Outflow's JSON and ECS, the right column count for Zeek, whose history column
// unescapes to the history as Zeek's reader would.
func FuzzStrings(f *testing.F) {
	f.Add("upload.example.test", "PUT", "/usr/bin/curl", "ShADadfF", "SF", "alice")
	f.Add("", "", "", "", "", "")
	f.Add("-", "(empty)", "a\tb\\c", "\x00\xff\xfe", "\n", "\u2028\"")
	f.Add("caf\xc3\xa9", "\xed\xa0\x80", "#x", "(empty)", "-", "é\x7f")
	f.Fuzz(func(t *testing.T, name, method, image, history, state, user string) {
		r := rich()
		r.State = state
		r.History.Set([]byte(history))
		s := r.Inspection
		s.TLS.SNI, s.TLS.JA3, s.TLS.JA4, s.TLS.ALPN = name, method, image, []string{user, name}
		s.HTTP.Method, s.HTTP.Host = method, name
		s.DNS.Query, s.DNS.Answers = name, []string{user}
		s.Resolved = name
		r.OrigProc.Host, r.OrigProc.Image, r.OrigProc.Command, r.OrigProc.User = name, image, method, user
		r.OrigProc.ParentImage, r.OrigProc.GUID, r.OrigProc.Match, r.OrigProc.Feed = image, user, state, history
		r.RespProc.Image, r.RespProc.Command = name, image
		for _, f := range []Format{ECS, Zeek} {
			line := f.AppendFlow(nil, r)
			checkLine(t, f.String(), f, line)
			if f == Zeek {
				col := strings.Split(strings.TrimSuffix(string(line), "\n"), "\t")[15]
				want := string(r.History.Bytes())
				if want == "" {
					want = "-" // unset, as Zeek logs an empty history
				}
				if got := zeekUnescape(col); got != want && !(want == "-" && col == "-") {
					t.Fatalf("history %q written %q, reads back %q", want, col, got)
				}
			}
		}
		// Outflow's JSON writes what Outflow makes from a fixed alphabet
		// (the history's letters, the state, the JA3 and JA4 digests)
		// as it is; everything taken from the wire or a host log is
		// escaped.
		r.State = "SF"
		r.History.Set([]byte("ShADadfF"))
		s.TLS.JA3, s.TLS.JA4 = "d41d8cd98f00b204e9800998ecf8427e", "t13d1516h2_8daaf6152771_02713d6af862"
		checkLine(t, "json", JSON, JSON.AppendFlow(nil, r))
		a := alert()
		a.Title, a.Analytic, a.Technique, a.DedupKey = name, method, image, history
		a.Host.Name, a.Host.User, a.Host.IP = name, user, state
		a.Process.Image, a.Process.CommandLine = image, method
		a.Destination.Name, a.Destination.Service = name, user
		a.Evidence.Measured[name] = user
		a.Missing = []string{state}
		checkLine(t, "ecs alert", ECS, ECS.AppendAlert(nil, a))
		checkLine(t, "json alert", JSON, JSON.AppendAlert(nil, a))
	})
}

// zeekUnescape reads a string column as Zeek's ASCII input reader does
// (util::get_unescaped_string): \xNN is the byte NN, the markers are
// themselves.
func zeekUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]) {
			b.WriteByte(unhex(s[i+2])<<4 | unhex(s[i+3]))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
