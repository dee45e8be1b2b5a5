package feed

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// sysmonLines are real records: the Empire fixture's NXLog JSON.
func sysmonLines(t *testing.T, n int) []string {
	raw, err := os.ReadFile(shared.Path(t, "hostlogs/otrf-empire-psremoting/empire_psremoting_stager_2020-09-20170827.subset.json"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return lines[:min(n, len(lines))]
}

type collector struct {
	mu  sync.Mutex
	evs []Event
}

func (c *collector) add(e *Event) { c.mu.Lock(); c.evs = append(c.evs, *e); c.mu.Unlock() }
func (c *collector) n() int       { c.mu.Lock(); defer c.mu.Unlock(); return len(c.evs) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestFollowRotation: a followed file keeps its events across appends, a
// rename-and-recreate rotation and a truncation, as tail -F would.
func TestFollowRotation(t *testing.T) {
	lines := sysmonLines(t, 30)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.json")
	write := func(p string, ls []string, flag int) {
		f, err := os.OpenFile(p, flag|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(strings.Join(ls, "\n") + "\n")
		f.Close()
	}
	write(path, lines[:10], os.O_TRUNC)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c collector
	src := &Source{URL: path}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, c.add, nil) }()
	waitFor(t, "the first 10", func() bool { return c.n() == 10 })
	write(path, lines[10:15], os.O_APPEND)
	waitFor(t, "5 appended", func() bool { return c.n() == 15 })
	// Rotation: the writer renames the file and starts a new one; the
	// last lines of the old one come after the rename.
	os.Rename(path, path+".1")
	write(path+".1", lines[15:18], os.O_APPEND)
	write(path, lines[18:25], os.O_TRUNC)
	waitFor(t, "rotation", func() bool { return c.n() == 25 })
	// Truncation in place, then new lines.
	os.Truncate(path, 0)
	time.Sleep(300 * time.Millisecond)
	write(path, lines[25:30], os.O_APPEND)
	waitFor(t, "after truncation", func() bool { return c.n() == 30 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Events != 30 {
		t.Errorf("stats %+v", st)
	}
}

// TestSyslog: util-linux's logger sends records over UDP and TCP, RFC 5424
// and RFC 3164 framing, and every one comes out as an event.
func TestSyslog(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		shared.Missing(t, "logger (Debian package bsdutils)", err)
	}
	// An auditd record (a connect with its address) and a Windows record
	// (the Empire fixture's first: a Security 5158).
	audit := `type=SYSCALL msg=audit(1492753107.096:9004): arch=c000003e syscall=42 success=no exit=-115 a0=5 items=0 ppid=1 pid=1648 uid=0 comm="google_ip_forwa" exe="/usr/bin/python3.5" key="key=net"`
	saddr := `type=SOCKADDR msg=audit(1492753107.096:9004): saddr=02000050A9FEA9FE0000000000000000`
	sysmon := sysmonLines(t, 1)[0]
	for _, proto := range []string{"udp", "tcp"} {
		for _, rfc := range []string{"--rfc5424", "--rfc3164"} {
			t.Run(proto+rfc, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var c collector
				ready := make(chan net.Addr, 1)
				src := &Source{URL: "syslog+" + proto + "://127.0.0.1:0", Ready: func(a net.Addr) { ready <- a }}
				go src.Run(ctx, c.add, func(e *Error) { t.Logf("%v", e) })
				addr := <-ready
				_, port, _ := net.SplitHostPort(addr.String())
				flag := "-d"
				if proto == "tcp" {
					flag = "-T"
				}
				// One logger run sends the file's lines as messages over
				// one connection, as a forwarding daemon would.
				msgs := filepath.Join(t.TempDir(), "msgs")
				os.WriteFile(msgs, []byte(audit+"\n"+saddr+"\n"+sysmon+"\n"), 0o644)
				out, err := exec.Command("logger", "-n", "127.0.0.1", "-P", port, flag, rfc, "-S", "65536", "-t", "outflow-test", "-f", msgs).CombinedOutput()
				if err != nil {
					t.Fatalf("logger: %v %s", err, out)
				}
				// The audit event is whole once a record of another serial
				// or EOE comes: the Sysmon line comes after it.
				waitFor(t, "2 events", func() bool { return c.n() >= 2 })
				time.Sleep(100 * time.Millisecond)
				c.mu.Lock()
				defer c.mu.Unlock()
				var kinds []string
				for _, e := range c.evs {
					kinds = append(kinds, e.Feed+"/"+e.Kind.String())
				}
				if len(c.evs) != 2 || c.evs[0].Feed != FeedAuditd || c.evs[0].DstPort != 80 || c.evs[1].Feed != FeedSecurity || c.evs[1].EventID != 5158 {
					t.Errorf("events %v: %+v", kinds, c.evs)
				}
			})
		}
	}
}

func TestSyslogMessage(t *testing.T) {
	for in, want := range map[string]string{
		`<13>1 2026-11-22T10:00:00.000Z host app 123 - - hello world`:                                    "hello world",
		`<13>1 2026-11-22T10:00:00Z host app - ID47 [exampleSDID@32473 iut="3" a="x\]y"][b@1 c="d"] msg`: "msg",
		`<13>Nov 22 10:00:00 host app[99]: {"a":1}`:                                                      `{"a":1}`,
		`no header`: "no header",
	} {
		if got, _ := SyslogMessage([]byte(in)); string(got) != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestHTTPPost: NDJSON posted by an HTTP client.
func TestHTTPPost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c collector
	ready := make(chan net.Addr, 1)
	src := &Source{URL: "http://127.0.0.1:0/events", Ready: func(a net.Addr) { ready <- a }}
	go src.Run(ctx, c.add, nil)
	addr := <-ready
	body := strings.Join(sysmonLines(t, 20), "\n") + "\n{broken\n"
	resp, err := http.Post(fmt.Sprintf("http://%s/events", addr), "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || c.n() != 20 {
		t.Fatalf("status %d, %d events", resp.StatusCode, c.n())
	}
	if st := src.Stats(); st.Errors[ReasonJSON] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestKafka: records produced to a topic (franz-go's in-process fake
// cluster, which speaks the Kafka protocol) are consumed as a group.
func TestKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "host-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("host-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	lines := sysmonLines(t, 25)
	for _, l := range lines {
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte(l)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A record may carry several lines.
	if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: bytes.Join([][]byte{[]byte(lines[0]), []byte(lines[1])}, []byte("\n"))}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c collector
	src := &Source{URL: "kafka://" + strings.Join(addrs, ",") + "/host-events?group=test"}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, c.add, nil) }()
	waitFor(t, "27 events", func() bool { return c.n() == 27 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// FuzzSyslogStream: a syslog TCP stream, octet-counted or newline-framed,
// in any bytes: events or counted errors, never a panic or an unbounded
// read.
func FuzzSyslogStream(f *testing.F) {
	f.Add([]byte("<13>1 2026-11-23T10:00:00Z host app - - - " + esxiLines))
	f.Add([]byte("75 <166>1 2021-07-13T14:23:47.500Z esxi01 Vpxa: verbose vpxa[2100101] [x] -- BEGIN\n12 <13>hello\n"))
	f.Add([]byte("99999999999999999999"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader("fuzz")
		readFramed(bufio.NewReaderSize(bytes.NewReader(b), 1<<16), r, func(*Event) {})
		if msg, ok := SyslogMessage(b); ok && len(msg) > len(b) {
			t.Fatal("message longer than its line")
		}
	})
}

// A listener given no host binds loopback only.
func TestLoopbackIfNoHost(t *testing.T) {
	for in, want := range map[string]string{":5514": "127.0.0.1:5514", "0.0.0.0:5514": "0.0.0.0:5514",
		"[::]:2055": "[::]:2055", "192.0.2.1:80": "192.0.2.1:80", "localhost:80": "localhost:80"} {
		if got := LoopbackIfNoHost(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// TestSyslogIdleFlood: more idle connections than the listener holds do
// not keep a real sender (logger) out: the idle ones are closed after
// IdleTimeout, the process's descriptors stay bounded by MaxConns, and the
// real record is read.
func TestSyslogIdleFlood(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		shared.Missing(t, "logger (Debian package bsdutils)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c collector
	ready := make(chan net.Addr, 1)
	src := &Source{URL: "syslog+tcp://127.0.0.1:0", Ready: func(a net.Addr) { ready <- a }, MaxConns: 16, IdleTimeout: 500 * time.Millisecond}
	go src.Run(ctx, c.add, func(e *Error) {})
	addr := <-ready
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	before := fds()
	var idle []net.Conn
	for i := 0; i < 100; i++ { // idle: connect and send nothing
		conn, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, conn)
	}
	defer func() {
		for _, conn := range idle {
			conn.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	// Our 100 client ends plus at most MaxConns accepted server ends.
	if n := fds() - before; n > 100+16+4 {
		t.Errorf("%d descriptors for 100 idle connections with MaxConns 16", n)
	}
	_, port, _ := net.SplitHostPort(addr.String())
	msgs := filepath.Join(t.TempDir(), "msgs")
	os.WriteFile(msgs, []byte(sysmonLines(t, 1)[0]+"\n"), 0o644)
	start := time.Now()
	if out, err := exec.Command("logger", "-n", "127.0.0.1", "-P", port, "-T", "--rfc5424", "-S", "65536", "-t", "outflow-test", "-f", msgs).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v %s", err, out)
	}
	// Behind 100 idle connections, 16 at a time, each closed after 0.5 s
	// of silence: about 3 s; a loaded machine gets 20.
	for deadline := time.Now().Add(20 * time.Second); c.n() < 1; time.Sleep(25 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the real sender's event never came")
		}
	}
	t.Logf("the real record was read %v after it was sent, behind 100 idle connections", time.Since(start).Round(time.Millisecond))
}
