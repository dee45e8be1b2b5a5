package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The inputs of an Rsyslog, each with its own port and file.
const (
	UDP = "udp" // imudp
	TCP = "tcp" // imtcp, plain; octet-counted and LF-framed messages alike
	TLS = "tls" // imtcp over gtls, any client
	// TLSAuth is imtcp over gtls wanting a client certificate the PKI's
	// CA signed.
	TLSAuth = "tlsauth"
)

var inputs = []string{UDP, TCP, TLS, TLSAuth}

// Rsyslog is a real rsyslogd, run as a child with its own configuration
// and work directory, listening on 127.0.0.1 with every input. Each input
// writes what it receives to its own file, one line per message:
//
//	HOSTNAME APP-NAME PROCID MSGID FACILITY SEVERITY TIMESTAMP SD MSG
//
// as rsyslog's own parser read the message.
type Rsyslog struct {
	// PKI made the server's certificate; clients verify it with PKI.CA.
	PKI   *PKI
	t     testing.TB
	bin   string
	dir   string
	ports map[string]int // 0 until chosen
	proc  *child
}

// NewRsyslog prepares an rsyslogd, not started: Start starts it, and it is
// stopped when the test ends. rsyslog's TLS driver is a package of its own
// (rsyslog-gnutls); without it the test skips, or fails in CI.
func NewRsyslog(t testing.TB) *Rsyslog {
	t.Helper()
	bin := Need(t, "rsyslogd")
	gtls, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
	more, _ := filepath.Glob("/usr/lib*/rsyslog/lmnsd_gtls.so")
	if len(gtls)+len(more) == 0 {
		Missing(t, "rsyslog's TLS driver lmnsd_gtls.so (Debian package rsyslog-gnutls)")
	}
	r := &Rsyslog{PKI: NewPKI(t), t: t, bin: bin, dir: t.TempDir(), ports: map[string]int{}}
	t.Cleanup(r.Stop)
	return r
}

// StartRsyslog is NewRsyslog and Start.
func StartRsyslog(t testing.TB) *Rsyslog {
	t.Helper()
	r := NewRsyslog(t)
	r.Start()
	return r
}

func (r *Rsyslog) path(name string) string { return filepath.Join(r.dir, name) }

// Addr is the loopback address of an input (UDP, TCP, TLS, TLSAuth), the
// same across restarts. Asked before the first Start, it chooses a free
// port then (see FreePort), so a client can be pointed at a server that is
// not up yet; otherwise the kernel chose the TCP ports at the first start.
func (r *Rsyslog) Addr(input string) string {
	r.t.Helper()
	if r.ports[input] == 0 {
		network := "tcp"
		if input == UDP {
			network = "udp"
		}
		r.ports[input] = FreePort(r.t, network)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.ports[input]))
}

// config is rsyslog's configuration. A TCP input without a port yet gets
// port 0 and writes the kernel's choice to a file.
func (r *Rsyslog) config() string {
	port := func(in string) string { return strconv.Itoa(r.ports[in]) }
	var b strings.Builder
	fmt.Fprintf(&b, `global(workDirectory=%q maxMessageSize="64k" net.enableDNS="off")
main_queue(queue.workerThreads="1")
module(load="imudp")
module(load="imtcp")
template(name="out" type="list") {
  property(name="hostname") constant(value=" ")
  property(name="app-name") constant(value=" ")
  property(name="procid") constant(value=" ")
  property(name="msgid") constant(value=" ")
  property(name="syslogfacility-text") constant(value=" ")
  property(name="syslogseverity-text") constant(value=" ")
  property(name="timereported" dateFormat="rfc3339") constant(value=" ")
  property(name="structured-data") constant(value=" ")
  property(name="msg") constant(value="\n")
}
`, r.path("work"))
	for _, in := range inputs {
		fmt.Fprintf(&b, "ruleset(name=%q) { action(type=\"omfile\" file=%q template=\"out\") }\n", in, r.path(in+".log"))
	}
	fmt.Fprintf(&b, "input(type=\"imudp\" address=\"127.0.0.1\" port=%q rcvbufSize=\"8m\" ruleset=%q)\n", port(UDP), UDP)
	fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=%q listenPortFileName=%q ruleset=%q)\n",
		port(TCP), r.path(TCP+".port"), TCP)
	for _, in := range []string{TLS, TLSAuth} {
		auth := "anon"
		if in == TLSAuth {
			auth = "x509/certvalid"
		}
		fmt.Fprintf(&b, `input(type="imtcp" address="127.0.0.1" port=%q listenPortFileName=%q ruleset=%q
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode=%q
  streamDriver.caFile=%q streamDriver.certFile=%q streamDriver.keyFile=%q)
`, port(in), r.path(in+".port"), in, auth, r.PKI.CA, r.PKI.ServerCert, r.PKI.ServerKey)
	}
	return b.String()
}

