//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/feed"
)

// e2eSeq tells apart the namespaces of runs in one test process
// (-count=3).
var e2eSeq atomic.Uint32

// e2eLink is the test's link: a client and a server namespace joined by a
// veth pair, with one IPv4 address at each end, loopback, and nothing
// else. IPv6 is off and the neighbours are static, so the only frames on
// the link are the test's own connections: what the sensor, softflowd and
// tcpdump capture there is exactly the traffic the test made.
type e2eLink struct {
	clientNS, serverNS   string
	clientIf, serverIf   string
	client, server       netip.Addr
	clientMAC, serverMAC string
}

func e2eNewLink(t *testing.T) *e2eLink {
	t.Helper()
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, e2eSeq.Add(1)%100)
	l := &e2eLink{
		clientNS: "ofrun-c" + id, serverNS: "ofrun-s" + id,
		clientIf: "ofrunc" + id, serverIf: "ofruns" + id,
		// The client is the home network's, the server outside it.
		client: netip.MustParseAddr("10.81.0.2"), server: netip.MustParseAddr("198.51.100.30"),
		clientMAC: "02:0f:81:00:00:02", serverMAC: "02:0f:81:00:00:30",
	}
	for _, ns := range []string{l.clientNS, l.serverNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		// Devices moved in later take the namespace's defaults.
		run(t, "ip", "netns", "exec", ns, "sh", "-c",
			"echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6")
	}
	run(t, "ip", "link", "add", l.clientIf, "address", l.clientMAC, "type", "veth", "peer", "name", l.serverIf, "address", l.serverMAC)
	run(t, "ip", "link", "set", l.clientIf, "netns", l.clientNS)
	run(t, "ip", "link", "set", l.serverIf, "netns", l.serverNS)
	for _, e := range []struct {
		ns, dev    string
		addr, peer netip.Addr
		peerMAC    string
	}{
		{l.clientNS, l.clientIf, l.client, l.server, l.serverMAC},
		{l.serverNS, l.serverIf, l.server, l.client, l.clientMAC},
	} {
		run(t, "ip", "netns", "exec", e.ns, "sh", "-c", "echo 1 >/proc/sys/net/ipv6/conf/"+e.dev+"/disable_ipv6")
		run(t, "ip", "-n", e.ns, "addr", "add", e.addr.String()+"/24", "dev", e.dev)
		run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", e.ns, "link", "set", e.dev, "mtu", "1500", "up")
		run(t, "ip", "-n", e.ns, "route", "add", e.peer.String()+"/32", "dev", e.dev)
		run(t, "ip", "-n", e.ns, "neigh", "replace", e.peer.String(), "lladdr", e.peerMAC, "dev", e.dev, "nud", "permanent")
		// Frames of at most the MTU, as on a wire (ethtool is optional:
		// with offloads on, the sensor and tcpdump see the same large
		// frames, and the comparison holds all the same).
		exec.Command("ip", "netns", "exec", e.ns, "ethtool", "-K", e.dev, "tso", "off", "gso", "off", "gro", "off").Run()
	}
	return l
}

// e2eStart starts a long-running command, stopped (SIGKILL) and reaped at
// the end of the test if it is still running. Its stderr is collected.
type e2eProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

