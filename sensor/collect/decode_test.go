package collect

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/shared"
)

func decodeFiles(t testing.TB, d *Decoder, dir string, names ...string) []Record {
	var recs []Record
	from := netip.MustParseAddr("192.0.2.7")
	for _, n := range names {
		for _, dg := range udpPayloads(t, filepath.Join(dir, n)) {
			recs, _ = d.Decode(from, dg, recs)
		}
	}
	return recs
}

func find(recs []Record, src string, sport uint16, dst string, dport uint16) *Record {
	for i := range recs {
		r := &recs[i]
		if r.Src.String() == src && r.SrcPort == sport && r.Dst.String() == dst && r.DstPort == dport {
			return r
		}
	}
	return nil
}

// TestAkvoradoSamples: the values the shared MANIFEST transcribes from
// akvorado's tests, on its exporter captures.
func TestAkvoradoSamples(t *testing.T) {
	dir := shared.Path(t, "netflow/akvorado/outlet/flow/decoder/netflow/testdata")
	d := NewDecoder(DefaultConfig())
	recs := decodeFiles(t, d, dir, "options-template.pcap", "options-data.pcap", "template.pcap", "data.pcap")
	for _, c := range []struct {
		src   string
		sport uint16
		dst   string
		dport uint16
		bytes uint64
	}{
		{"198.38.121.178", 443, "91.170.143.87", 19624, 1500},
		{"198.38.121.219", 443, "88.122.57.97", 2444, 1500},
		{"173.194.190.106", 443, "37.165.129.20", 53697, 1400},
	} {
		r := find(recs, c.src, c.sport, c.dst, c.dport)
		if r == nil {
			t.Errorf("%s:%d -> %s:%d: no record among %d", c.src, c.sport, c.dst, c.dport, len(recs))
			continue
		}
		// akvorado reports exported bytes and the rate apart; Outflow
		// scales by the rate the options announced.
		if r.SamplingRate != 30000 || r.Bytes != c.bytes*30000 || r.Proto != 6 {
			t.Errorf("%s:%d: bytes %d rate %d proto %d, want %d x 30000, TCP", c.src, c.sport, r.Bytes, r.SamplingRate, r.Proto, c.bytes)
		}
		if c.sport == 19624 || c.dport == 19624 {
			if r.InIf != 335 || r.OutIf != 450 || r.Packets != 30000 {
				t.Errorf("%s: in %d out %d packets %d", c.src, r.InIf, r.OutIf, r.Packets)
			}
		}
	}
	v5 := decodeFiles(t, NewDecoder(DefaultConfig()), dir, "nfv5.pcap")
	if len(v5) == 0 {
		t.Fatal("no NetFlow v5 records")
	}
	if r := v5[0]; r.Src.String() != "161.202.212.212" || r.SrcPort != 30104 || r.Dst.String() != "202.152.70.24" ||
		r.DstPort != 11963 || r.Bytes != 133 || r.Packets != 1 || r.InIf != 117 || r.OutIf != 86 || r.TCPFlags != 0x18 {
		t.Errorf("v5 first record %+v", r)
	}
	bi := decodeFiles(t, NewDecoder(DefaultConfig()), dir, "ipfixprobe-templates.pcap", "ipfixprobe-data.pcap")
	if r := find(bi, "10.10.1.4", 56166, "10.10.1.1", 53); r == nil || !r.Biflow || r.Packets != 1 || r.Bytes != 62 || r.RevPackets != 1 || r.RevBytes != 128 {
		t.Errorf("ipfixprobe biflow DNS: %+v", r)
	}
	if r := find(bi, "10.10.1.4", 1470, "74.53.140.153", 25); r == nil || r.Packets != 28 || r.Bytes != 21673 || r.TCPFlags != 0x1b {
		t.Errorf("ipfixprobe SMTP: %+v", r)
	}
	if r := find(bi, "10.10.1.20", 138, "10.10.1.255", 138); r == nil || r.Bytes != 229 {
		t.Errorf("ipfixprobe NetBIOS: %+v", r)
	}
}

