package feed

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/testserver"
)

// listening starts a source and returns it, what it emits and its port.
func listening(t *testing.T, spec string) (*Source, *collector, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{}
	ready := make(chan net.Addr, 1)
	src := &Source{URL: spec, Ready: func(a net.Addr) { ready <- a }}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, c.add, func(e *Error) { t.Logf("%v", e) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case a := <-ready:
		_, port, _ := net.SplitHostPort(a.String())
		return src, c, port
	case err := <-done:
		t.Fatalf("%s: %v", spec, err)
	}
	return nil, nil, ""
}

// refusedBy is how many senders src refused for reason.
func refusedBy(src *Source, reason string) uint64 { return src.Stats().Errors[reason] }

// octetCounted frames Sysmon records as RFC 5424 messages, RFC 6587 octet
// counting, as a TLS syslog forwarder sends them.
func octetCounted(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		msg := "<13>1 2026-12-04T10:00:00Z winhost nxlog - - - " + l
		fmt.Fprintf(&b, "%d %s", len(msg), msg)
	}
	return b.String()
}

// run runs a sender; its exit status is only logged, since a refused
// sender may or may not see the refusal as an error.
func run(t *testing.T, stdin string, prog string, args ...string) error {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, out)
	}
	return err
}

// TestSyslogTLS: socat, speaking OpenSSL, sends octet-counted syslog over
// TLS. With ca= a sender with a client certificate signed by it is read
// and one without is refused in the handshake and counted; without ca= no
// client certificate is asked for.
func TestSyslogTLS(t *testing.T) {
	socat := testserver.Need(t, "socat")
	pki := testserver.NewPKI(t)
	lines := sysmonLines(t, 3)
	base := "syslog+tls://127.0.0.1:0?cert=" + pki.ServerCert + "&key=" + pki.ServerKey

	t.Run("client certificates required", func(t *testing.T) {
		// The client certificate is a relay's (outflow-sensor), which may
		// send events of any host.
		src, c, port := listening(t, base+"&ca="+pki.CA+"&relays=outflow-sensor")
		to := "OPENSSL:127.0.0.1:" + port + ",cafile=" + pki.CA
		if err := run(t, octetCounted(lines), socat, "-u", "STDIN", to+",cert="+pki.ClientCert+",key="+pki.ClientKey); err != nil {
			t.Fatal("the sender with a client certificate failed")
		}
		waitFor(t, "3 events", func() bool { return c.n() == 3 })
		run(t, octetCounted(lines), socat, "-u", "STDIN", to)
		waitFor(t, "the sender without a certificate refused", func() bool { return refusedBy(src, ReasonTLS) == 1 })
		if c.n() != 3 {
			t.Errorf("%d events, want the first sender's 3", c.n())
		}
	})
	t.Run("no client certificates", func(t *testing.T) {
		src, c, port := listening(t, base)
		if err := run(t, octetCounted(lines), socat, "-u", "STDIN", "OPENSSL:127.0.0.1:"+port+",cafile="+pki.CA); err != nil {
			t.Fatal("the sender failed")
		}
		waitFor(t, "3 events", func() bool { return c.n() == 3 })
		if st := src.Stats(); len(st.Errors) != 0 {
			t.Errorf("errors %v", st.Errors)
		}
	})
}

