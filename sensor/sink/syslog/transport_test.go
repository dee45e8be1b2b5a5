package syslog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/testserver"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// records makes n JSON lines with ids prefix00000…, text a receiver could
// mangle (non-ASCII, escapes, what looks like a syslog header), and pad
// bytes of padding, so a receiver's copy is compared byte for byte.
func records(prefix string, n, pad int) []sink.Record {
	recs := make([]sink.Record, n)
	for i := range recs {
		v, err := json.Marshal(map[string]any{
			"id":   fmt.Sprintf("%s%05d", prefix, i),
			"note": "é 日本 \"quoted\" back\\slash tab\t <134>1 - [x] 123 ",
			"pad":  strings.Repeat("x", pad),
			"n":    i,
		})
		if err != nil {
			panic(err)
		}
		recs[i] = sink.Record{Value: v}
	}
	return recs
}

// want is what rsyslog must have written for a record.
type want struct {
	hostname, appName, msgID, facility, severity string
}

// check compares what rsyslog wrote with recs, in order, and the header
// fields with w; the timestamps must lie in [from, to].
func check(t *testing.T, got []testserver.Message, recs []sink.Record, w want, from, to time.Time) {
	t.Helper()
	if len(got) != len(recs) {
		t.Fatalf("rsyslog wrote %d messages, want %d", len(got), len(recs))
	}
	pid := strconv.Itoa(os.Getpid())
	from = from.Truncate(time.Microsecond)
	for i, g := range got {
		if g.Msg != string(recs[i].Value) {
			t.Fatalf("message %d: rsyslog wrote MSG of %d bytes %.120q…, want the record's %d bytes %.120q…",
				i, len(g.Msg), g.Msg, len(recs[i].Value), recs[i].Value)
		}
		sev := w.severity
		if sev == "" {
			sev = "info"
		}
		if g.Hostname != w.hostname || g.AppName != w.appName || g.ProcID != pid || g.MsgID != w.msgID ||
			g.Facility != w.facility || g.Severity != sev || g.SD != "-" {
			t.Fatalf("message %d: header %+v, want %+v and procid %s, no structured data", i, g, w, pid)
		}
		ts, err := time.Parse(time.RFC3339Nano, g.Time)
		if err != nil || ts.Before(from) || ts.After(to) {
			t.Fatalf("message %d: rsyslog read the time as %q, not within %v and %v", i, g.Time, from, to)
		}
	}
}