func TestSFlowSamples(t *testing.T) {
	dir := shared.Path(t, "netflow/akvorado/outlet/flow/decoder/sflow/testdata")
	d := NewDecoder(DefaultConfig())
	n := 0
	for _, dg := range udpPayloads(t, filepath.Join(dir, "data-1140.pcap")) {
		if _, err := d.Decode(netip.MustParseAddr("192.0.2.9"), dg, nil); err != nil {
			t.Fatal(err)
		}
		for _, s := range d.Samples() {
			if len(s.Header) == 0 || s.SamplingRate == 0 || s.FrameLength < uint32(len(s.Header)) {
				t.Errorf("sample %+v", s)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no flow samples")
	}
}

// ipfixHeader builds an IPFIX message header for hand-made bad input.
func ipfixHeader(length int, obs uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b, 10)
	binary.BigEndian.PutUint16(b[2:], uint16(length))
	binary.BigEndian.PutUint32(b[12:], obs)
	return b
}

func set(id uint16, body []byte) []byte {
	b := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint16(b, id)
	binary.BigEndian.PutUint16(b[2:], uint16(4+len(body)))
	return append(b, body...)
}

func message(obs uint32, sets ...[]byte) []byte {
	n := 16
	for _, s := range sets {
		n += len(s)
	}
	b := ipfixHeader(n, obs)
	for _, s := range sets {
		b = append(b, s...)
	}
	return b
}

// template 256: sourceIPv4Address, destinationIPv4Address, octetDeltaCount(4)
var tpl256 = set(2, []byte{1, 0, 0, 3, 0, 8, 0, 4, 0, 12, 0, 4, 0, 1, 0, 4})
var data256 = set(256, []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, 0, 1, 0})

func TestBadInput(t *testing.T) {
	from := netip.MustParseAddr("192.0.2.10")
	d := NewDecoder(Config{MaxTemplates: 4, HoldSets: 2})
	reason := func(err error) Reason {
		var e *Error
		if errors.As(err, &e) {
			return e.Reason
		}
		return ReasonNone
	}
	if _, err := d.Decode(from, []byte{1, 2}, nil); reason(err) != ReasonTruncated {
		t.Errorf("2 bytes: %v", err)
	}
	if _, err := d.Decode(from, []byte{0x47, 0x45, 0x54, 0x20, 0, 0}, nil); reason(err) != ReasonGarbage {
		t.Errorf("garbage: %v", err)
	}
	// Data before its template is held, then decoded when it comes.
	recs, err := d.Decode(from, message(1, data256), nil)
	if err != nil || len(recs) != 0 || d.Stats[from].Held != 1 {
		t.Fatalf("data first: %v %v held %d", recs, err, d.Stats[from].Held)
	}
	recs, _ = d.Decode(from, message(1, tpl256), nil)
	if len(recs) != 1 || recs[0].Bytes != 256 || recs[0].Src.String() != "10.0.0.1" {
		t.Fatalf("held set after its template: %+v", recs)
	}
	// Unknown templates beyond the hold are dropped and counted.
	for i := 0; i < 3; i++ {
		_, _ = d.Decode(from, message(9, set(300+uint16(i), []byte{1, 2, 3, 4})), nil)
	}
	if d.Stats[from].Errors[ReasonNoTemplate] == 0 {
		t.Error("a full hold dropped nothing")
	}
	// A template flood is refused past MaxTemplates.
	var flood error
	for i := 0; i < 8; i++ {
		_, err := d.Decode(from, message(2, set(2, []byte{byte(1 + i>>8), byte(i), 0, 1, 0, 8, 0, 4})), nil)
		flood = errors.Join(flood, err)
	}
	if d.Stats[from].Errors[ReasonTemplateFlood] == 0 {
		t.Errorf("no flood counted: %v", flood)
	}
	// A set claiming more than the message holds.
	bad := message(1, tpl256)
	binary.BigEndian.PutUint16(bad[18:], 400)
	if _, err := d.Decode(from, bad, nil); err == nil {
		t.Error("an oversized set decoded")
	}
	// Too many exporters: the one heard from longest ago makes room.
	small := NewDecoder(Config{MaxExporters: 1})
	_, _ = small.Decode(from, message(1, tpl256), nil)
	if _, err := small.Decode(netip.MustParseAddr("192.0.2.11"), message(1, tpl256), nil); err != nil || small.Evicted != 1 ||
		small.Stats[from] != nil || len(small.exporters) != 1 {
		t.Errorf("second exporter: %v, evicted %d", err, small.Evicted)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(message(1, tpl256, data256))
	f.Add(message(1, data256))
	f.Add([]byte{0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 1, 192, 0, 2, 1})
	f.Add([]byte{0, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4})
	if dgs, err := filepath.Glob(filepath.Join(shared.Dir(), "netflow/akvorado/outlet/flow/decoder/sflow/testdata/*.pcap")); err == nil {
		for _, p := range dgs {
			for _, dg := range udpPayloads(f, p) {
				f.Add(dg)
			}
		}
	}
	d := NewDecoder(Config{MaxExporters: 4, MaxTemplates: 16, HoldSets: 4, HoldBytes: 4096})
	from := netip.MustParseAddr("192.0.2.1")
	// The whole datagram path: records into the stitcher, sFlow samples
	// through the packet decoder into the sampled-flow sums.
	emit := func(*Flow) {}
	st := NewStitcher(time.Minute, emit)
	sm := NewSampled(time.Minute, emit)
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := d.Decode(from, b, nil)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v", err, err)
			}
		}
		for i := range recs {
			st.Add(&recs[i], now)
		}
		smp := d.Samples()
		for i := range smp {
			sm.Add(&smp[i], now)
		}
		now = now.Add(time.Second)
		st.Expire(now)
		sm.Expire(now)
	})
}