// curlPost posts body with curl and returns the HTTP status ("000" when
// there was no answer).
func curlPost(t *testing.T, url, body string, args ...string) string {
	t.Helper()
	curl := testserver.Need(t, "curl")
	f := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@" + f,
		"-H", "Content-Type: application/x-ndjson"}, append(args, url)...)
	out, err := exec.Command(curl, args...).Output()
	if err != nil {
		t.Logf("curl %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// TestHTTPSToken: curl posts NDJSON over TLS; only requests with the
// bearer token are read, the others answered 401 and counted.
func TestHTTPSToken(t *testing.T) {
	pki := testserver.NewPKI(t)
	tokFile := filepath.Join(t.TempDir(), "events.token")
	if err := os.WriteFile(tokFile, []byte("s3cret-token-1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, c, port := listening(t, "https://127.0.0.1:0/events?cert="+pki.ServerCert+"&key="+pki.ServerKey+"&token_file="+tokFile)
	u := "https://127.0.0.1:" + port + "/events"
	body := strings.Join(sysmonLines(t, 20), "\n") + "\n"
	if got := curlPost(t, u, body, "--cacert", pki.CA, "-H", "Authorization: Bearer s3cret-token-1234"); got != "200" {
		t.Fatalf("with the token: status %s", got)
	}
	if c.n() != 20 {
		t.Fatalf("%d events, want 20", c.n())
	}
	if got := curlPost(t, u, body, "--cacert", pki.CA); got != "401" {
		t.Errorf("without a token: status %s, want 401", got)
	}
	if got := curlPost(t, u, body, "--cacert", pki.CA, "-H", "Authorization: Bearer s3cret-token-1235"); got != "401" {
		t.Errorf("with a wrong token: status %s, want 401", got)
	}
	if n := refusedBy(src, ReasonUnauthorized); n != 2 || c.n() != 20 {
		t.Errorf("%d refused, %d events; want 2 and 20", n, c.n())
	}
}

// TestHTTPSClientCert: with ca=, curl with a client certificate is read,
// curl without one fails its handshake, counted.
func TestHTTPSClientCert(t *testing.T) {
	pki := testserver.NewPKI(t)
	src, c, port := listening(t, "https://127.0.0.1:0/?cert="+pki.ServerCert+"&key="+pki.ServerKey+"&ca="+pki.CA+"&relays=outflow-sensor")
	u := "https://127.0.0.1:" + port + "/"
	body := strings.Join(sysmonLines(t, 5), "\n") + "\n"
	if got := curlPost(t, u, body, "--cacert", pki.CA, "--cert", pki.ClientCert, "--key", pki.ClientKey); got != "200" || c.n() != 5 {
		t.Fatalf("with a client certificate: status %s, %d events", got, c.n())
	}
	if got := curlPost(t, u, body, "--cacert", pki.CA); got == "200" {
		t.Errorf("without a client certificate: status %s", got)
	}
	waitFor(t, "the handshake refused", func() bool { return refusedBy(src, ReasonTLS) == 1 })
	if c.n() != 5 {
		t.Errorf("%d events, want 5", c.n())
	}
}

// TestAllowList: listeners allowing 127.0.0.2 only read socat bound to
// 127.0.0.2 and refuse, counting, logger (and curl) from 127.0.0.1.
func TestAllowList(t *testing.T) {
	socat := testserver.Need(t, "socat")
	logger := testserver.Need(t, "logger")
	line := sysmonLines(t, 1)[0]
	msg := "<13>1 2026-12-04T10:00:00Z winhost nxlog - - - " + line
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			src, c, port := listening(t, "syslog+"+proto+"://127.0.0.1:0?allow=10.0.0.0/8,127.0.0.2/32")
			flag, to := "-d", "UDP4-SENDTO:127.0.0.1:"+port
			if proto == "tcp" {
				flag, to = "-T", "TCP4:127.0.0.1:"+port
			}
			run(t, "", logger, "-n", "127.0.0.1", "-P", port, flag, "--rfc5424", "-S", "65536", "-t", "outflow-test", line)
			waitFor(t, "logger refused", func() bool { return refusedBy(src, ReasonNotAllowed) == 1 })
			if err := run(t, msg+"\n", socat, "-u", "STDIN", to+",bind=127.0.0.2"); err != nil {
				t.Fatal("socat from 127.0.0.2 failed")
			}
			waitFor(t, "socat's event", func() bool { return c.n() == 1 })
			if n := refusedBy(src, ReasonNotAllowed); n != 1 {
				t.Errorf("%d refused, want logger's 1", n)
			}
		})
	}
	t.Run("http", func(t *testing.T) {
		src, c, port := listening(t, "http://127.0.0.1:0/?allow=127.0.0.2")
		u := "http://127.0.0.1:" + port + "/"
		if got := curlPost(t, u, line+"\n"); got == "200" {
			t.Errorf("curl from 127.0.0.1: status %s", got)
		}
		waitFor(t, "curl refused", func() bool { return refusedBy(src, ReasonNotAllowed) == 1 })
		if got := curlPost(t, u, line+"\n", "--interface", "127.0.0.2"); got != "200" || c.n() != 1 {
			t.Errorf("curl from 127.0.0.2: status %s, %d events", got, c.n())
		}
	})
}

// TestCheckSourceOptions: CheckSource refuses bad options in a sentence
// naming the option, and takes good ones.
func TestCheckSourceOptions(t *testing.T) {
	pki := testserver.NewPKI(t)
	tok := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tok, []byte("abc\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	tlsOpts := "cert=" + pki.ServerCert + "&key=" + pki.ServerKey
	for _, good := range []string{
		"syslog+udp://:5514?allow=10.0.0.0/8,192.0.2.7/32",
		"syslog+tcp://0.0.0.0:5514?allow=2001:db8::/32,192.0.2.7",
		"syslog+tls://:6514?" + tlsOpts + "&ca=" + pki.CA + "&allow=10.0.0.0/8",
		"https://:8443/events?" + tlsOpts + "&token_file=" + tok,
		"http://:8088/events?token_file=" + tok,
		"https://:8443/events?" + tlsOpts + "&ca=" + pki.CA + "&relays=wec01.corp.example,wec02.corp.example",
	} {
		if err := CheckSource(good); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	for spec, want := range map[string]string{
		"syslog+udp://:5514?allow=10.0.0.0/33":                          "option allow",
		"syslog+udp://:5514?allow=10.0.0.0/8,":                          "option allow",
		"syslog+tcp://:5514?allow=":                                     "option allow: give it a value",
		"syslog+udp://:5514?cert=/x":                                    "option cert: syslog+udp takes none",
		"http://:80/?ca=/x":                                             "option ca: http takes none",
		"syslog+tls://:6514?cert=" + pki.ServerCert:                     "options cert and key",
		"syslog+tls://:6514":                                            "options cert and key",
		"https://:8443/?" + tlsOpts + "&ca=/missing.pem":                "CA file /missing.pem: cannot read it: no such file",
		"https://:8443/?" + tlsOpts + "&ca=" + tok:                      "holds no PEM certificate",
		"https://:8443/?cert=/nope.pem&key=" + pki.ServerKey:            "server certificate /nope.pem",
		"https://:8443/?" + tlsOpts + "&token_file=/missing":            "option token_file: /missing: cannot read it",
		"https://:8443/?" + tlsOpts + "&relays=wec01":                   "option relays: it names client certificates, so it needs ca=",
		"http://:8088/?relays=wec01":                                    "option relays: http takes none",
		"http://:80/?token_file=" + empty:                               "option token_file: " + empty + " holds no token",
		"http://:80/?token_file=" + tok + "&token_file=" + tok:          "option token_file: give it once",
		"syslog+tls://:6514?" + tlsOpts + "&allow=10.0.0.0/8&allow=::1": "option allow: give it once",
		"syslog+tls://?" + tlsOpts:                                      "give a port",
		"syslog+tcp://:5514?a=%zz":                                      "do not parse",
	} {
		err := CheckSource(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", spec, err, want)
		}
	}
}

func TestAllowedAndAuthorized(t *testing.T) {
	allow, err := parseAllow("10.0.0.0/8, 192.0.2.7,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	o := listenOptions{allow: allow}
	for addr, want := range map[string]bool{"10.1.2.3:5": true, "[::ffff:10.1.2.3]:5": true, "192.0.2.7:1": true,
		"192.0.2.8:1": false, "[2001:db8::1]:9": true, "[2001:db9::1]:9": false, "127.0.0.1:1": false} {
		a, _ := net.ResolveTCPAddr("tcp", addr)
		if got := o.allowed(a); got != want {
			t.Errorf("%s: allowed %v", addr, got)
		}
	}
	u, _ := url.Parse("http://:1/")
	if o, err := parseListenOptions(u); err != nil || !o.allowed(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)}) || !o.authorized("") {
		t.Errorf("no options must let everyone in: %v", err)
	}
}

// FuzzAllow: the allow option in any bytes: prefixes or a sentence, never
// a panic, and every prefix it returns is masked.
func FuzzAllow(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8,192.0.2.7/32", "::1", "fe80::1%eth0", "10.0.0.1/8", ",", "::ffff:1.2.3.4/128"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parseAllow(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p != p.Masked() {
				t.Fatalf("%v not masked", p)
			}
		}
	})
}

