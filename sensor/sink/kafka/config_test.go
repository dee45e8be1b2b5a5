package kafka

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := map[string]Config{
		"kafka://k1:9093,k2/flows": {Brokers: []string{"k1:9093", "k2:9092"}, Topic: "flows"},
		"kafka://[::1]:9092,[fd00::2],10.0.0.1/out.flows_v1?client_id=sensor-7&acks=leader&compression=zstd": {
			Brokers: []string{"[::1]:9092", "[fd00::2]:9092", "10.0.0.1:9092"}, Topic: "out.flows_v1",
			ClientID: "sensor-7", Acks: "leader", Compression: "zstd"},
		"kafka://k/t?tls=1&sasl=scram-sha-512&user=sensor&password_file=/etc/outflow/kafka.pass": {
			Brokers: []string{"k:9092"}, Topic: "t", TLS: true, SASL: "scram-sha-512", User: "sensor",
			PasswordFile: "/etc/outflow/kafka.pass"},
		// A CA or a client certificate is for TLS, so turns it on.
		"kafka://k/t?ca=/ca.pem&cert=/c.pem&key=/c.key": {Brokers: []string{"k:9092"}, Topic: "t", TLS: true,
			CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/c.key"},
		"kafka://k/t?tls=0": {Brokers: []string{"k:9092"}, Topic: "t"},
	}
	for u, want := range good {
		got, err := ParseURL(u)
		want.URL = u
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", u, got, err, want)
		}
	}
	// Each error names the part that is wrong.
	bad := map[string]string{
		"http://k/t":                            "starts with kafka://",
		"kafka://k":                             "no topic",
		"kafka://k/":                            "no topic",
		"kafka:///t":                            "an empty broker",
		"kafka://k1,,k2/t":                      "an empty broker",
		"kafka://k:99999/t":                     `port "99999"`,
		"kafka://k:x/t":                         `port "x"`,
		"kafka://::1/t":                         "brackets",
		"kafka://k@evil/t":                      `broker "k@evil"`,
		"kafka://k/a/b":                         `topic "a/b"`,
		"kafka://k/..":                          `topic ".."`,
		"kafka://k/" + strings.Repeat("t", 250): "at most 249",
		"kafka://k/t?tls=yes":                   `tls="yes"`,
		"kafka://k/t?tls=0&ca=/ca.pem":          "tls=0 contradicts",
		"kafka://k/t?cert=/c.pem":               "both cert= and key=",
		"kafka://k/t?insecure_skip_verify=1":    "insecure_skip_verify is not offered",
		"kafka://k/t?password=hunter2":          "password is not offered",
		"kafka://k/t?sasl=gssapi&user=u&password_file=/p": `sasl="gssapi"`,
		"kafka://k/t?sasl=plain&password_file=/p":         "needs user=",
		"kafka://k/t?sasl=plain&user=u":                   "needs password_file=",
		"kafka://k/t?user=u":                              "need sasl=",
		"kafka://k/t?compression=brotli":                  `compression="brotli"`,
		"kafka://k/t?acks=0":                              "acks=0 is not offered",
		"kafka://k/t?acks=2":                              `acks="2"`,
		"kafka://k/t?client_id=a%20b":                     `client_id="a b"`,
		"kafka://k/t?compresion=gzip":                     `unknown option "compresion"`,
		"kafka://k/t?tls=1&tls=1":                         "tls is given 2 times",
		"kafka://k/t?ca=%zz":                              "badly escaped",
	}
	for u, want := range bad {
		_, err := ParseURL(u)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", u, err, want)
		}
	}
}

// TestNewFiles: New reads the files a Config names, and an error names
// the option of the file that is missing or wrong; the password is in
// no error.
func TestNewFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	notPEM := writeFile(t, "not.pem", []byte("hunter2-not-a-cert"))
	empty := writeFile(t, "empty", nil)
	twoLines := writeFile(t, "two", []byte("hunter2\nhunter3\n"))
	for u, want := range map[string]string{
		"ca=" + missing:                               "ca=" + missing + ": cannot read it: no such file",
		"ca=" + notPEM:                                "no PEM certificate",
		"cert=" + notPEM + "&key=" + notPEM:           "are not a PEM certificate and its private key",
		"cert=" + notPEM + "&key=" + missing:          "key=" + missing + ": cannot read it",
		"sasl=plain&user=u&password_file=" + missing:  "password_file=" + missing + ": cannot read it",
		"sasl=plain&user=u&password_file=" + empty:    "is empty",
		"sasl=plain&user=u&password_file=" + twoLines: "more than one line",
		"sasl=plain&user=u&password_file=" + dir:      "cannot read it",
	} {
		cfg, err := ParseURL("kafka://127.0.0.1:1/t?" + u)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter") {
			t.Errorf("%s: %v, want an error with %q", u, err, want)
		}
	}
}

// TestNew: New fills the defaults, and holds a Config built by hand to
// ParseURL's rules; Name renders one.
func TestNew(t *testing.T) {
	tr, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.cfg.Compression != DefaultCompression || tr.cfg.Acks != "all" || tr.cfg.ClientID != DefaultClientID || tr.cfg.Timeout != DefaultTimeout {
		t.Errorf("defaults: %+v", tr.cfg)
	}
	if got := tr.Name(); got != "kafka://127.0.0.1:1/t?acks=all&client_id=outflow&compression=snappy" {
		t.Errorf("name %q", got)
	}
	if _, err := New(Config{Brokers: []string{"k:9092"}, Topic: "a b"}); err == nil || !strings.Contains(err.Error(), `topic "a b"`) {
		t.Errorf("bad topic: %v", err)
	}
	if _, err := New(Config{Topic: "t"}); err == nil || !strings.Contains(err.Error(), "no broker") {
		t.Errorf("no broker: %v", err)
	}
}

// FuzzParseURL: any string is a Config or an error, never a panic, and a
// Config written back as a URL reads back the same.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"kafka://k1:9093,k2/flows",
		"kafka://[::1]:9092,[fd00::2]/t?tls=1&ca=/ca.pem&cert=/c&key=/k",
		"kafka://k/t?sasl=scram-sha-256&user=u%20x&password_file=/p&compression=gzip&acks=leader&client_id=x",
		"kafka://k/t?tls=0&ca=/x", "kafka://k/%zz", "kafka://k:0/t", "kafka://,/t?&&=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			return
		}
		c.URL = ""
		back, err := ParseURL(c.String())
		if err != nil {
			t.Fatalf("%q -> %q: %v", s, c.String(), err)
		}
		back.URL = ""
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("%q -> %q:\n%+v\n%+v", s, c.String(), c, back)
		}
	})
}
