package syslog

import (
	"net"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/sensor/sink"
)

func TestParseURL(t *testing.T) {
	cfg, err := ParseURL("syslog+tls://[::1]:6514?ca=/etc/outflow/ca.pem&cert=c.pem&key=k.pem&servername=siem.example" +
		"&facility=local3&severity=notice&hostname=s1&app=of&msgid=alert&max=8192")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network != "tls" || cfg.Addr != "[::1]:6514" || cfg.CAFile != "/etc/outflow/ca.pem" || cfg.CertFile != "c.pem" ||
		cfg.KeyFile != "k.pem" || cfg.ServerName != "siem.example" || cfg.Facility != "local3" || cfg.Hostname != "s1" ||
		cfg.AppName != "of" || cfg.MsgID != "alert" || cfg.MaxMessage != 8192 || cfg.Severity == nil || cfg.Severity(sink.Record{}) != Notice {
		t.Errorf("%+v", cfg)
	}
	for _, s := range []string{"syslog+udp://10.0.0.1:514", "syslog+tcp://siem.example:601/"} {
		if _, err := ParseURL(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// A bad URL's error names the part at fault.
func TestParseURLRefuses(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"syslog://h:514", `scheme "syslog": want syslog+udp, syslog+tcp or syslog+tls`},
		{"syslog+tcp://h", `port "": give one, 1-65535 (syslog+tcp://HOST:PORT)`},
		{"syslog+tcp://h:99999", `port "99999": give one`},
		{"syslog+tcp://h:0", `port "0": give one`},
		{"syslog+tcp://:514", `give a host (syslog+tcp://HOST:PORT)`},
		{"syslog+tcp://00]:514", `host "00]": not an address or a host name`},
		{"syslog+tcp:h:514", `give the receiver as syslog+tcp://HOST:PORT`},
		{"syslog+tcp://u:p@h:514", `a user name has no meaning here`},
		{"syslog+tcp://h:514/x", `path "/x": a syslog URL has none`},
		{"syslog+tcp://h:514#f", `fragment "f": a syslog URL has none`},
		{"syslog+udp://h:514?ca=/x", `option ca: only syslog+tls takes it`},
		{"syslog+tls://h:514?ca=", `option ca: give a value`},
		{"syslog+tcp://h:514?facility=bogus", `option facility: facility "bogus": not kern`},
		{"syslog+tcp://h:514?severity=loud", `option severity: severity "loud": not emerg`},
		{"syslog+tcp://h:514?max=-1", `option max: "-1": want a positive number of bytes`},
		{"syslog+tcp://h:514?facility=local1&facility=local2", `option facility: give it once`},
		{"syslog+tcp://h:514?colour=red", `option colour: unknown; known are`},
		{"syslog+tcp://h:514?a=%zz", `query "a=%zz": cannot parse it`},
		{"syslog+tcp://h:%zz", `cannot parse it`},
	} {
		_, err := ParseURL(tc.url)
		if err == nil || !strings.HasPrefix(err.Error(), "syslog URL \""+tc.url+"\": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
	}
}

func TestFacilitySeverityNames(t *testing.T) {
	for f := Kern; f <= Local7; f++ {
		if g, err := ParseFacility(f.String()); err != nil || g != f {
			t.Errorf("%v: %v %v", f, g, err)
		}
	}
	for s := Emergency; s <= Debug; s++ {
		if g, err := ParseSeverity(s.String()); err != nil || g != s {
			t.Errorf("%v: %v %v", s, g, err)
		}
	}
	if f, err := ParseFacility("20"); err != nil || f != Local4 {
		t.Errorf("20: %v %v", f, err)
	}
	if _, err := ParseFacility("24"); err == nil {
		t.Error("24 is a facility")
	}
}

// No URL panics ParseURL; one it takes gives a Config New takes.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"syslog+udp://10.0.0.1:514", "syslog+tls://[::1]:6514?ca=/x&facility=local3",
		"syslog+tcp://h:514?max=10&severity=7&app=a%20b", "syslog+tcp://h", "syslog+tcp:h", "syslog+tcp://[::1", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err != nil {
			return
		}
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			t.Fatalf("%q: Addr %q", s, cfg.Addr)
		}
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
			return // New would read files
		}
		if _, err := New(cfg); err != nil {
			t.Fatalf("%q: ParseURL took it, New did not: %v", s, err)
		}
	})
}
