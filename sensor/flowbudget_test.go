package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/internal/synth"
	"github.com/outflow-sensor/outflow/sensor/collect"
)

// lockedWriter is a log destination the test reads while the collector
// writes.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// heapAfterGC is the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestTemplateFloodBounded reproduces issue 16 row 8: twenty exporters
// sending many large IPFIX templates held 3.7 GB, since only templates
// were counted, not their bytes. Over loopback UDP to a running collector,
// 20 sources send 24 templates of 8000 fields each (about 96 KB apiece in
// memory, 46 MB together); the collector accounts at most TemplateBytes
// per exporter, refuses the rest as template_budget, its heap grows by no
// more than what it accounts plus a margin, and a real exporter's IPFIX
// (Cisco's, from flowbeat's test data) afterwards decodes every record
// flowbeat's golden file holds.
func TestTemplateFloodBounded(t *testing.T) {
	const (
		exporters = 20
		perSource = 24
		fields    = 8000
		margin    = 8 << 20
	)
	pcap := shared.Path(t, "netflow/flowbeat/testdata/pcap/ipfix_cisco.pcap")
	golden := shared.Path(t, "netflow/flowbeat/testdata/golden/ipfix_cisco.pcap.golden.json")
	var gd struct {
		Events []json.RawMessage `json:"events"`
	}
	raw, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &gd); err != nil || len(gd.Events) == 0 {
		t.Fatalf("%s: %v", golden, err)
	}
	real := udpPayloadsOf(t, pcap)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedWriter{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	sh, err := newCore(ctx, coreConfig{Flows: io.Discard, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	dc := collect.DefaultConfig()
	var received atomic.Uint64
	var addr net.Addr
	src, err := openCollect(CollectConfig{Listen: []string{"netflow://127.0.0.1:0"}, Decoder: dc, Received: &received,
		Ready: func(a []net.Addr) { addr = a[0] }}, sh)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ExportStats, 1)
	go func() { done <- src.run(ctx) }()
	defer func() {
		cancel()
		<-done
		_, _ = sh.close()
	}()
	to := addr.(*net.UDPAddr)

	// sent counts datagrams; each waits until the collector has read all
	// but two, so the socket's buffer never overflows.
	var sent uint64
	send := func(from netip.Addr, b []byte) {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), to)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		sent++
		for received.Load()+2 < sent {
			time.Sleep(100 * time.Microsecond)
		}
	}
	// All datagrams published: the decoder has seen every one.
	settle := func() *ListenerCounts {
		for {
			c := src.snapshot()
			if c.Datagrams >= sent {
				return c
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	send(netip.MustParseAddr("127.0.0.1"), []byte("warm up"))
	settle()
	before := heapAfterGC()

	sources := make([]netip.Addr, exporters)
	for i := range sources {
		sources[i] = netip.AddrFrom4([4]byte{127, 0, 1, byte(1 + i)})
	}
	for n := 0; n < perSource; n++ {
		for _, s := range sources {
			send(s, synth.IPFIXTemplate(1, uint32(n), 1700000000, uint16(256+n), fields))
		}
	}
	c := settle()
	after := heapAfterGC()

	// What a template of 8000 fields costs, from the wire: its fields
	// as goflow2 keeps them, plus the overhead the decoder counts.
	per := int64(fields)*12 + 128
	fit := dc.TemplateBytes / per
	if c.Budget.TemplateBytes != exporters*fit*per {
		t.Errorf("%d template bytes accounted, want %d exporters × %d templates of %d bytes", c.Budget.TemplateBytes, exporters, fit, per)
	}
	if got, want := c.DecodeErrors[collect.ReasonTemplateBudget], uint64(exporters*(perSource-fit)); got != want {
		t.Errorf("%d templates refused as template_budget, want %d", got, want)
	}
	if c.Budget.TemplateBytes > dc.TotalBytes {
		t.Errorf("%d template bytes over the total budget %d", c.Budget.TemplateBytes, dc.TotalBytes)
	}
	if grew := int64(after) - int64(before); grew > c.Budget.TemplateBytes+margin {
		t.Errorf("the heap grew by %d bytes for %d accounted (unbounded: %d)", grew, c.Budget.TemplateBytes, exporters*perSource*per)
	} else {
		t.Logf("heap grew by %d bytes for %d accounted; unbounded the templates alone would take %d", grew, c.Budget.TemplateBytes, exporters*perSource*per)
	}
	if !strings.Contains(logs.String(), "template_budget") {
		t.Error("no template refusal was logged")
	}

	// A real exporter after the flood.
	recordsBefore := c.Records
	for _, dg := range real {
		send(netip.MustParseAddr("127.0.2.1"), dg)
	}
	c = settle()
	if got := c.Records - recordsBefore; got != uint64(len(gd.Events)) {
		t.Errorf("the Cisco exporter's %d datagrams gave %d records, flowbeat decodes %d", len(real), got, len(gd.Events))
	}
}

// udpPayloadsOf reads the UDP payloads of a capture.
func udpPayloadsOf(t *testing.T, path string) [][]byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	src := gopacket.NewPacketSource(r, r.LinkType())
	var out [][]byte
	for p := range src.Packets() {
		if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			out = append(out, bytes.Clone(u.Payload))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no UDP datagrams", path)
	}
	return out
}
