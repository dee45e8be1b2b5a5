package syslog

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The examples of RFC 5424 section 6.5 come out as the RFC writes them,
// but for what the RFC leaves open: six fractional digits, UTC, no BOM.
func TestAppendMessageRFCExamples(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want string
	}{{
		// Example 1: facility 4 (auth), severity 2 (crit), no PROCID.
		Message{Facility: Auth, Severity: Critical, Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
			Hostname: "mymachine.example.com", AppName: "su", MsgID: "ID47", Msg: []byte("'su root' failed for lonvick on /dev/pts/8")},
		"<34>1 2003-10-11T22:14:15.003000Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
	}, {
		// Example 2: facility 20 (local4), severity 5 (notice), a time
		// zone and microseconds, no MSGID.
		Message{Facility: Local4, Severity: Notice, Time: time.Date(2003, 8, 24, 5, 14, 15, 3000, time.FixedZone("", -7*3600)),
			Hostname: "192.0.2.1", AppName: "myproc", ProcID: "8710", Msg: []byte("%% It's time to make the do-nuts.")},
		"<165>1 2003-08-24T12:14:15.000003Z 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
	}} {
		if got := string(AppendMessage(nil, tc.m)); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

// Header fields become what RFC 5424 allows: printable US-ASCII, within
// the lengths, "-" when empty.
func TestAppendMessageSanitises(t *testing.T) {
	ts := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		hostname, appName, procID, msgID string
		want                             string
	}{
		{"", "", "", "", "- - - -"},
		{"my host", "out\tflow", "1\n2", "a b", "my_host out_flow 1_2 a_b"},
		{"café.example", "日本", "\xff\xfe", "\x00\x7f", "caf_.example __ __ __"},
		{strings.Repeat("h", 300), strings.Repeat("a", 60), strings.Repeat("9", 200), strings.Repeat("m", 40),
			strings.Repeat("h", 255) + " " + strings.Repeat("a", 48) + " " + strings.Repeat("9", 128) + " " + strings.Repeat("m", 32)},
		{strings.Repeat("é", 300), "-", "-", "-", strings.Repeat("_", 255) + " - - -"},
	} {
		m := Message{Facility: Local0, Severity: Info, Time: ts, Hostname: tc.hostname, AppName: tc.appName,
			ProcID: tc.procID, MsgID: tc.msgID, Msg: []byte("{}")}
		want := "<134>1 2026-03-01T10:00:00.000000Z " + tc.want + " - {}"
		if got := string(AppendMessage(nil, m)); got != want {
			t.Errorf("%q %q %q %q:\ngot  %q\nwant %q", tc.hostname, tc.appName, tc.procID, tc.msgID, got, want)
		}
	}
	// Out of range: a valid PRI and NILVALUE for the time.
	m := Message{Facility: 99, Severity: -1, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Msg: []byte("x")}
	if got := string(AppendMessage(nil, m)); got != "<134>1 - - - - - - x" {
		t.Errorf("out of range: %q", got)
	}
}

func TestAppendFrame(t *testing.T) {
	if got := string(AppendFrame([]byte("x"), []byte("<134>1 - - - - - - a\nb"))); got != "x22 <134>1 - - - - - - a\nb" {
		t.Errorf("%q", got)
	}
	if got := string(AppendFrame(nil, nil)); got != "0 " {
		t.Errorf("%q", got)
	}
}