func mustNew(t testing.TB, cfg Config) *Transport {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func send(t *testing.T, tr *Transport, recs []sink.Record) {
	t.Helper()
	n, err := tr.Send(context.Background(), recs)
	if err != nil || n != len(recs) {
		t.Fatalf("Send: %d of %d delivered: %v", n, len(recs), err)
	}
}

// Records sent over UDP, TCP and TLS reach a real rsyslog whole: the MSG
// it writes down is the JSON line byte for byte, in order over a stream,
// and the header fields are what the configuration says, as rsyslog's own
// parser reads them.
func TestRsyslog(t *testing.T) {
	rs := testserver.StartRsyslog(t)
	host, _ := os.Hostname()

	t.Run("udp", func(t *testing.T) {
		tr := mustNew(t, Config{Network: "udp", Addr: rs.Addr(testserver.UDP)})
		// Up to the biggest message a datagram and rsyslog's 64k take;
		// one past MaxDatagram is refused for good, and what follows it
		// goes in the next Send.
		recs := append(records("u", 40, 10), records("U", 1, 60000)...)
		recs = append(recs, records("v", 40, 100)...)
		tooBig := len(recs)
		recs = append(recs, records("X", 1, MaxDatagram)...)
		recs = append(recs, records("w", 5, 0)...)
		from := time.Now()
		n, err := tr.Send(context.Background(), recs)
		var perm *sink.Rejected
		if n != tooBig || !errors.As(err, &perm) || perm.Rejected() != 1 {
			t.Fatalf("Send: %d delivered, %v; want %d and a sink.Rejected for 1 record", n, err, tooBig)
		}
		send(t, tr, recs[tooBig+1:])
		got := rs.Wait(testserver.UDP, len(recs)-1)
		// One datagram each, which rsyslog may take in any order.
		sent := slices.Delete(slices.Clone(recs), tooBig, tooBig+1)
		slices.SortFunc(got, func(a, b testserver.Message) int { return strings.Compare(a.Msg, b.Msg) })
		slices.SortFunc(sent, func(a, b sink.Record) int { return bytes.Compare(a.Value, b.Value) })
		check(t, got, sent, want{host, "outflow", "flow", "local0", ""}, from, time.Now())
	})

	t.Run("tcp", func(t *testing.T) {
		// Options from a URL; a hostname rsyslog could not take as it is.
		cfg, err := ParseURL("syslog+tcp://" + rs.Addr(testserver.TCP) +
			"?facility=local3&msgid=alert&app=outflow-test&hostname=" + url.QueryEscape("sensor one/ü"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Severity = func(r sink.Record) Severity {
			if bytes.Contains(r.Value, []byte(`"id":"big`)) {
				return Warning
			}
			return Notice
		}
		tr := mustNew(t, cfg)
		// Several 64 KiB writes, and a 20 KiB record, past the 2 KiB a
		// receiver must take and the 8 KiB rsyslog takes by default: it
		// arrives whole only if the octet count framed it.
		recs := records("t", 1500, 200)
		big := records("big", 1, 20<<10)
		from := time.Now()
		send(t, tr, recs[:700])
		send(t, tr, big)
		send(t, tr, recs[700:])
		got := rs.Wait(testserver.TCP, len(recs)+1)
		all := slices.Concat(recs[:700], big, recs[700:])
		w := want{"sensor_one/_", "outflow-test", "alert", "local3", "notice"}
		check(t, got[:700], all[:700], w, from, time.Now())
		check(t, got[701:], all[701:], w, from, time.Now())
		w.severity = "warning"
		check(t, got[700:701], big, w, from, time.Now())
	})

	t.Run("tls", func(t *testing.T) {
		cfg, err := ParseURL("syslog+tls://" + rs.Addr(testserver.TLS) + "?ca=" + url.QueryEscape(rs.PKI.CA))
		if err != nil {
			t.Fatal(err)
		}
		tr := mustNew(t, cfg)
		recs := slices.Concat(records("s", 800, 100), records("S", 1, 20<<10), records("s2", 10, 0))
		from := time.Now()
		send(t, tr, recs)
		check(t, rs.Wait(testserver.TLS, len(recs)), recs, want{host, "outflow", "flow", "local0", ""}, from, time.Now())
	})

	t.Run("tls client certificate", func(t *testing.T) {
		tr := mustNew(t, Config{Network: "tls", Addr: rs.Addr(testserver.TLSAuth), CAFile: rs.PKI.CA,
			CertFile: rs.PKI.ClientCert, KeyFile: rs.PKI.ClientKey, MsgID: "alert"})
		recs := records("c", 100, 50)
		from := time.Now()
		send(t, tr, recs)
		check(t, rs.Wait(testserver.TLSAuth, len(recs)), recs, want{host, "outflow", "alert", "local0", ""}, from, time.Now())
	})

	t.Run("tls unknown CA", func(t *testing.T) {
		tr := mustNew(t, Config{Network: "tls", Addr: rs.Addr(testserver.TLS), CAFile: rs.PKI.Other})
		n, err := tr.Send(context.Background(), records("e", 3, 0))
		var perm *sink.Rejected
		if n != 0 || err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Send to a receiver whose certificate another CA signed: %d, %v", n, err)
		}
	})
}

// When rsyslog stops, the next Send fails and delivers nothing, instead
// of writing into the dead connection; once rsyslog is back, the Send
// after connects again, and rsyslog has every record exactly once.
func TestRsyslogRestart(t *testing.T) {
	rs := testserver.StartRsyslog(t)
	host, _ := os.Hostname()
	trs := map[string]*Transport{
		"tcp": mustNew(t, Config{Network: "tcp", Addr: rs.Addr(testserver.TCP)}),
		"tls": mustNew(t, Config{Network: "tls", Addr: rs.Addr(testserver.TLS), CAFile: rs.PKI.CA}),
	}
	from := time.Now()
	for in, tr := range trs {
		send(t, tr, records(in+"a", 200, 30))
		rs.Wait(in, 200)
	}
	rs.Stop()
	for in, tr := range trs {
		n, err := tr.Send(context.Background(), records(in+"b", 200, 30))
		var perm *sink.Rejected
		if n != 0 || err == nil || errors.As(err, &perm) {
			t.Fatalf("%s: Send with rsyslog stopped: %d delivered, %v; want 0 and an error to retry", in, n, err)
		}
		t.Logf("%s, rsyslog stopped: %v", in, err)
	}
	rs.Start()
	for in, tr := range trs {
		send(t, tr, records(in+"b", 200, 30))
		recs := slices.Concat(records(in+"a", 200, 30), records(in+"b", 200, 30))
		got := rs.Wait(in, len(recs))
		check(t, got, recs, want{host, "outflow", "flow", "local0", ""}, from, time.Now())
	}
}

// stuck is a TCP receiver that takes connections and never reads.
func stuck(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []net.Conn)
	go func() {
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				done <- conns
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for _, c := range <-done {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A Send blocked on a receiver that does not read returns when its
// context ends, and after WriteTimeout, with what it delivered so far.
func TestSendBlocked(t *testing.T) {
	recs := records("b", 20000, 500) // 10 MB: more than loopback's buffers
	t.Run("context", func(t *testing.T) {
		tr := mustNew(t, Config{Network: "tcp", Addr: stuck(t)})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		n, err := tr.Send(ctx, recs)
		if n >= len(recs) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Send: %d of %d, %v; want fewer and the context's end", n, len(recs), err)
		}
	})
	t.Run("write timeout", func(t *testing.T) {
		tr := mustNew(t, Config{Network: "tcp", Addr: stuck(t), WriteTimeout: 100 * time.Millisecond})
		n, err := tr.Send(context.Background(), recs)
		if n >= len(recs) || err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("Send: %d of %d, %v; want fewer and a timeout", n, len(recs), err)
		}
	})
}

// Nobody listening: the error is one to retry, and names the receiver.
func TestSendRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := mustNew(t, Config{Network: "tcp", Addr: addr})
	n, err := tr.Send(context.Background(), records("r", 2, 0))
	var perm *sink.Rejected
	if n != 0 || err == nil || errors.As(err, &perm) ||
		err.Error() != "syslog+tcp://"+addr+": cannot connect: connection refused" {
		t.Fatalf("Send: %d, %v", n, err)
	}
}

// A stream's MaxMessage refuses a longer record, after delivering the
// records before it.
func TestStreamMaxMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		var b bytes.Buffer
		b.ReadFrom(c)
		got <- b.Bytes()
	}()
	tr := mustNew(t, Config{Network: "tcp", Addr: ln.Addr().String(), MaxMessage: 1000})
	recs := slices.Concat(records("m", 3, 0), records("M", 1, 1000), records("m2", 1, 0))
	n, err := tr.Send(context.Background(), recs)
	var perm *sink.Rejected
	if n != 3 || !errors.As(err, &perm) || perm.Rejected() != 1 {
		t.Fatalf("Send: %d, %v; want 3 and a sink.Rejected", n, err)
	}
	tr.Close()
	// The three frames arrived, each an octet count and a message.
	b := <-got
	for i := range 3 {
		sp := bytes.IndexByte(b, ' ')
		l, err := strconv.Atoi(string(b[:max(sp, 0)]))
		if sp < 0 || err != nil || len(b) < sp+1+l || !bytes.HasSuffix(b[sp+1:sp+1+l], recs[i].Value) {
			t.Fatalf("frame %d: %.80q", i, b)
		}
		b = b[sp+1+l:]
	}
	if len(b) != 0 {
		t.Fatalf("after 3 frames: %q", b)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Network: "sctp", Addr: "h:1"}, `syslog: network "sctp": want udp, tcp or tls`},
		{Config{Network: "udp", Addr: "h"}, `syslog+udp://h: address "h": want HOST:PORT`},
		{Config{Network: "udp", Addr: "h:1", MaxMessage: MaxDatagram + 1}, "syslog+udp://h:1: MaxMessage 65508: a UDP datagram carries at most 65507 bytes"},
		{Config{Network: "tcp", Addr: "h:1", Facility: "local9"}, `syslog+tcp://h:1: facility "local9": not`},
		{Config{Network: "tcp", Addr: "h:1", CAFile: "/x"}, "syslog+tcp://h:1: TLS settings given for tcp: only tls uses them"},
		{Config{Network: "tls", Addr: "h:1", CAFile: "/nonexistent/ca.pem"}, "syslog+tls://h:1: CA file /nonexistent/ca.pem: cannot read it: no such file or directory"},
		{Config{Network: "tls", Addr: "h:1", CAFile: "config.go"}, "syslog+tls://h:1: CA file config.go: holds no PEM certificate"},
		{Config{Network: "tls", Addr: "h:1", CertFile: "c.pem"}, "syslog+tls://h:1: a client certificate needs both"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// A receiver that closes a connection once it is made (rsyslog, for a
// client without the certificate it wants) gets no record counted as
// delivered: the Send fails, every time.
func TestRsyslogRefusesClient(t *testing.T) {
	rs := testserver.StartRsyslog(t)
	defer func(d time.Duration) { settleMin = d }(settleMin)
	settleMin = 2 * time.Second // rsyslog's refusal, however slow the machine
	tr := mustNew(t, Config{Network: "tls", Addr: rs.Addr(testserver.TLSAuth), CAFile: rs.PKI.CA})
	for range 2 {
		n, err := tr.Send(context.Background(), records("n", 3, 0))
		var perm *sink.Rejected
		if n != 0 || err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), "closed the connection once made") {
			t.Fatalf("Send without the client certificate rsyslog wants: %d delivered, %v", n, err)
		}
	}
	if !strings.Contains(rs.Output(), "peer did not provide a certificate") {
		t.Fatalf("rsyslogd did not say why it refused:\n%s", rs.Output())
	}
}

