package encode

import (
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/record"
)

// zeekColumns writes f as a conn.log row and returns it by column name.
func zeekColumns(t *testing.T, f *record.Flow) map[string]string {
	t.Helper()
	line := Zeek.AppendFlow(nil, f)
	checkLine(t, "zeek", Zeek, line)
	vals := strings.Split(strings.TrimSuffix(string(line), "\n"), "\t")
	row := map[string]string{}
	for i, name := range zeekFields {
		row[name] = vals[i]
	}
	return row
}

// TestZeekHeader: the header lines are those Zeek wrote for a conn.log of
// the shared baselines (default columns), but for #open, which btest
// masks there and which holds the given time here.
func TestZeekHeader(t *testing.T) {
	base, err := os.ReadFile(shared.Path(t, "zeek/testing/btest/Baseline/core.tcp.missing-syn/conn.log"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(base), "\n") {
		if strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "##") && !strings.HasPrefix(l, "#close") {
			want = append(want, l)
		}
	}
	now := time.Date(2026, 11, 22, 11, 33, 19, 0, time.FixedZone("CET", 3600))
	got := strings.Split(strings.TrimSuffix(string(Zeek.Header(now)), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("header has %d lines, Zeek's %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if strings.HasPrefix(want[i], "#open") { // btest masks the time: "#open XXXX-XX-..."
			if got[i] != "#open\t2026-11-22-11-33-19" {
				t.Errorf("open line %q", got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("line %d: %q, Zeek wrote %q", i, got[i], want[i])
		}
	}
	if tr := string(Zeek.Trailer(now)); tr != "#close\t2026-11-22-11-33-19\n" {
		t.Errorf("trailer %q", tr)
	}
}

// TestZeekEscape follows Zeek's ASCII writer (threading/formatters/Ascii.cc
// and Desc.cc, LogAscii::enable_utf_8=T): empty is (empty); a value equal
// to a marker has its first byte escaped; backslash, the separator, other
// control bytes, DEL and bytes of invalid UTF-8 become \xNN in lower-case
// hex; valid UTF-8 and the set separator in a plain string stay as they are.
func TestZeekEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":                "(empty)",
		"-":               `\x2d`,
		"(empty)":         `\x28empty)`,
		"--":              "--",
		"a\tb":            `a\x09b`,
		`a\b`:             `a\x5cb`,
		"a\nb\r":          `a\x0ab\x0d`,
		"\x00\x1f\x7f":    `\x00\x1f\x7f`,
		"café":            "café",
		"日本":              "日本",
		"\xff\xfe":        `\xff\xfe`,
		"\xc3":            `\xc3`,         // a truncated sequence
		"\xed\xa0\x80":    `\xed\xa0\x80`, // a UTF-16 surrogate is not UTF-8
		"\xef\xbf\xbd":    "\ufffd",       // U+FFFD itself is valid
		"quic,ssl":        "quic,ssl",
		"#separator":      "#separator",
		"ShADadfF":        "ShADadfF",
		"a\xe2\x82\xacb~": "a€b~",
	} {
		if got := string(appendZeekString(nil, in)); got != want {
			t.Errorf("%q: %q, Zeek writes %q", in, got, want)
		}
		if got := string(appendZeekString(nil, []byte(in))); got != want {
			t.Errorf("%q as bytes: %q, Zeek writes %q", in, got, want)
		}
	}
}

// TestZeekColumns: what each column holds, and which Outflow leaves unset
// because the record does not know it (Zeek's own rules in
// docs/zeek-accounting.md §4, §6, §7).
func TestZeekColumns(t *testing.T) {
	f := sample() // starts 2026-11-22T11:33:19.123456789Z, lasts 2.500000001 s
	row := zeekColumns(t, f)
	for col, want := range map[string]string{
		// Nanoseconds rounded to the microseconds of a pcap timestamp.
		"ts": "1795347199.123457", "duration": "2.500000",
		"id.orig_h": "10.77.0.2", "id.orig_p": "41728", "id.resp_h": "198.51.100.10", "id.resp_p": "80",
		"proto": "tcp", "service": "-", "orig_bytes": "3145912", "resp_bytes": "214", "conn_state": "SF",
		"local_orig": "T", "local_resp": "F", "missed_bytes": "0", "history": "ShADadfF",
		"orig_pkts": "2209", "orig_ip_bytes": "3264000", "resp_pkts": "480", "resp_ip_bytes": "19415",
		"tunnel_parents": "-", "ip_proto": "6",
	} {
		if row[col] != want {
			t.Errorf("%s = %q, want %q", col, row[col], want)
		}
	}
	if !regexp.MustCompile(`^C[0-9A-Za-z]{1,17}$`).MatchString(row["uid"]) {
		t.Errorf("uid %q is not shaped as Zeek's", row["uid"])
	}

	// Zeek sets duration and the byte counts only when duration > 0.
	f.End = f.Start + 400 // rounds to the same microsecond
	row = zeekColumns(t, f)
	for _, col := range []string{"duration", "orig_bytes", "resp_bytes"} {
		if row[col] != "-" {
			t.Errorf("zero duration: %s = %q, want unset", col, row[col])
		}
	}

	// A router export has no payload: bytes, history and missed bytes are
	// unset; TCP's conn_state too, UDP's follows from who sent, other
	// protocols are OTH.
	e := exported()
	row = zeekColumns(t, e)
	for _, col := range []string{"orig_bytes", "resp_bytes", "missed_bytes", "history", "conn_state"} {
		if row[col] != "-" {
			t.Errorf("export: %s = %q, want unset", col, row[col])
		}
	}
	for _, c := range []struct {
		proto      uint8
		orig, resp uint64
		want       string
	}{{17, 1, 1, "SF"}, {17, 3, 0, "S0"}, {17, 0, 2, "SHR"}, {17, 0, 0, "OTH"}, {1, 1, 1, "OTH"}, {47, 1, 0, "OTH"}} {
		e.Proto, e.OrigPkts, e.RespPkts = c.proto, c.orig, c.resp
		if got := zeekColumns(t, e)["conn_state"]; got != c.want {
			t.Errorf("export proto %d %d/%d packets: conn_state %q, Zeek's rule gives %q", c.proto, c.orig, c.resp, got, c.want)
		}
	}

	// ICMPv6 is icmp; an IPv4-mapped address prints as IPv4; an inbound
	// flow's local end is the responder; other protocols are
	// unknown_transport.
	f = sample()
	f.Proto = 58
	f.Orig, f.Resp = netip.MustParseAddrPort("[::ffff:192.0.2.7]:128"), netip.MustParseAddrPort("[::ffff:10.0.0.1]:129")
	f.Direction = record.Inbound
	row = zeekColumns(t, f)
	for col, want := range map[string]string{"proto": "icmp", "ip_proto": "58", "id.orig_h": "192.0.2.7", "id.resp_h": "10.0.0.1",
		"local_orig": "F", "local_resp": "T"} {
		if row[col] != want {
			t.Errorf("icmp6: %s = %q, want %q", col, row[col], want)
		}
	}
	f.Proto = 132
	if got := zeekColumns(t, f)["proto"]; got != "unknown_transport" {
		t.Errorf("sctp: proto %q", got)
	}
	f.Direction = record.Internal
	if row = zeekColumns(t, f); row["local_orig"] != "T" || row["local_resp"] != "T" {
		t.Errorf("internal: local_orig %s local_resp %s", row["local_orig"], row["local_resp"])
	}

	// Service as Zeek's analyzers name it.
	f = sample()
	for app, want := range map[flows.AppProto]string{flows.AppTLS: "ssl", flows.AppQUIC: "quic,ssl", flows.AppHTTP: "http",
		flows.AppDNS: "dns", flows.AppSSH: "ssh", flows.AppUnknown: "-"} {
		f.Inspection = &flows.Inspection{App: app}
		if got := zeekColumns(t, f)["service"]; got != want {
			t.Errorf("%s: service %q, want %q", app, got, want)
		}
	}

	// An empty history is unset; an odd one is escaped.
	f.History.Set(nil)
	if got := zeekColumns(t, f)["history"]; got != "-" {
		t.Errorf("empty history %q", got)
	}
	f.History.Set([]byte("S\tA"))
	if got := zeekColumns(t, f)["history"]; got != `S\x09A` {
		t.Errorf("history with a tab %q", got)
	}
}

// TestZeekTimes checks the microsecond rendering on edges: rounding half
// up, carrying into the second, the epoch and before it.
func TestZeekTimes(t *testing.T) {
	for ns, want := range map[int64]string{
		0:                         "0.000000",
		499:                       "0.000000",
		500:                       "0.000001",
		999_999_500:               "1.000000",
		1_300_475_167_096_535_000: "1300475167.096535",
		-1:                        "0.000000",
		-1_000:                    "-0.000001",
		-1_500_000_000:            "-1.500000",
	} {
		if got := string(appendMicros(nil, roundMicros(ns))); got != want {
			t.Errorf("%d ns: %s, want %s", ns, got, want)
		}
	}
}

// TestZeekUID: stable for one flow, different for another 5-tuple or
// another start on the same one.
func TestZeekUID(t *testing.T) {
	uid := func(f *record.Flow) string { return string(appendZeekUID(nil, f)) }
	a, b := sample(), sample()
	if uid(a) != uid(b) {
		t.Fatal("one flow, two uids")
	}
	seen := map[string]bool{uid(a): true}
	b.Start++
	c := sample()
	c.Orig = netip.AddrPortFrom(c.Orig.Addr(), c.Orig.Port()+1)
	d := sample()
	d.Proto = 17
	for _, f := range []*record.Flow{b, c, d} {
		u := uid(f)
		if seen[u] {
			t.Errorf("uid %s repeated", u)
		}
		seen[u] = true
		if len(u) > 18 {
			t.Errorf("uid %s longer than Zeek's", u)
		}
	}
}

func TestZeekAllocs(t *testing.T) {
	f := rich()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = Zeek.AppendFlow(buf[:0], f) }); n != 0 {
		t.Errorf("%v allocations per record", n)
	}
}

func BenchmarkFlowZeek(b *testing.B) {
	f := sample()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = Zeek.AppendFlow(buf[:0], f)
	}
	b.SetBytes(int64(len(buf)))
}
