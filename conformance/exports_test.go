package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/capture"
)

// directions splits stitched flows back into the one-way counts exporters
// report, keyed by source, destination, ports and protocol.
func directions(recs []Flow, withPorts bool) map[string][2]uint64 {
	sum := map[string][2]uint64{}
	add := func(src string, sport uint64, dst string, dport uint64, proto string, pkts, bytes uint64) {
		if pkts == 0 {
			return
		}
		k := fmt.Sprintf("%v %v %v", proto, src, dst)
		if withPorts {
			k = fmt.Sprintf("%v %v:%v %v:%v", proto, src, sport, dst, dport)
		}
		v := sum[k]
		v[0] += uint64(pkts)
		v[1] += uint64(bytes)
		sum[k] = v
	}
	for _, r := range recs {
		add(r.OrigH, r.OrigP, r.RespH, r.RespP, r.Proto, r.OrigPkts, r.OrigIPBytes)
		add(r.RespH, r.RespP, r.OrigH, r.OrigP, r.Proto, r.RespPkts, r.RespIPBytes)
	}
	return sum
}

// pmacctProto maps nfacctd's protocol names to the record's.
var pmacctProto = map[string]string{"tcp": "tcp", "udp": "udp", "icmp": "icmp", "ipv6-icmp": "icmp6", "vrrp": "112"}

// TestPmacctConformance: the exporter traffic of pmacct's own nfacctd tests
// (Cisco ASR9k IPFIX and NetFlow v9, Huawei IPFIX, IPv6 transport, sampling
// options, two exporters into one collector), replayed with --exports,
// gives per direction the packets and bytes nfacctd wrote. nfacctd
// aggregates on more keys than these (interfaces, ToS, labels), so its lines
// are summed over the key compared; with renormalize on (cases 104 and 106)
// its counts are multiplied by the sampling rate, as ours are.
func TestPmacctConformance(t *testing.T) {
	shared.Path(t, "netflow/pmacct/tests")
	cases := []string{"100-IPFIXv10-CISCO", "101-NFv9-CISCO-cust_primitives", "104-IPFIXv10-IPv6-CISCO-sampling_option",
		"106-IPFIXv10-HUAWEI-vrf_name", "111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources"}
	for _, c := range cases {
		t.Run(c, func(t *testing.T) {
			dir := shared.Path(t, filepath.Join("netflow/pmacct/tests", c))
			files, _ := filepath.Glob(filepath.Join(dir, "traffic-*.pcap"))
			sort.Strings(files)
			if len(files) == 0 {
				shared.Missing(t, filepath.Join(dir, "traffic-00.pcap"), os.ErrNotExist)
			}
			recs, st := replay(t, options{files: files, exports: []string{"netflow://:9991", "netflow://:9992"}, exported: true})
			for a, s := range st.Exports.Exporters {
				for r, n := range s.Errors {
					if n > 0 && r > 0 {
						t.Errorf("exporter %s: %d errors of reason %d", a, n, r)
					}
				}
			}
			got := directions(recs, true)
			want := map[string][2]uint64{}
			f, err := os.Open(shared.Path(t, filepath.Join("netflow/pmacct/tests", c, "output-flow-00.json")))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if line == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatal(err)
				}
				proto, ok := pmacctProto[fmt.Sprint(m["ip_proto"])]
				if !ok {
					t.Fatalf("protocol %v: add it to pmacctProto", m["ip_proto"])
				}
				k := fmt.Sprintf("%s %v:%v %v:%v", proto, m["ip_src"], m["port_src"], m["ip_dst"], m["port_dst"])
				v := want[k]
				v[0] += uint64(num(m["packets"]))
				v[1] += uint64(num(m["bytes"]))
				want[k] = v
			}
			if len(want) == 0 {
				t.Fatal("no expected lines")
			}
			for k, w := range want {
				if g, ok := got[k]; !ok {
					t.Errorf("%s: missing; nfacctd: %d packets, %d bytes", k, w[0], w[1])
				} else if g != w {
					t.Errorf("%s: %d packets, %d bytes; nfacctd: %d, %d", k, g[0], g[1], w[0], w[1])
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("%s: not in nfacctd's output", k)
				}
			}
			t.Logf("%d one-way keys agree with nfacctd (%d stitched flows)", len(want), len(recs))
		})
	}
}