// frames reads octet-counted frames until the connection ends.
func frames(t *testing.T, b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		l, err := strconv.Atoi(string(b[:max(sp, 0)]))
		if sp < 0 || err != nil || len(b) < sp+1+l {
			t.Fatalf("after %d frames: %.80q", len(out), b)
		}
		out = append(out, b[sp+1:sp+1+l])
		b = b[sp+1+l:]
	}
	return out
}

// Sends share one connection while the receiver keeps it; when the
// receiver closes it between Sends, the next Send connects again, and
// each connection carries whole frames.
func TestStreamConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	tr := mustNew(t, Config{Network: "tcp", Addr: ln.Addr().String()})
	for range 3 {
		send(t, tr, records("k", 10, 20))
	}
	first := <-conns
	// The receiver closes, having read the three Sends' frames.
	first.(*net.TCPConn).CloseWrite()
	var b bytes.Buffer
	first.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	b.ReadFrom(first)
	if n := len(frames(t, b.Bytes())); n != 30 {
		t.Fatalf("first connection carried %d frames, want 30", n)
	}
	first.Close()
	send(t, tr, records("k2", 10, 20))
	tr.Close()
	second := <-conns
	b.Reset()
	b.ReadFrom(second)
	if n := len(frames(t, b.Bytes())); n != 10 {
		t.Fatalf("second connection carried %d frames, want 10", n)
	}
	ln.Close()
	if c, ok := <-conns; ok {
		t.Fatalf("a third connection, from %v", c.RemoteAddr())
	}
}