// TestCertifiedHosts: with ca= a client certificate speaks for its own
// host only. curl with WORKSTATION6's certificate posts the Empire
// fixture's events of three hosts: workstation6's are read, the others
// refused and counted as host_not_certified; a relay's certificate
// (relays=) gets all of them read. socat over syslog+tls the same.
func TestCertifiedHosts(t *testing.T) {
	pki := testserver.NewPKI(t)
	socat := testserver.Need(t, "socat")
	lines := sysmonLines(t, 40)
	body := strings.Join(lines, "\n") + "\n"
	perHost := func(c *collector) map[string]int {
		c.mu.Lock()
		defer c.mu.Unlock()
		m := map[string]int{}
		for _, e := range c.evs {
			m[ShortHost(e.Host)]++
		}
		return m
	}
	// Through a relay, every host's events: the reference.
	_, all, port := listening(t, "https://127.0.0.1:0/?cert="+pki.ServerCert+"&key="+pki.ServerKey+"&ca="+pki.CA+"&relays=OUTFLOW-sensor")
	if got := curlPost(t, "https://127.0.0.1:"+port+"/", body, "--cacert", pki.CA, "--cert", pki.ClientCert, "--key", pki.ClientKey); got != "200" {
		t.Fatalf("relay: status %s", got)
	}
	ref := perHost(all)
	if len(ref) < 2 || ref["workstation6"] == 0 {
		t.Fatalf("the fixture's first 40 events are of %v: want workstation6 and others", ref)
	}
	others := all.n() - ref["workstation6"]

	src, c, port := listening(t, "https://127.0.0.1:0/?cert="+pki.ServerCert+"&key="+pki.ServerKey+"&ca="+pki.CA)
	if got := curlPost(t, "https://127.0.0.1:"+port+"/", body, "--cacert", pki.CA, "--cert", pki.HostCert, "--key", pki.HostKey); got != "200" {
		t.Fatalf("workstation6: status %s", got)
	}
	if got := perHost(c); len(got) != 1 || got["workstation6"] != ref["workstation6"] {
		t.Errorf("https with workstation6's certificate: events %v, want workstation6's %d only", got, ref["workstation6"])
	}
	if n := refusedBy(src, ReasonHostNotCertified); n != uint64(others) {
		t.Errorf("https: %d refused as host_not_certified, want the other hosts' %d", n, others)
	}

	src, c, port = listening(t, "syslog+tls://127.0.0.1:0?cert="+pki.ServerCert+"&key="+pki.ServerKey+"&ca="+pki.CA)
	to := "OPENSSL:127.0.0.1:" + port + ",cafile=" + pki.CA + ",cert=" + pki.HostCert + ",key=" + pki.HostKey
	if err := run(t, octetCounted(lines), socat, "-u", "STDIN", to); err != nil {
		t.Fatal("socat with workstation6's certificate failed")
	}
	waitFor(t, "syslog+tls: every event read or refused", func() bool {
		return c.n()+int(refusedBy(src, ReasonHostNotCertified)) == all.n()
	})
	if got := perHost(c); len(got) != 1 || got["workstation6"] != ref["workstation6"] {
		t.Errorf("syslog+tls with workstation6's certificate: events %v, want workstation6's %d only", got, ref["workstation6"])
	}
}

