package sensor

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/bugreport"
	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/sensor/collect"
)

// bugCore is a core that logs to logs and keeps bug reports in dir.
func bugCore(t *testing.T, logs *lockedWriter) (*core, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bugs")
	bugs, err := bugreport.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &core{log: slog.New(slog.NewTextHandler(logs, nil)), bugs: bugs}, dir
}

// reports returns the bug reports' texts and the inputs kept beside them.
func reports(t *testing.T, dir string) (texts []string, inputs [][]byte) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	for _, n := range names {
		b, _ := os.ReadFile(n)
		texts = append(texts, string(b))
		if in, err := os.ReadFile(strings.TrimSuffix(n, ".txt") + ".bin"); err == nil {
			inputs = append(inputs, in)
		}
	}
	return texts, inputs
}

// TestReplayReaderSurvivesABug: a frame whose handling panics (here the
// handler indexes past the frame, as a decoder bug would) is counted and
// reported with its file and offset, and every other frame of the capture
// is still read: as many as tshark counts.
func TestReplayReaderSurvivesABug(t *testing.T) {
	demo := filepath.Join("..", "pcaps", "outflow-demo.pcap")
	frames := uint64(shared.TsharkFrames(t, demo))
	logs := &lockedWriter{}
	sh, dir := bugCore(t, logs)
	var handled, n uint64
	handle := func(data []byte, wire int, lt flows.LinkType, ts int64, stable bool) {
		if n++; n == 100 {
			_ = data[len(data)+int(n)] // a bug: index out of range
		}
		handled++
	}
	var st ReplayStats
	var done int64
	err := readFiles(context.Background(), ReplayConfig{Files: []string{demo}, Log: sh.log}, sh, &st, &done, 0, handle, nil, func(func()) {})
	if bugs := sh.bugCount.Load(); err != nil || bugs != 1 || st.frameBugs != 1 || st.Frames != frames || handled != frames-1 || st.FileErrors != 0 {
		t.Fatalf("err %v, bugs %d (%d frames), frames %d (tshark %d), handled %d, file errors %d", err, bugs, st.frameBugs, st.Frames, frames, handled, st.FileErrors)
	}
	texts, _ := reports(t, dir)
	if len(texts) != 1 || !strings.Contains(texts[0], "source: "+demo+" at offset ") || !strings.Contains(texts[0], "index out of range") {
		t.Errorf("reports %q", texts)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "a bug: runtime error: index out of range") || !strings.Contains(l, "report="+dir) {
		t.Errorf("log:\n%s", l)
	}
}

// TestWorkerSurvivesABug: a packet of a batch whose accounting panics (its
// payload offset points past the batch's data) is counted and reported,
// and the batch's other packets are accounted.
func TestWorkerSurvivesABug(t *testing.T) {
	logs := &lockedWriter{}
	sh, dir := bugCore(t, logs)
	w := &worker{table: flows.NewTable(flows.DefaultConfig(), func(*flows.Record) {}), sh: sh}
	d := flows.NewDecoder()
	udp := func(sport uint16) flows.Packet {
		frame := []byte{0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7, byte(sport >> 8), byte(sport), 0, 53, 0, 9, 0, 0, 'x'}
		pkts, err := d.Decode(frame, flows.LinkRaw, int64(time.Second))
		if err != nil || len(pkts) != 1 {
			t.Fatal(err)
		}
		return pkts[0]
	}
	b := &batch{pkts: []flows.Packet{udp(5000), udp(5001), udp(5002)}, data: []byte{'x', 'x'}, offs: []uint32{0, 1 << 20, 1}}
	w.updateBatch(b, true)
	if w.bugs != 1 || w.table.Stats.Packets != 2 || w.table.Len() != 2 {
		t.Fatalf("bugs %d, packets %d, flows %d; want 1, 2, 2", w.bugs, w.table.Stats.Packets, w.table.Len())
	}
	if texts, _ := reports(t, dir); len(texts) != 1 || !strings.Contains(texts[0], "192.0.2.1:5001 -> 198.51.100.7:53 proto 17") {
		t.Errorf("reports %q", texts)
	}
}

// TestExportBugKeepsTheDatagram: a panic while a real IPFIX datagram's
// records are handled (here in the record tap) costs that datagram only:
// it is counted and kept byte for byte as a bug report, and the
// datagrams after it are decoded.
func TestExportBugKeepsTheDatagram(t *testing.T) {
	real := udpPayloadsOf(t, shared.Path(t, "netflow/flowbeat/testdata/pcap/ipfix_cisco.pcap"))
	logs := &lockedWriter{}
	sh, dir := bugCore(t, logs)
	var flowsSeen int
	stage := recordStage{tap: func(*record.Flow) {
		if flowsSeen++; flowsSeen == 1 {
			panic("a bug in a record stage")
		}
	}}
	p := newExportPipeline(time.Minute, collect.DefaultConfig(), nil, 0, sh, stage)
	from := netip.MustParseAddr("192.0.2.9")
	at := time.Now()
	bad := -1
	for i, dg := range real {
		before := p.st.Bugs
		p.datagram(from, dg, at)
		if p.st.Bugs != before && bad < 0 {
			bad = i
		}
	}
	st := p.flush()
	if st.Bugs != 1 || bad < 0 || flowsSeen < 2 {
		t.Fatalf("bugs %d, datagram %d, records after it %d", st.Bugs, bad, flowsSeen-1)
	}
	texts, inputs := reports(t, dir)
	if len(texts) != 1 || len(inputs) != 1 || !bytes.Equal(inputs[0], real[bad]) || !strings.Contains(texts[0], "source: flow export from 192.0.2.9") {
		t.Errorf("reports %q; input kept equal to the datagram: %v", texts, len(inputs) == 1 && bytes.Equal(inputs[0], real[bad]))
	}
}

