package conformance

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/flows"
)

// jumpAhead is how far past the stream the forged segment starts: just
// under 2^31, the furthest a 32-bit sequence number reads as ahead (issue
// 16, row 11: 2,147,484,242 orig_bytes from 810 IP bytes).
const jumpAhead = 1<<31 - 64

// TestSeqJumpRealCapture records a real TCP connection on loopback (socat
// sends a file to a listener, tcpdump captures), adds one 10-byte segment
// 2^31 ahead in the client's sequence space, and replays both: the
// client's orig_bytes stay the payload tshark counts in the real capture,
// and the table counts the jump as an anomaly. Zeek (TCP.cc, "### check
// for large jumps here") would count the whole jump.
func TestSeqJumpRealCapture(t *testing.T) {
	needTool(t, "tcpdump", "tcpdump")
	needTool(t, "socat", "socat")
	needTool(t, "tshark", "tshark")
	dir := t.TempDir()
	real, forged := filepath.Join(dir, "real.pcap"), filepath.Join(dir, "forged.pcap")
	payload := bytes.Repeat([]byte("outflow seq-jump regression\n"), 21) // 588 bytes

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dumpErr bytes.Buffer
	dump := exec.CommandContext(ctx, "tcpdump", "-i", "lo", "-U", "-n", "-w", real, "tcp port "+strconv.Itoa(port))
	listening := make(chan struct{})
	pr, pw := io.Pipe()
	dump.Stderr = io.MultiWriter(&dumpErr, pw)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(listening)
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-listening:
	case <-ctx.Done():
		t.Fatalf("tcpdump did not start: %s", dumpErr.String())
	}

	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- b
	}()
	send := exec.CommandContext(ctx, "socat", "-u", "-", "TCP4:127.0.0.1:"+strconv.Itoa(port))
	send.Stdin = bytes.NewReader(payload)
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("socat: %v: %s", err, out)
	}
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("the listener read %d bytes, socat sent %d", len(b), len(payload))
	}
	// Both FINs and the last ACK are on the wire once both sides closed;
	// wait until tcpdump wrote them, then stop it.
	for !closedBothWays(real) {
		if ctx.Err() != nil {
			t.Fatalf("the capture never showed the connection's close: %s", dumpErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	dump.Process.Signal(os.Interrupt)
	dump.Wait()
	pw.Close()

	client := tsharkPayload(t, real, port)
	if client != uint64(len(payload)) {
		t.Fatalf("tshark counts %d client payload bytes, socat sent %d", client, len(payload))
	}
	forge(t, real, forged, func(tcp *layers.TCP) bool { return int(tcp.DstPort) == port })

	for _, c := range []struct {
		file   string
		jumped bool
	}{{real, false}, {forged, true}} {
		recs, _ := replay(t, options{files: []string{c.file}, table: flows.DefaultConfig(), workers: 1, final: true})
		if len(recs) != 1 {
			t.Fatalf("%s: %d records, want 1", c.file, len(recs))
		}
		r := recs[0]
		if r.OrigBytes == nil || *r.OrigBytes != client || r.RespBytes == nil || *r.RespBytes != 0 {
			t.Errorf("%s: orig_bytes %v resp_bytes %v, tshark counts %d and 0", c.file, deref(r.OrigBytes), deref(r.RespBytes), client)
		}
		if r.MissedBytes == nil || *r.MissedBytes != 0 {
			t.Errorf("%s: missed_bytes %v, want 0", c.file, deref(r.MissedBytes))
		}
		st, o, s := tableOver(t, c.file)
		if o != c.jumped || s || st.BeyondWindow != uint64(b2i(c.jumped)) {
			t.Errorf("%s: beyond window orig %v resp %v, counted %d; want orig %v", c.file, o, s, st.BeyondWindow, c.jumped)
		}
	}
}

// TestDetectionLabSeqJump replays the detection lab's capture
// (pcaps/detect-lab.yaml, no host events) with a forged segment 2^31 ahead
// in every TCP flow's client stream, the alerting flows and the others: it
// raises exactly the alerts of the real capture, no T1573 (DET0143) or
// other alert more, with the same titles and measured volumes.
func TestDetectionLabSeqJump(t *testing.T) {
	cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "forged.pcap")
	n := forge(t, "../pcaps/outflow-detect.pcap", forged, func(tcp *layers.TCP) bool { return tcp.SrcPort > 1024 && tcp.DstPort < 10000 })
	if n < 10 {
		t.Fatalf("forged a segment into %d flows, want every TCP flow of the lab", n)
	}
	orig, _ := replayAlerts(t, options{files: []string{"../pcaps/outflow-detect.pcap"}, table: inspectConfig(), detect: cfg})
	alerts, _ := replayAlerts(t, options{files: []string{forged}, table: inspectConfig(), detect: cfg})
	if len(orig) == 0 {
		t.Fatal("the real capture raised no alert")
	}
	want := map[string]int{}
	for _, a := range orig {
		want[alertKey(a)]++
	}
	for _, a := range alerts {
		if want[alertKey(a)]--; want[alertKey(a)] < 0 {
			t.Errorf("not raised by the real capture: %s %s: %s (out %v, in %v)", a.Analytic, a.Severity, a.Title, a.Evidence.Measured["out_bytes"], a.Evidence.Measured["in_bytes"])
		}
	}
	for k, n := range want {
		if n > 0 {
			t.Errorf("raised by the real capture only: %s", k)
		}
	}
	st, _, _ := tableOver(t, forged)
	if st.BeyondWindow != uint64(n) {
		t.Errorf("%d anomalies counted, %d segments forged", st.BeyondWindow, n)
	}
}

func alertKey(a *detect.Alert) string {
	return a.Analytic + "|" + a.Severity + "|" + a.Title + "|" + toString(a.Evidence.Measured["out_bytes"]) + "|" + toString(a.Evidence.Measured["in_bytes"])
}

func toString(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return ""
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// closedBothWays reports whether the capture so far holds a FIN from each
// side and a packet after the second.
func closedBothWays(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return false
	}
	fins, after := map[layers.TCPPort]bool{}, false
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return after
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		switch {
		case tcp == nil:
		case len(fins) == 2:
			after = true
		case tcp.FIN:
			fins[tcp.SrcPort] = true
		}
	}
}