// Start runs rsyslogd and waits until every input listens, failing the
// test when it does not within 30 s. After a Stop, it listens on the same
// ports again; the files keep what was received before.
func (r *Rsyslog) Start() {
	t := r.t
	t.Helper()
	if r.proc != nil {
		t.Fatal("rsyslogd is running already")
	}
	if r.ports[UDP] == 0 {
		r.Addr(UDP)
	}
	for _, in := range inputs[1:] {
		os.Remove(r.path(in + ".port"))
	}
	if err := os.MkdirAll(r.path("work"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := r.path("rsyslog.conf")
	if err := os.WriteFile(conf, []byte(r.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := startChild(r.bin, []string{"-n", "-f", conf, "-i", r.path("rsyslogd.pid")}, r.path("rsyslogd.out"))
	if err != nil {
		t.Fatal(err)
	}
	r.proc = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := r.listening()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if p.exited() {
			r.proc = nil
			t.Fatalf("rsyslogd exited at start:\n%s", r.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd does not listen on every input after 30 s:\n%s", r.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listening says whether every input is up: its port, if rsyslog chose
// it, written down, and bound (UDP) or listened on (TCP) by rsyslogd.
func (r *Rsyslog) listening() (bool, error) {
	for _, in := range inputs[1:] {
		if r.ports[in] != 0 {
			continue
		}
		b, err := os.ReadFile(r.path(in + ".port"))
		if err != nil {
			return false, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || n == 0 {
			return false, nil
		}
		r.ports[in] = n
	}
	for _, in := range inputs {
		proto, state := "tcp", "0A" // LISTEN
		if in == UDP {
			proto, state = "udp", "07" // a bound UDP socket
		}
		if ok, err := listens(r.proc.pid(), proto, state, r.ports[in]); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// Stop ends rsyslogd (SIGTERM, which writes out what it holds) and waits
// for it. Stopping a stopped server does nothing.
func (r *Rsyslog) Stop() {
	if r.proc == nil {
		return
	}
	r.proc.stop(syscall.SIGTERM)
	r.proc = nil
}

// Output is what rsyslogd said on stdout and stderr, for failure messages.
func (r *Rsyslog) Output() string {
	b, _ := os.ReadFile(r.path("rsyslogd.out"))
	return string(b)
}

// Message is one message as rsyslog wrote it down; "-" stands for a field
// the message left out (NILVALUE).
type Message struct {
	Hostname, AppName, ProcID, MsgID, Facility, Severity, Time, SD, Msg string
}

// Read returns the messages an input's file holds so far, failing the test
// when a line is not what the template writes.
func (r *Rsyslog) Read(input string) []Message {
	r.t.Helper()
	b, err := os.ReadFile(r.path(input + ".log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	got, err := ParseMessages(b)
	if err != nil {
		r.t.Fatalf("%s.log: %v", input, err)
	}
	return got
}

// Wait returns the messages an input's file holds once it holds n or
// more, failing the test when it does not within a minute.
func (r *Rsyslog) Wait(input string, n int) []Message {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := r.Read(input)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s.log holds %d messages, not %d, after a minute\nrsyslogd said:\n%s", input, len(got), n, r.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ParseMessages reads the lines an Rsyslog input's file holds. A last line
// without its newline is still being written and is left out.
func ParseMessages(b []byte) ([]Message, error) {
	var got []Message
	for n := 1; ; n++ {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return got, nil
		}
		line := string(b[:i])
		b = b[i+1:]
		f := strings.SplitN(line, " ", 9)
		if len(f) != 9 {
			return got, fmt.Errorf("line %d: %.80q is not what the template writes", n, line)
		}
		got = append(got, Message{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]})
	}
}