// RFC 5424 section 6, strictly: what a conforming receiver accepts.
var (
	timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$`)
	priRE       = regexp.MustCompile(`^<(0|[1-9]\d{0,2})>1$`)
)

// parse5424 splits a message by RFC 5424's grammar, failing where the
// message breaks it.
func parse5424(b []byte) (pri int, ts string, fields [4]string, msg []byte, err error) {
	limits := [4]int{255, 48, 128, 32}
	parts := bytes.SplitN(b, []byte(" "), 8)
	if len(parts) != 8 {
		return 0, "", fields, nil, fmt.Errorf("%d fields", len(parts))
	}
	if !priRE.Match(parts[0]) {
		return 0, "", fields, nil, fmt.Errorf("PRI VERSION %q", parts[0])
	}
	pri, _ = strconv.Atoi(string(parts[0][1:bytes.IndexByte(parts[0], '>')]))
	if pri > 191 {
		return 0, "", fields, nil, fmt.Errorf("PRIVAL %d", pri)
	}
	ts = string(parts[1])
	if ts != "-" {
		if !timestampRE.MatchString(ts) {
			return 0, "", fields, nil, fmt.Errorf("TIMESTAMP %q", ts)
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			return 0, "", fields, nil, fmt.Errorf("TIMESTAMP %q: %v", ts, err)
		}
	}
	for i := range fields {
		f := parts[2+i]
		if len(f) < 1 || len(f) > limits[i] {
			return 0, "", fields, nil, fmt.Errorf("field %d: length %d", i, len(f))
		}
		for _, c := range f {
			if c < 33 || c > 126 {
				return 0, "", fields, nil, fmt.Errorf("field %d: byte %#x", i, c)
			}
		}
		fields[i] = string(f)
	}
	if string(parts[6]) != "-" {
		return 0, "", fields, nil, fmt.Errorf("STRUCTURED-DATA %q", parts[6])
	}
	return pri, ts, fields, parts[7], nil
}

// Whatever the fields, the message is valid RFC 5424, carries MSG as it
// is, keeps a field that was valid as it was, and frames to its length.
func FuzzAppendMessage(f *testing.F) {
	f.Add("host", "outflow", "42", "flow", 16, 6, int64(1772359200123456789), []byte(`{"a":1}`))
	f.Add("", "", "", "", 0, 0, int64(0), []byte{})
	f.Add("my host", "日本", "\xff", "a\x00b", 99, -3, int64(-9223372036854775808), []byte("\n\x00 - "))
	f.Add(strings.Repeat("h", 300), strings.Repeat("é", 30), "-", " ", 23, 7, int64(253402300799999999), []byte("x"))
	f.Fuzz(func(t *testing.T, host, app, procID, msgID string, fac, sev int, nanos int64, msg []byte) {
		ts := time.Unix(0, nanos)
		m := Message{Facility: Facility(fac), Severity: Severity(sev), Time: ts,
			Hostname: host, AppName: app, ProcID: procID, MsgID: msgID, Msg: msg}
		b := AppendMessage([]byte("prefix"), m)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("dst lost: %q", b)
		}
		b = b[len("prefix"):]
		pri, gotTS, fields, gotMsg, err := parse5424(b)
		if err != nil {
			t.Fatalf("%q: not RFC 5424: %v", b, err)
		}
		if !bytes.Equal(gotMsg, msg) {
			t.Fatalf("MSG %q, want %q", gotMsg, msg)
		}
		wantFac, wantSev := fac, sev
		if fac < 0 || fac > 23 {
			wantFac = 16
		}
		if sev < 0 || sev > 7 {
			wantSev = 6
		}
		if pri != wantFac*8+wantSev {
			t.Fatalf("PRI %d for facility %d severity %d", pri, fac, sev)
		}
		if y := ts.UTC().Year(); gotTS != "-" {
			got, _ := time.Parse(time.RFC3339Nano, gotTS)
			if !got.Equal(ts.Truncate(time.Microsecond)) {
				t.Fatalf("TIMESTAMP %s for %v", gotTS, ts)
			}
		} else if y >= 1 && y <= 9999 && !ts.IsZero() {
			t.Fatalf("no TIMESTAMP for %v", ts)
		}
		for i, in := range []string{host, app, procID, msgID} {
			valid := in != "" && len(in) <= [4]int{255, 48, 128, 32}[i] && !strings.ContainsFunc(in, func(r rune) bool { return r < 33 || r > 126 })
			if valid && fields[i] != in {
				t.Fatalf("field %d: %q became %q", i, in, fields[i])
			}
			if in == "" && fields[i] != "-" {
				t.Fatalf("field %d: empty became %q", i, fields[i])
			}
			if !utf8.ValidString(fields[i]) {
				t.Fatalf("field %d: %q", i, fields[i])
			}
		}
		frame := AppendFrame(nil, b)
		sp := bytes.IndexByte(frame, ' ')
		if n, err := strconv.Atoi(string(frame[:max(sp, 0)])); err != nil || n != len(b) || !bytes.Equal(frame[sp+1:], b) {
			t.Fatalf("frame %q of a %d-byte message", frame[:min(len(frame), 20)], len(b))
		}
	})
}
