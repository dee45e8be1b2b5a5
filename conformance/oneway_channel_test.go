package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/internal/testserver"
)

// TestOneWayChannels records real one-way traffic on loopback with tcpdump
// and replays it under the detection lab's config (issue 15): an `openssl
// enc` stream sent with socat over UDP and over TCP, the peer sending
// nothing back, raises DET0143 at high (no handshake, a port with no
// profile, out/in infinite); a one-way syslog stream (logger to a real
// rsyslogd) and a gzip'd file over TCP, one-way too, stay quiet. The
// volumes the alerts measure are the bytes openssl wrote, and the
// receivers' copies show every byte arrived.
func TestOneWayChannels(t *testing.T) {
	if os.Geteuid() != 0 {
		testserver.Missing(t, "root (tcpdump captures on lo)")
	}
	for _, p := range []string{"tcpdump", "socat", "openssl", "logger", "gzip"} {
		testserver.Need(t, p)
	}
	rs := testserver.StartRsyslog(t)
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }

	// The cipher stream: openssl enc of a text file, as an attacker's
	// channel would carry it. The near miss: gzip of the same kind of text.
	var text bytes.Buffer
	for i := 0; text.Len() < 192<<10; i++ {
		fmt.Fprintf(&text, "%06d quarterly figures, region %d, account %d: %d units\n", i, i%17, i*7919%100003, i*31%977)
	}
	owWriteFile(t, at("plain.txt"), text.Bytes())
	owRun(t, "openssl", "enc", "-aes-256-ctr", "-pbkdf2", "-pass", "pass:outflow-lab", "-in", at("plain.txt"), "-out", at("enc.bin"))
	// Over UDP a smaller one: socat sends as fast as it reads, and all of
	// it must fit the receiver's socket buffer (net.core.rmem_default)
	// for none to be lost.
	owWriteFile(t, at("plain-udp.txt"), text.Bytes()[:48<<10])
	owRun(t, "openssl", "enc", "-aes-256-ctr", "-pbkdf2", "-pass", "pass:outflow-lab", "-in", at("plain-udp.txt"), "-out", at("udp.bin"))
	gz, err := exec.Command("gzip", "-9c", at("plain.txt")).Output()
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	owWriteFile(t, at("plain.txt.gz"), gz)
	encSize, udpSize := owFileSize(t, at("enc.bin")), owFileSize(t, at("udp.bin"))

	// Only the test's traffic: other tests may be busy on lo.
	host, port, _ := strings.Cut(rs.Addr(testserver.UDP), ":")
	pcap := at("oneway.pcap")
	stopCapture := owStartTcpdump(t, pcap, "host 127.0.0.2 or udp port "+port)

	udpPort := testserver.FreePort(t, "udp")
	tcpPort := testserver.FreePort(t, "tcp")
	gzPort := testserver.FreePort(t, "tcp")
	// UDP: the receiver keeps what arrives and never answers.
	recv := owStart(t, "socat", "-u", fmt.Sprintf("UDP-RECV:%d,bind=127.0.0.1", udpPort), "CREATE:"+at("udp.out"))
	owWaitListening(t, "udp", udpPort)
	owRun(t, "socat", "-u", "-b", "1400", "OPEN:"+at("udp.bin"), fmt.Sprintf("UDP-SENDTO:127.0.0.1:%d,bind=127.0.0.2", udpPort))
	owWaitSize(t, at("udp.out"), udpSize)
	owStop(recv)
	// TCP: the server reads and says nothing; the client sends and closes.
	for _, c := range []struct {
		port int
		file string
	}{{tcpPort, "enc.bin"}, {gzPort, "plain.txt.gz"}} {
		srv := owStart(t, "socat", "-u", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", c.port), "CREATE:"+at(c.file+".out"))
		owWaitListening(t, "tcp", c.port)
		owRun(t, "socat", "-u", "OPEN:"+at(c.file), fmt.Sprintf("TCP:127.0.0.1:%d,bind=127.0.0.2", c.port))
		if err := srv.Wait(); err != nil {
			t.Fatalf("socat server on %d: %v", c.port, err)
		}
		if got, want := owFileSize(t, at(c.file+".out")), owFileSize(t, at(c.file)); got != want {
			t.Fatalf("the TCP server received %d bytes of %s, %d sent", got, c.file, want)
		}
	}
	// Syslog: logger's RFC 5424 messages to rsyslogd's UDP input, one
	// socket, nothing back.
	lines := strings.Repeat("backup job finished: 1204 files, 0 errors, took 31 s\n", 120)
	lg := exec.Command("logger", "--udp", "--rfc5424", "--server", host, "--port", port, "-t", "backupd")
	lg.Stdin = strings.NewReader(lines)
	if out, err := lg.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
	rs.Wait(testserver.UDP, 120)
	stopCapture()

	cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	home := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.SetHomeNets(home)
	alerts, _ := replayAlerts(t, options{files: []string{pcap}, table: inspectConfig(), detect: cfg, homeNets: home})
	want := map[uint16]string{uint16(udpPort): "UDP", uint16(tcpPort): "TCP"}
	for _, a := range alerts {
		proto, ok := want[a.Destination.Port]
		if !ok || a.Analytic != "DET0143" {
			t.Errorf("unexpected: %s %s: %s", a.Analytic, a.Severity, a.Title)
			continue
		}
		delete(want, a.Destination.Port)
		m := a.Evidence.Measured
		if a.Severity != detect.High || m["one_way"] != true || m["out_in_ratio"] != nil || m["in_bytes"] != float64(0) ||
			!strings.Contains(m["asymmetry"].(string), "infinite") {
			t.Errorf("%s: %s, measured %v", proto, a.Severity, m)
		}
		if wrote := map[string]int64{"UDP": udpSize, "TCP": encSize}[proto]; m["out_bytes"] != float64(wrote) {
			t.Errorf("%s: out_bytes %v, openssl enc wrote %d", proto, m["out_bytes"], wrote)
		}
		if !strings.Contains(a.Title, "sent one-way encrypted payload") || !strings.Contains(a.Title, proto+" port") {
			t.Errorf("%s: title %q", proto, a.Title)
		}
	}
	for port, proto := range want {
		t.Errorf("no alert for the one-way %s cipher stream to port %d", proto, port)
	}
}