// TestHostEventBugKeepsTheRecord: a host-event record its parser panicked
// on is kept whole as a bug report; the log line names the source and
// offset.
func TestHostEventBugKeepsTheRecord(t *testing.T) {
	logs := &lockedWriter{}
	sh, dir := bugCore(t, logs)
	r := feed.NewReader("syslog+tcp://127.0.0.1:6514")
	r.OnError = hostEventError(sh.log, sh.bug)
	line := []byte("2026-12-01T10:00:00Z boom Hostd: hostd[1] one")
	r.Line(line, 4096, func(e *feed.Event) {
		if e.Host == "boom" {
			panic("a bug in a parser")
		}
	})
	texts, inputs := reports(t, dir)
	if len(texts) != 1 || len(inputs) != 1 || !bytes.Equal(inputs[0], line) || !strings.Contains(texts[0], "source: host events syslog+tcp://127.0.0.1:6514 at offset 4096") {
		t.Errorf("reports %q, inputs %q", texts, inputs)
	}
	if r.Stats.Errors[feed.ReasonPanic] != 1 {
		t.Errorf("errors %v", r.Stats.Errors)
	}
}

// TestRecordStageSurvivesABug: a flow whose record panics on its way to
// the outputs (here in the record tap, where joining and the analytics
// run) costs that record only: the replay writes every other flow record
// of the capture and counts the bug.
func TestRecordStageSurvivesABug(t *testing.T) {
	demo := filepath.Join("..", "pcaps", "outflow-demo.pcap")
	replay := func(tap func(*record.Flow)) (ReplayStats, int) {
		t.Helper()
		var out bytes.Buffer
		var logs lockedWriter
		st, err := Replay(context.Background(), ReplayConfig{Files: []string{demo}, Workers: 2, Flows: &out, Records: tap,
			Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return st, bytes.Count(out.Bytes(), []byte("\n"))
	}
	_, all := replay(nil)
	var seen atomic.Int64 // each worker's exporter calls the tap
	st, got := replay(func(f *record.Flow) {
		if seen.Add(1) == 3 {
			panic("a bug in an analytic")
		}
	})
	// A record is not a frame: it is no decode error.
	if st.Bugs != 1 || st.Decode.Errors[flows.ReasonBug] != 0 || got != all-1 || all < 20 {
		t.Fatalf("bugs %d (%d as decode errors), %d records written of %d", st.Bugs, st.Decode.Errors[flows.ReasonBug], got, all)
	}
}

// TestWorkerMendsItsTable: a panic while the table ends a flow (here in
// its emit, on the first eviction) leaves the worker a table whose
// bookkeeping holds (Check; a broken one is emptied by Reset, see flows'
// TestResetMendsABrokenTable), and every packet after it is accounted.
func TestWorkerMendsItsTable(t *testing.T) {
	logs := &lockedWriter{}
	sh, _ := bugCore(t, logs)
	cfg := flows.DefaultConfig()
	cfg.Capacity = 16
	panicked := false
	w := &worker{table: flows.NewTable(cfg, func(*flows.Record) {
		if !panicked {
			panicked = true
			panic("a bug while a flow ends")
		}
	}), sh: sh}
	d := flows.NewDecoder()
	var pkts []flows.Packet
	for i := range 40 {
		sport := 5000 + i
		frame := []byte{0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7, byte(sport >> 8), byte(sport), 0, 53, 0, 9, 0, 0, 'x'}
		p, err := d.Decode(frame, flows.LinkRaw, int64(time.Second)+int64(i))
		if err != nil || len(p) != 1 {
			t.Fatal(err)
		}
		pkts = append(pkts, p[0])
	}
	w.updateBatch(&batch{pkts: pkts}, false)
	if w.bugs != 1 || w.table.Check() != nil {
		t.Fatalf("bugs %d, table %v", w.bugs, w.table.Check())
	}
	st := w.table.Stats
	if st.Packets+st.Discarded < 39 || w.table.Len() > cfg.Capacity {
		t.Errorf("packets %d, discarded %d, flows %d", st.Packets, st.Discarded, w.table.Len())
	}
	w.table.Flush()
	t.Logf("after the bug: %d packets accounted, %d flows discarded by a reset; log:\n%s", st.Packets, st.Discarded, logs)
}