// TestTokenRotation: the bearer token is the token file's as it is now:
// after the file is replaced with a new token, curl with the new one is
// read and with the old one answered 401, with no restart; a file
// emptied by mistake keeps the token it held.
func TestTokenRotation(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "events.token")
	write := func(tok string) {
		t.Helper()
		tmp := filepath.Join(dir, "new")
		if err := os.WriteFile(tmp, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, tokFile); err != nil { // as a rotation would
			t.Fatal(err)
		}
	}
	write("first-token-0001\n")
	_, c, port := listening(t, "http://127.0.0.1:0/events?token_file="+tokFile)
	u := "http://127.0.0.1:" + port + "/events"
	body := strings.Join(sysmonLines(t, 2), "\n") + "\n"
	post := func(tok string) string { return curlPost(t, u, body, "-H", "Authorization: Bearer "+tok) }
	if got := post("first-token-0001"); got != "200" {
		t.Fatalf("the first token: status %s", got)
	}
	write("second-token-0002\n")
	time.Sleep(1100 * time.Millisecond) // the file is looked at once a second at most
	if got := post("second-token-0002"); got != "200" {
		t.Errorf("the new token after the file was replaced: status %s", got)
	}
	if got := post("first-token-0001"); got != "401" {
		t.Errorf("the old token after the file was replaced: status %s, want 401", got)
	}
	write("\n")
	time.Sleep(1100 * time.Millisecond)
	if got := post("second-token-0002"); got != "200" {
		t.Errorf("after the file was emptied, the token it held: status %s", got)
	}
	if c.n() != 6 {
		t.Errorf("%d events, want 6", c.n())
	}
}