// owStartTcpdump captures loopback packets that pass filter into path until the returned
// function is called; that waits for the file to stop growing, so every
// packet of the traffic before is in it, and checks the kernel dropped none.
func owStartTcpdump(t *testing.T, path, filter string) func() {
	t.Helper()
	cmd := exec.Command("tcpdump", "-i", "lo", "--immediate-mode", "-B", "32768", "-U", "-n", "-s", "0", "-w", path, filter)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	said := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			said <- sc.Text()
		}
		close(said)
	}()
	for l := range said {
		if strings.Contains(l, "listening on") {
			break
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return func() {
		t.Helper()
		// Immediate mode hands each packet over as it comes; the file
		// still growing means some are on their way.
		last, same := int64(-1), 0
		for i := 0; i < 600 && same < 5; i++ {
			if n := owFileSize(t, path); n == last {
				same++
			} else {
				last, same = n, 0
			}
			time.Sleep(100 * time.Millisecond)
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var rest []string
		for l := range said {
			rest = append(rest, l)
		}
		_ = cmd.Wait()
		for _, l := range rest {
			if strings.HasSuffix(l, "packets dropped by kernel") && !strings.HasPrefix(l, "0 ") {
				t.Fatalf("tcpdump: %s", l)
			}
		}
	}
}

func owRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// start runs a server the test stops, its output discarded.
func owStart(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { owStop(cmd) })
	return cmd
}

func owStop(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// waitListening waits until a socket listens on 127.0.0.1:port, as
// /proc/net says (asking by connecting would add a flow to the capture).
func owWaitListening(t *testing.T, network string, port int) {
	t.Helper()
	want := fmt.Sprintf("0100007F:%04X", port)
	for i := 0; i < 600; i++ {
		b, _ := os.ReadFile("/proc/net/" + network)
		if bytes.Contains(b, []byte(want)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s 127.0.0.1:%d after 30 s", network, port)
}

// waitSize waits until the receiver has written n bytes.
func owWaitSize(t *testing.T, path string, n int64) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if fi, err := os.Stat(path); err == nil && fi.Size() >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var have int64
	if fi, err := os.Stat(path); err == nil {
		have = fi.Size()
	}
	t.Fatalf("%s: the receiver has %d bytes of %d after 30 s", path, have, n)
}

func owFileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func owWriteFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
