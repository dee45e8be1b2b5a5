package webhook

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A bad URL's error names the part at fault, and never shows the query.
func TestParseURLRefuses(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"ftp://h/x?key=s3cret", `webhook URL "ftp://h/x?…": scheme "ftp": want https or http`},
		{"https:h/x", `webhook URL "https:": give the receiver as https://HOST[:PORT]/PATH`},
		{"https:///x", `webhook URL "https:///x": give the receiver as https://HOST[:PORT]/PATH`},
		{"https://u:s3cret@h/x", `webhook URL "https://h/x": a user or password in the URL would show wherever it does: give User and PasswordFile`},
		{"https://:443/x", `webhook URL "https://:443/x": give a host`},
		{"https://h:0/x", `webhook URL "https://h:0/x": port "0": want 1-65535`},
		{"https://h:70000/x", `webhook URL "https://h:70000/x": port "70000": want 1-65535`},
		{"https://h/x#frag", `webhook URL "https://h/x": fragment: a webhook URL has none`},
		{"https://h:x/s3cret", `webhook URL: cannot parse it: invalid port ":x" after host`},
		{"https://h/x?%zz", ``}, // a query is the receiver's business
	} {
		_, err := ParseURL(tc.url)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.url, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\ngot  %v\nwant %s", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the secret", tc.url)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	tok := secret(t, "tok")
	spaced := secret(t, "to ken")
	empty := secret(t, " \n")
	twoLines := secret(t, "a\nb\n")
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "https://h/x", TokenFile: tok, User: "u", PasswordFile: tok}, "webhook https://h/x: give a TokenFile or a User and PasswordFile, not both"},
		{Config{URL: "https://h/x", TokenFile: "/nonexistent/tok"}, "webhook https://h/x: token file /nonexistent/tok: cannot read it: no such file or directory"},
		{Config{URL: "https://h/x", TokenFile: empty}, "webhook https://h/x: token file " + empty + ": holds no token"},
		{Config{URL: "https://h/x", TokenFile: spaced}, "webhook https://h/x: token file " + spaced + ": the token holds a character a header cannot carry"},
		{Config{URL: "https://h/x", User: "u"}, "webhook https://h/x: basic authentication needs both User and PasswordFile"},
		{Config{URL: "https://h/x", User: "a:b", PasswordFile: tok}, `webhook https://h/x: user "a:b": a basic-authentication user has no colon`},
		{Config{URL: "https://h/x", User: "u", PasswordFile: twoLines}, "webhook https://h/x: password file " + twoLines + ": holds more than one line"},
		{Config{URL: "http://h/x", CAFile: "ca.pem"}, "webhook http://h/x: TLS settings given for http: only https uses them"},
		{Config{URL: "https://h/x", CAFile: "config.go"}, "webhook https://h/x: CA file config.go: holds no PEM certificate"},
		{Config{URL: "https://h/x", KeyFile: "k.pem"}, "webhook https://h/x: a client certificate needs both"},
		{Config{URL: "https://h/x", MaxBatchBytes: -1}, "webhook https://h/x: MaxBatchBytes and Timeout: want positive values"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v:\ngot  %v\nwant %s", tc.cfg, err, tc.want)
		}
	}
}

// Plain http leaves loopback with a warning, which says whether it
// carries credentials and never what they are.
func TestPlainHTTPWarns(t *testing.T) {
	tok := secret(t, "s3cret-token")
	for _, tc := range []struct {
		url, want string
	}{
		{"http://127.0.0.1:8080/x", ""},
		{"http://[::1]/x", ""},
		{"http://localhost/x", ""},
		{"https://192.0.2.1/x", ""},
		{"http://192.0.2.1/x?k=v", `level=WARN msg="webhook posts records unencrypted: use https" url=http://192.0.2.1/x?… credentials_in_clear=true`},
	} {
		var log bytes.Buffer
		_, err := New(Config{URL: tc.url, TokenFile: tok, Log: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(log.String())
		if tc.want == "" && got != "" || tc.want != "" && !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s: logged %q, want %q", tc.url, got, tc.want)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("%s: the warning shows the token", tc.url)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"4294967295", 4294967295 * time.Second},
		{"4294967296", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Sunday, 01-Mar-26 10:01:00 GMT", time.Minute}, // RFC 850
		{"Sun Mar  1 10:00:30 2026", 30 * time.Second},  // asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.v, got, tc.want)
		}
	}
}

// No header panics parseRetryAfter or gives a negative wait.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "", "Wed, 21 Oct 2037 07:28:00 GMT", "Sun Mar  1 10:00:30 2026", "99999999999", "-1", "\x00"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 {
			t.Fatalf("%q: %v", v, d)
		}
	})
}

// No URL panics ParseURL; what it takes, New takes, and Name shows no
// query: at most "?…" at its end.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"https://h/x", "http://127.0.0.1:8080/hook?key=SECRET", "https://u:SECRET@h/x",
		"https://[::1]:443/x%3Fy?", "ftp://h?SECRET", "https://h:x/SECRET", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err != nil {
			return
		}
		tr, err := New(cfg)
		if err != nil {
			t.Fatalf("%q: ParseURL took it, New did not: %v", s, err)
		}
		name := strings.TrimSuffix(tr.Name(), "?…")
		if strings.Contains(name, "?") {
			t.Fatalf("%q: Name %q may show the query", s, tr.Name())
		}
	})
}