// tsharkPayload sums, with tshark, the TCP payload the client sent to port.
func tsharkPayload(t *testing.T, path string, port int) uint64 {
	t.Helper()
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "tcp.len", "-Y", "tcp.dstport=="+strconv.Itoa(port)).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var sum uint64
	for _, l := range strings.Fields(string(out)) {
		n, err := strconv.ParseUint(l, 10, 64)
		if err != nil {
			t.Fatalf("tshark printed %q", l)
		}
		sum += n
	}
	return sum
}

// forge copies the capture in to out and, after the first data segment
// of each TCP flow that pick selects, adds a copy carrying 10 bytes
// jumpAhead further on in sequence, checksums recomputed. It returns how
// many it added.
func forge(t *testing.T, in, out string, pick func(*layers.TCP) bool) int {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", in, err)
	}
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	w := pcapgo.NewWriterNanos(o)
	if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
		t.Fatal(err)
	}
	done := map[gopacket.Flow]bool{}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if tcp == nil || ip == nil || len(tcp.Payload) == 0 || tcp.SYN || tcp.RST || !pick(tcp) {
			continue
		}
		key := tcp.TransportFlow()
		if done[key] {
			continue
		}
		done[key] = true
		end := tcp.Seq + uint32(len(tcp.Payload))
		tcp.Seq = end + jumpAhead
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		ls := []gopacket.SerializableLayer{}
		for _, l := range p.Layers() {
			switch l := l.(type) {
			case *layers.Ethernet:
				ls = append(ls, l)
			case *layers.Loopback:
				ls = append(ls, l)
			case *layers.IPv4:
				ls = append(ls, l)
			case *layers.TCP:
				ls = append(ls, l)
			}
		}
		ls = append(ls, gopacket.Payload([]byte("0123456789")))
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		ci.Timestamp = ci.Timestamp.Add(time.Microsecond)
		ci.CaptureLength, ci.Length = len(b), len(b)
		if err := w.WritePacket(ci, b); err != nil {
			t.Fatal(err)
		}
	}
	return len(done)
}

// tableOver runs a capture through a flow table of its own and returns
// its counters and whether the last TCP record's sides went beyond the
// window.
func tableOver(t *testing.T, path string) (st flows.TableStats, orig, resp bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tab := flows.NewTable(flows.DefaultConfig(), func(rec *flows.Record) {
		if rec.Proto == 6 {
			orig, resp = rec.BeyondWindow()
		}
	})
	dec := flows.NewDecoder()
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		ps, _ := dec.DecodeWire(data, ci.Length, flows.LinkType(r.LinkType()), ci.Timestamp.UnixNano())
		for i := range ps {
			tab.Update(&ps[i])
		}
	}
	tab.Flush()
	return tab.Stats, orig, resp
}