// TestAkvoradoSFlowReplay: sFlow datagrams from akvorado's test captures,
// replayed with --exports, become flows through the capture decoder. The
// per-sample values are akvorado's (outlet/flow/decoder/sflow/root_test.go,
// transcribed): IP length, addresses, ports, sampling rate; a sample stands
// for rate packets of its length.
func TestAkvoradoSFlowReplay(t *testing.T) {
	dir := shared.Path(t, "netflow/akvorado/outlet/flow/decoder/sflow/testdata")
	type dir1 struct {
		key         string
		pkts, bytes uint64
	}
	cases := []struct {
		file     string
		exporter string
		want     []dir1
	}{
		{"data-1140.pcap", "172.16.0.3", []dir1{
			{"tcp 2a0c:8880:2:0:185:21:130:38:46026 2a0c:8880:2:0:185:21:130:39:22", 3 * 1024, 3 * 1500 * 1024},
			{"tcp 104.26.8.24:443 45.90.161.46:56876", 1024, 421 * 1024},
			{"tcp 45.90.161.148:55658 191.87.91.27:5555", 1024, 40 * 1024},
		}},
		{"data-sflow-expanded-sample.pcap", "49.49.49.49", []dir1{{"tcp 52.52.52.52:22 53.53.53.53:52237", 1000, 104 * 1000}}},
		{"data-sflow-ipv4-data.pcap", "49.49.49.49", []dir1{{"udp 50.50.50.50:46622 51.51.51.51:58631", 256, 1344 * 256}}},
		{"data-sflow-raw-ipv4.pcap", "172.19.64.116", []dir1{
			// Echo replies (type 0, tshark's reading of the samples); ICMP
			// ports are Zeek's, the type and its counterpart.
			{"icmp 69.58.92.107:0 92.222.186.1:8", 1, 32}, {"icmp 69.58.92.107:0 92.222.184.1:8", 1, 32}}},
		{"data-icmpv4.pcap", "", []dir1{{"icmp 203.0.113.4:8 203.0.113.5:0", 1, 84}}},
		{"data-icmpv6.pcap", "", []dir1{{"icmp6 fe80::d05b:45ff:feee:5ecf:135 2001:db8:::136", 1, 72}}},
		{"data-qinq.pcap", "172.17.128.58", []dir1{{"tcp 49.49.49.2:32017 49.49.49.109:443", 4096, 80 * 4096}}},
		// The inner packet of a VXLAN-encapsulated sample is a flow of its
		// own, beside the tunnel's, as in a capture.
		{"data-encap-vxlan.pcap", "", []dir1{{"icmp6 2001:db8:4::1:128 2001:db8:4::3:129", 1, 104}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			recs, st := replay(t, options{files: []string{filepath.Join(dir, c.file)}, exports: []string{"sflow://:6343"}, exported: true})
			if st.Exports.Sampled.Undecodable != 0 || st.Exports.Sampled.Unsupported != 0 {
				t.Errorf("samples: %+v", st.Exports.Sampled)
			}
			got := directions(recs, true)
			for _, w := range c.want {
				g, ok := got[w.key]
				if !ok {
					t.Errorf("%s missing; have %v", w.key, got)
					continue
				}
				if g != [2]uint64{w.pkts, w.bytes} {
					t.Errorf("%s: %d packets, %d bytes; want %d, %d", w.key, g[0], g[1], w.pkts, w.bytes)
				}
			}
			for _, r := range recs {
				if c.exporter != "" && r.Exporter != c.exporter {
					t.Errorf("exporter %v, want the agent %s", r.Exporter, c.exporter)
				}
				if r.Stitch != "sampled" || r.ObservedPayload == nil || *r.ObservedPayload {
					t.Errorf("record %+v", r)
				}
			}
		})
	}
}

// exportDatagrams reads the UDP payloads of a capture of exporter traffic.
func exportDatagrams(t testing.TB, path string) [][]byte {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dec := flows.NewDecoder()
	var out [][]byte
	var pkt capture.Packet
	for src.Next(&pkt) == nil {
		pkts, _ := dec.DecodeWire(pkt.Data, pkt.CaptureInfo.Length, pkt.LinkType, 0)
		for _, p := range pkts {
			if p.Proto == 17 && len(p.Payload) >= int(p.L4Len) {
				out = append(out, bytes.Clone(p.Payload[:p.L4Len]))
			}
		}
	}
	return out
}

// benchLoopback sends real exporter datagrams (pmacct's Cisco ASR9k NetFlow
// v9 capture, templates and all, over and over) to Collect over loopback,
// pps datagrams a second (0: as fast as the sender goes), and reports how
// many the kernel dropped. Run long enough to matter:
//
//	go test ./conformance -run XXX -bench Loopback -benchtime 1000000x
func benchLoopback(b *testing.B, pps int) {
	dgs := exportDatagrams(b, shared.Path(b, "netflow/pmacct/tests/101-NFv9-CISCO-cust_primitives/traffic-00.pcap"))
	var size int
	for _, d := range dgs {
		size += len(d)
	}
	b.SetBytes(int64(size / len(dgs)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received atomic.Uint64
	ready := make(chan string, 1)
	done := make(chan sensor.ExportStats, 1)
	go func() {
		st, err := sensor.Collect(ctx, sensor.CollectConfig{
			Listen: []string{"netflow://127.0.0.1:0"}, Flows: io.Discard, Received: &received,
			Ready: func(a []net.Addr) { ready <- a[0].String() },
		})
		if err != nil {
			b.Error(err)
		}
		done <- st
	}()
	conn, err := net.Dial("udp", <-ready)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if pps > 0 && i%100 == 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(pps))); d > 0 {
				time.Sleep(d)
			}
		}
		if _, err := conn.Write(dgs[i%len(dgs)]); err != nil {
			b.Fatal(err)
		}
	}
	sent := time.Since(start)
	last := uint64(0)
	for n := received.Load(); n < uint64(b.N); n = received.Load() {
		time.Sleep(20 * time.Millisecond)
		if n == last {
			break
		}
		last = n
	}
	b.StopTimer()
	cancel()
	st := <-done
	lost := uint64(b.N) - received.Load()
	b.ReportMetric(float64(b.N)/sent.Seconds(), "sent/s")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(st.Records)/b.Elapsed().Seconds(), "records/s")
	if pps > 0 && lost > 0 {
		b.Errorf("%d of %d datagrams lost at %d/s", lost, b.N, pps)
	}
}

// BenchmarkCollectLoopback100k: loss-free receive at 100k datagrams/s.
func BenchmarkCollectLoopback100k(b *testing.B) { benchLoopback(b, 100_000) }

// BenchmarkCollectLoopbackMax: the sender as fast as it goes; lost shows
// where the collector falls behind.
func BenchmarkCollectLoopbackMax(b *testing.B) { benchLoopback(b, 0) }
