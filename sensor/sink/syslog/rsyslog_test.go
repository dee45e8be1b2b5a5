package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rsyslogd is a real rsyslog, run as a child with its own configuration
// and work directory, listening on loopback: UDP, TCP, TLS (anonymous
// clients) and TLS that wants a client certificate. Each input writes
// what it receives to its own file, one line per message:
//
//	HOSTNAME APP-NAME PROCID MSGID FACILITY SEVERITY TIMESTAMP SD MSG
type rsyslogd struct {
	t     *testing.T
	bin   string
	dir   string
	pki   *pki
	ports map[string]int // udp, tcp, tls, tlsauth; 0 until the first start
	cmd   *exec.Cmd
	done  chan struct{}
}

// inputs are the listeners, by the name of their file and port.
var inputs = []string{"udp", "tcp", "tls", "tlsauth"}

func startRsyslog(t *testing.T) *rsyslogd {
	t.Helper()
	bin := need(t, "rsyslogd")
	// rsyslog's TLS driver is a package of its own, rsyslog-gnutls.
	gtls, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
	more, _ := filepath.Glob("/usr/lib*/rsyslog/lmnsd_gtls.so")
	if len(gtls)+len(more) == 0 {
		missing(t, "rsyslog's TLS driver lmnsd_gtls.so")
	}
	r := &rsyslogd{t: t, bin: bin, dir: t.TempDir(), pki: newPKI(t), ports: map[string]int{}}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslogd) path(name string) string { return filepath.Join(r.dir, name) }

// addr is the loopback address of an input.
func (r *rsyslogd) addr(input string) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.ports[input]))
}

// config is rsyslog's configuration: the TCP ports are the kernel's
// choice at the first start (rsyslog writes them to a file) and the same
// at a restart; the UDP port is one found free.
func (r *rsyslogd) config() string {
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
	fmt.Fprintf(&b, "input(type=\"imudp\" address=\"127.0.0.1\" port=%q rcvbufSize=\"8m\" ruleset=\"udp\")\n", port("udp"))
	fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=%q listenPortFileName=%q ruleset=\"tcp\")\n",
		port("tcp"), r.path("tcp.port"))
	for _, in := range []string{"tls", "tlsauth"} {
		auth := "anon"
		if in == "tlsauth" {
			auth = "x509/certvalid"
		}
		fmt.Fprintf(&b, `input(type="imtcp" address="127.0.0.1" port=%q listenPortFileName=%q ruleset=%q
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode=%q
  streamDriver.caFile=%q streamDriver.certFile=%q streamDriver.keyFile=%q)
`, port(in), r.path(in+".port"), in, auth, r.pki.CA, r.pki.ServerCert, r.pki.ServerKey)
	}
	return b.String()
}

// start runs rsyslogd and waits until every input listens.
func (r *rsyslogd) start() {
	t := r.t
	t.Helper()
	if r.ports["udp"] == 0 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.ports["udp"] = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
	}
	for _, in := range inputs[1:] {
		os.Remove(r.path(in + ".port"))
	}
	os.MkdirAll(r.path("work"), 0o700)
	conf := r.path("rsyslog.conf")
	if err := os.WriteFile(conf, []byte(r.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(r.path("rsyslogd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	r.cmd = exec.Command(r.bin, "-n", "-f", conf, "-i", r.path("rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("cannot start rsyslogd: %v", err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	deadline := time.Now().Add(30 * time.Second)
	for !r.listening() {
		select {
		case <-r.done:
			t.Fatalf("rsyslogd exited at start:\n%s", r.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd does not listen after 30 s:\n%s", r.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listening says whether every input is up: its port, written by
// rsyslog at the first start, is bound (UDP) or listened on (TCP), as
// /proc/net says. Binding the port ourselves to find out could take it
// from rsyslog at the wrong moment.
func (r *rsyslogd) listening() bool {
	for _, in := range inputs[1:] {
		if r.ports[in] != 0 {
			continue
		}
		b, err := os.ReadFile(r.path(in + ".port"))
		if err != nil {
			return false
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || n == 0 {
			return false
		}
		r.ports[in] = n
	}
	for _, in := range inputs {
		proto, state := "tcp", "0A" // LISTEN
		if in == "udp" {
			proto, state = "udp", "07" // a bound UDP socket
		}
		if !bound(r.t, proto, state, r.ports[in]) {
			return false
		}
	}
	return true
}

// bound says whether /proc/net/PROTO has a socket of 127.0.0.1:port in
// state (hex, as the kernel writes it).
func bound(t *testing.T, proto, state string, port int) bool {
	b, err := os.ReadFile("/proc/net/" + proto)
	if err != nil {
		t.Fatalf("cannot tell whether rsyslogd listens: %v", err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[3] == state {
			return true
		}
	}
	return false
}

// stop ends rsyslogd (SIGTERM) and waits for it.
func (r *rsyslogd) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

func (r *rsyslogd) output() string {
	b, _ := os.ReadFile(r.path("rsyslogd.out"))
	return string(b)
}

// received is one message as rsyslog wrote it down.
type received struct {
	Hostname, AppName, ProcID, MsgID, Facility, Severity, Time, SD, Msg string
}

// wait returns the messages an input's file holds once it holds n,
// failing the test when it does not within a minute.
func (r *rsyslogd) wait(input string, n int) []received {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := r.read(input)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s.log holds %d messages, not %d, after a minute\nrsyslogd said:\n%s", input, len(got), n, r.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rsyslogd) read(input string) []received {
	r.t.Helper()
	b, err := os.ReadFile(r.path(input + ".log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	// A line still being written is not read yet.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var got []received
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 9)
		if len(f) != 9 {
			r.t.Fatalf("%s.log: line %q is not what the template writes", input, line)
		}
		got = append(got, received{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]})
	}
	return got
}
