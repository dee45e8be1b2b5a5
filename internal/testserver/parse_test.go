package testserver

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseMessages(t *testing.T) {
	in := "host app 123 alert local0 info 2026-12-04T21:00:00.123456+00:00 - {\"id\":\"a b\"}\n" +
		"- - - - local3 notice 2026-12-04T21:00:01+00:00 [x@1 a=\"1\"] msg with  spaces \n" +
		"half written"
	got, err := ParseMessages([]byte(in))
	want := []Message{
		{"host", "app", "123", "alert", "local0", "info", "2026-12-04T21:00:00.123456+00:00", "-", `{"id":"a b"}`},
		{"-", "-", "-", "-", "local3", "notice", "2026-12-04T21:00:01+00:00", "[x@1", `a="1"] msg with  spaces `},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseMessages: %q, %v", got, err)
	}
	if _, err := ParseMessages([]byte("a b c\n")); err == nil || !strings.HasPrefix(err.Error(), "line 1: ") {
		t.Fatalf("a short line: %v", err)
	}
}

func TestParseAccessLog(t *testing.T) {
	in := `200 /ok /tmp/x/body/0000000001 "application/x-ndjson" "-" 1234
401 /bearer - "application/x-ndjson; charset=utf-8" "gzip" 99
400 /bad - "-" "-" -
` + `200 /ok /half`
	got, err := parseAccessLog([]byte(in))
	want := []logged{
		{Request{Status: "200", URI: "/ok", ContentType: "application/x-ndjson", Length: 1234}, "/tmp/x/body/0000000001"},
		{Request{Status: "401", URI: "/bearer", ContentType: "application/x-ndjson; charset=utf-8", Encoding: "gzip", Length: 99}, ""},
		{Request{Status: "400", URI: "/bad"}, ""},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("parseAccessLog: %+v, %v", got, err)
	}
	for _, bad := range []string{
		`200 /ok - "unterminated 5` + "\n",
		`200 /ok - "a" "b" 5 extra` + "\n",
		`200 /ok - "a""b" 5` + "\n",
		`200 /ok - "a" "b" -5` + "\n",
		`200 /ok - "a" "b" 5 ` + "\n",
	} {
		if _, err := parseAccessLog([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "line 1: ") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzParseMessages: any bytes give messages or an error naming a line,
// never a panic; each message is its line, split.
func FuzzParseMessages(f *testing.F) {
	f.Add([]byte("host app 123 alert local0 info 2026-12-04T21:00:00+00:00 - {\"id\":1}\n"))
	f.Add([]byte("- - - - local3 notice t [x@1 a=\"1\"] m\n\n"))
	f.Add([]byte("a b\nc d e f g h i j k\n"))
	f.Add([]byte("\xff\x00 \n        \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseMessages(b)
		lines := bytes.Split(b, []byte("\n"))
		if len(got) > len(lines)-1 {
			t.Fatalf("%d messages from %d lines", len(got), len(lines)-1)
		}
		for i, m := range got {
			joined := strings.Join([]string{m.Hostname, m.AppName, m.ProcID, m.MsgID, m.Facility, m.Severity, m.Time, m.SD, m.Msg}, " ")
			if joined != string(lines[i]) {
				t.Fatalf("message %d is %q, from line %q", i, joined, lines[i])
			}
		}
		if err != nil && len(got) == len(lines)-1 {
			t.Fatalf("an error, %v, with every line read", err)
		}
	})
}

// FuzzParseAccessLog: any bytes give requests or an error naming a line,
// never a panic.
func FuzzParseAccessLog(f *testing.F) {
	f.Add([]byte(`200 /ok /tmp/b/0000000001 "application/x-ndjson" "-" 1234` + "\n"))
	f.Add([]byte(`401 /bearer - "application/x-ndjson; charset=utf-8" "gzip" 99` + "\n" + `400 /bad - "-" "-" -` + "\n"))
	f.Add([]byte(`"" "" "" "" "" ""` + "\n"))
	f.Add([]byte("200 /ok - \"a\" \"b\" 5 \n\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseAccessLog(b)
		if n := bytes.Count(b, []byte("\n")); len(got) > n {
			t.Fatalf("%d requests from %d lines", len(got), n)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "line ") {
			t.Fatalf("an error that names no line: %v", err)
		}
		for _, l := range got {
			if l.Length < 0 {
				t.Fatalf("a negative length: %+v", l)
			}
		}
	})
}