func e2eStart(t *testing.T, name string, args ...string) *e2eProc {
	t.Helper()
	p := &e2eProc{cmd: exec.Command(name, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *e2eProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to d for the process to exit.
func (p *e2eProc) stop(t *testing.T, sig syscall.Signal, d time.Duration) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v of %v:\n%s", p.cmd.Path, d, sig, p.stderr.String())
		return nil
	}
}

// e2eNginx runs Debian's nginx in the server namespace from a config of
// its own in dir: files under www are served, and PUT under /up/ stores
// the body (the DAV module), so curl -T is a real upload.
func e2eNginx(t *testing.T, l *e2eLink, dir string) (www string) {
	t.Helper()
	www = filepath.Join(dir, "www")
	for _, d := range []string{www, filepath.Join(www, "up"), filepath.Join(dir, "temp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(www, "ready.txt"), []byte("ok\n"), 0o644)
	conf := filepath.Join(dir, "nginx.conf")
	temp := filepath.Join(dir, "temp")
	os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  server {
    listen %[3]s:80;
    root %[4]s;
    client_max_body_size 64m;
    location /up/ {
      dav_methods PUT;
    }
  }
}
`, dir, temp, l.server, www)), 0o644)
	p := e2eStart(t, "ip", "netns", "exec", l.serverNS, "taskset", "-c", "0", "nginx", "-e", filepath.Join(dir, "error.log"), "-c", conf)
	// Asked from inside the server's namespace, the server's own address
	// is reached over loopback: the link stays quiet.
	waitFor(t, 10*time.Second, "nginx to answer", func() bool {
		if p.exited() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s%s", p.err, p.stderr.String(), b)
		}
		return exec.Command("ip", "netns", "exec", l.serverNS, "curl", "-sf", "-o", "/dev/null", "--max-time", "2",
			"http://"+l.server.String()+"/ready.txt").Run() == nil
	})
	return www
}

// e2eCurl is one curl run in the client namespace: its pid and source
// port, told to the sensor in host events.
type e2eCurl struct {
	name string
	pid  int
	port int
	args []string // argv, as the host events give its command line
	dest string   // the Host the request names
}

// e2eClient runs curls in the client namespace and writes, for each, the
// process and connect events an endpoint agent would, to the host-event
// file the sensor follows.
//
// curl and nginx run on CPU 0. Every packet socket on the link gets every
// frame, but a CPU hands a frame to the sockets one after the other: when
// two CPUs send frames of one connection at once, the sensor's socket and
// tcpdump's may get them in different orders, and a segment out of order
// in one capture changes that capture's record (its history gains a T, a
// retransmission, that the other's lacks). With both ends on one CPU, the
// link's frames are handed over one at a time, in one order for every
// socket, and the sensor's records can be held equal to the replay of
// tcpdump's capture.
type e2eClient struct {
	l      *e2eLink
	events string
	curl   string // curl's path, the image the events give
}

// do runs curl from the given source port with args (before the URL) on
// path; host, when set, is sent as the Host header.
func (c *e2eClient) do(t *testing.T, name string, port int, host, path string, args ...string) *e2eCurl {
	t.Helper()
	argv := append([]string{c.curl, "-sS", "-f", "-o", "/dev/null", "--local-port", fmt.Sprint(port), "--limit-rate", "30M"}, args...)
	dest := c.l.server.String()
	if host != "" {
		argv = append(argv, "-H", "Host: "+host)
		dest = host
	}
	argv = append(argv, "http://"+c.l.server.String()+path)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.l.clientNS, "taskset", "-c", "0"}, argv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// ip netns exec and taskset exec the program: the pid is curl's. The events go
	// out as it starts, as an agent's would; the sensor's follower reads
	// them within 200 ms, long before the flow's record is written.
	cu := &e2eCurl{name: name, pid: cmd.Process.Pid, port: port, args: argv, dest: dest}
	c.write(t, cu, start)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v: %v\n%s", name, strings.Join(argv, " "), err, out.String())
	}
	return cu
}

func (c *e2eClient) write(t *testing.T, cu *e2eCurl, at time.Time) {
	t.Helper()
	cmdline := strings.Join(cu.args, " ")
	proc := feed.Event{Kind: feed.KindProcessStart, Time: at, Host: "ofrun-client", Feed: "e2e", PID: int64(cu.pid),
		PPID: int64(os.Getpid()), Image: c.curl, Command: cmdline, User: "root"}
	conn := feed.Event{Kind: feed.KindConnect, Time: at.Add(time.Millisecond), Host: "ofrun-client", Feed: "e2e",
		PID: int64(cu.pid), PPID: int64(os.Getpid()), Image: c.curl, Command: cmdline, User: "root",
		Proto: 6, Src: c.l.client, SrcPort: uint16(cu.port), Dst: c.l.server, DstPort: 80, Initiated: true, HasSrcPort: true}
	line := feed.AppendRecord(nil, &proc)
	line = feed.AppendRecord(line, &conn)
	f, err := os.OpenFile(c.events, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(line); err != nil {
		t.Fatal(err)
	}
}

// e2eFlow is what the test reads of a flow record.
type e2eFlow struct {
	TS          time.Time `json:"ts"`
	Proto       string    `json:"proto"`
	OrigH       string    `json:"orig_h"`
	OrigP       int       `json:"orig_p"`
	RespH       string    `json:"resp_h"`
	RespP       int       `json:"resp_p"`
	OrigPkts    uint64    `json:"orig_pkts"`
	RespPkts    uint64    `json:"resp_pkts"`
	OrigIPBytes uint64    `json:"orig_ip_bytes"`
	RespIPBytes uint64    `json:"resp_ip_bytes"`
	OrigBytes   *uint64   `json:"orig_bytes"`
	RespBytes   *uint64   `json:"resp_bytes"`
	MissedBytes *uint64   `json:"missed_bytes"`
	History     *string   `json:"history"`
	State       *string   `json:"state"`
	Final       bool      `json:"final"`
	CommunityID string    `json:"community_id"`
	Observed    *bool     `json:"observed_payload"`
	OrigProcess *struct {
		PID         int64  `json:"pid"`
		Image       string `json:"image"`
		Name        string `json:"name"`
		CommandLine string `json:"command_line"`
		Feed        string `json:"feed"`
	} `json:"orig_process"`
	file string
}

// captured: a record of the capture (observed_payload absent or true),
// not of an export.
func (f *e2eFlow) captured() bool { return f.Observed == nil || *f.Observed }

func (f *e2eFlow) key() string {
	return fmt.Sprintf("%s %s:%d > %s:%d", f.Proto, f.OrigH, f.OrigP, f.RespH, f.RespP)
}

func (f *e2eFlow) String() string {
	s := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	u := func(p *uint64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%s pkts %d/%d ip %d/%d payload %s/%s missed %s history %s state %s final %v cid %s (%s)", f.key(),
		f.OrigPkts, f.RespPkts, f.OrigIPBytes, f.RespIPBytes, u(f.OrigBytes), u(f.RespBytes), u(f.MissedBytes),
		s(f.History), s(f.State), f.Final, f.CommunityID, filepath.Base(f.file))
}

// e2eLines reads the complete lines of a JSON-lines file that may be
// being written (a last line without its newline is left for later); a
// missing file has none.
func e2eLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	return out
}

// e2eFlows reads the flow records of the files, in order.
func e2eFlows(t *testing.T, paths ...string) []*e2eFlow {
	t.Helper()
	var out []*e2eFlow
	for _, p := range paths {
		for _, l := range e2eLines(t, p) {
			f := &e2eFlow{file: p}
			if err := json.Unmarshal(l, f); err != nil {
				t.Fatalf("%s: not a flow record: %v: %s", p, err, l)
			}
			out = append(out, f)
		}
	}
	return out
}

// e2eAlert is an alert line with the file it was read from.
type e2eAlert struct {
	detect.Alert
	line string
	file string
}

func e2eAlerts(t *testing.T, paths ...string) []*e2eAlert {
	t.Helper()
	var out []*e2eAlert
	for _, p := range paths {
		for _, l := range e2eLines(t, p) {
			a := &e2eAlert{line: string(l), file: p}
			if err := json.Unmarshal(l, &a.Alert); err != nil {
				t.Fatalf("%s: not an alert: %v: %s", p, err, l)
			}
			out = append(out, a)
		}
	}
	return out
}

// threshold is the alert's evidence.thresholds[key] as a number.
func (a *e2eAlert) threshold(key string) float64 {
	v, _ := a.Evidence.Thresholds[key].(float64)
	return v
}

// e2eFind returns the capture record of the client's source port.
func e2eFind(flows []*e2eFlow, port int) *e2eFlow {
	for _, f := range flows {
		if f.captured() && f.Proto == "tcp" && f.OrigP == port {
			return f
		}
	}
	return nil
}

// e2eUploadFile writes a file of n bytes of text for curl to upload.
func e2eUploadFile(t *testing.T, path string, n int) {
	t.Helper()
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "outflow run end-to-end test, upload line %09d\n", i)
	}
	if err := os.WriteFile(path, b.Bytes()[:n], 0o644); err != nil {
		t.Fatal(err)
	}
}