func BenchmarkDecodeIPFIX(b *testing.B) {
	d := NewDecoder(DefaultConfig())
	from := netip.MustParseAddr("192.0.2.1")
	d.Decode(from, message(1, tpl256), nil)
	body := []byte{}
	for i := 0; i < 100; i++ {
		body = append(body, 10, 0, byte(i), 1, 10, 0, 0, 2, 0, 0, 1, byte(i))
	}
	dg := message(1, set(256, body))
	var recs []Record
	b.SetBytes(int64(len(dg)))
	b.ReportAllocs()
	for b.Loop() {
		recs, _ = d.Decode(from, dg, recs[:0])
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds()/1e6, "Mrecords/s")
}

// TestExporterTableFullOfJunk: one datagram of garbage from each of 4096
// addresses fills the exporter table; a real exporter that comes after
// them is still decoded, in place of one of the sources that never gave a
// record (it used to be refused for good).
func TestExporterTableFullOfJunk(t *testing.T) {
	d := NewDecoder(DefaultConfig())
	junk := []byte{0x12, 0x34, 0, 0, 0, 0, 0, 0}
	for i := 0; i < 4096; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		d.Decode(a, junk, nil)
	}
	dir := shared.Path(t, "netflow/akvorado/outlet/flow/decoder/netflow/testdata")
	recs := decodeFiles(t, d, dir, "template.pcap", "data.pcap")
	if len(recs) == 0 {
		t.Fatalf("the real exporter decoded nothing; evicted %d", d.Evicted)
	}
	if d.Evicted == 0 || len(d.exporters) > 4096 || len(d.Stats) > 4096 {
		t.Errorf("evicted %d, %d exporters, %d stats", d.Evicted, len(d.exporters), len(d.Stats))
	}
	// The junk sources went first: the real exporter is still there.
	if st := d.Stats[netip.MustParseAddr("192.0.2.7")]; st == nil || st.Records == 0 {
		t.Errorf("the real exporter's state was evicted")
	}
}
