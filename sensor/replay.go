// Package sensor is the composition root: it wires capture sources, the
// decoder, the flow tables of the workers and the record sinks together.
package sensor

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/sensor/capture"
)

// ReplayConfig says what to replay and where records go.
type ReplayConfig struct {
	Files           []string
	Workers         int
	Realtime        bool // sleep between packets as the capture's clock did
	HomeNets        []netip.Prefix
	CommunityIDSeed uint16
	Table           flows.Config
	Flows           io.Writer // JSON lines; nil discards
	FlowOutputs     []Output  // outputs in their own formats, beside Flows
	// HostEventIndex is the process index's config for HostEvents, its
	// byte budget (zero: the defaults).
	HostEventIndex process.Config
	// Errors receives one line per bad file or record, naming file and offset.
	Errors io.Writer
	// Log receives problems and notices (nil: a text logger on Errors).
	Log *slog.Logger
	// Progress, when set, is called now and then with bytes read of total.
	Progress func(done, total int64, packets uint64, activeFlows int)
	// Exports names the collector addresses (netflow://[HOST]:PORT,
	// sflow://[HOST]:PORT) whose UDP datagrams in the capture are flow
	// exports: their records become flows too, as `collect` would make.
	Exports []string
	// ExportWindow is how long a one-way exported record waits for its
	// reverse, in the capture's time (default one minute).
	ExportWindow time.Duration
	// HostEvents are host-event logs (Sysmon, Security auditing, auditd,
	// AUOMS, ...) read before the capture: flows gain the process at each
	// end.
	HostEvents []string
	// Detect, when set, runs the analytics on the flows.
	Detect *Detection
	// Records, when set, sees every record, typed, before it is encoded:
	// for tests and tools that want records rather than lines. It is
	// called from several goroutines at once, and f is valid during the
	// call only.
	Records func(f *record.Flow)
}

// ReplayStats is what a replay counted.
type ReplayStats struct {
	Files      int
	FileErrors int
	Frames     uint64
	Bytes      uint64
	Records    uint64
	Faulted    uint64 // packets lost because their mapped file was cut short under the replay
	// Bugs are the inputs (frames, packets, records, flows judged) that
	// reached a bug and were skipped (core.bugCount); those that were
	// frames or packets also count as decode errors, ReasonBug.
	Bugs       uint64
	frameBugs  uint64 // the reader's, for ReasonBug
	Decode     flows.DecodeStats
	Table      flows.TableStats
	Inspect    flows.InspectStats
	Exports    *ExportStats // nil unless Exports were named
	HostEvents *HostEventStats
	Detect     *DetectStats
}

// Replay reads the files in order and writes one record per flow. Bad records
// end their file with an error line; the next file is read all the same.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayStats, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	cfg.Log = logger(cfg.Log, cfg.Errors)
	sh, err := newCore(ctx, coreConfig{Flows: cfg.Flows, FlowOutputs: cfg.FlowOutputs, Log: cfg.Log, Inspect: cfg.Table.Inspect.Enable,
		Detect: cfg.Detect, HostEventFiles: cfg.HostEvents, HostEventIndex: cfg.HostEventIndex, Records: cfg.Records})
	if err != nil {
		return ReplayStats{}, err
	}
	st, err := replayFiles(ctx, cfg, sh)
	ss, serr := sh.close()
	st.HostEvents, st.Detect, st.Bugs = ss.HostEvents, ss.Detect, sh.bugCount.Load()
	return st, errors.Join(err, serr)
}

// replayFiles reads the files through workers of its own into the shared
// stages.
func replayFiles(ctx context.Context, cfg ReplayConfig, sh *core) (ReplayStats, error) {
	table := cfg.Table
	if table.Capacity == 0 {
		table = flows.DefaultConfig()
		table.Inspect = cfg.Table.Inspect
	}
	if n := flowBound(cfg.Files); n > 0 {
		// Each worker can hold every flow the files can hold.
		table.Capacity = min(table.Capacity, max(n, 1024)*cfg.Workers)
	}
	workers := make([]*worker, cfg.Workers)
	for i := range workers {
		workers[i] = newWorker(tableConfig{table, cfg.Workers, cfg.HomeNets, cfg.CommunityIDSeed}, sh)
	}
	var st ReplayStats
	var tap *exportTap
	if len(cfg.Exports) > 0 {
		if cfg.ExportWindow <= 0 {
			cfg.ExportWindow = time.Minute
		}
		var err error
		if tap, err = newExportTap(cfg, sh); err != nil {
			return st, err
		}
	}
	dec := flows.NewDecoder()
	var total int64
	for _, f := range cfg.Files {
		if s, err := fileSize(f); err == nil {
			total += s
		}
	}
	var done int64
	// Even one worker runs beside the reader: reading and decoding on this
	// goroutine, the flow table on the worker's, the JSON on its exporter's.
	// On two cores that pipeline is what reaches 3 Mpps.
	d := newDispatcher(workers, cfg.Table.Inspect.Enable)
	var releases []func()
	err := readFiles(ctx, cfg, sh, &st, &done, total, func(data []byte, wire int, lt flows.LinkType, ts int64, stable bool) {
		pkts, _ := dec.DecodeWire(data, wire, lt, ts)
		for i := range pkts {
			if tap != nil {
				tap.packet(&pkts[i])
			}
			d.send(&pkts[i], stable)
		}
	}, d.activeFlows, func(r func()) { releases = append(releases, r) })
	if tap != nil {
		// Before the workers finish: the mapped file the last payloads
		// were read from must still be there.
		es := tap.close()
		st.Exports = &es
	}
	d.close()
	for _, r := range releases {
		r()
	}
	st.Decode = dec.Stats
	for _, w := range workers {
		addTableStats(&st.Table, &w.table.Stats)
		is := w.table.InspectStats()
		st.Inspect.Add(&is)
		st.Records += w.records
		st.Faulted += w.faulted
		st.frameBugs += w.bugs
	}
	// The frames and packets that reached a bug count as decode errors
	// too, as in live capture.
	st.Decode.Errors[flows.ReasonBug] += st.frameBugs
	return st, err
}

// worker owns one flow table; the records it ends go to its exporter.
type worker struct {
	table   *flows.Table
	active  atomic.Int64 // the table's size, published for the progress bar
	exp     *exporter
	records uint64
	faulted uint64 // packets lost: their mapped file was cut short
	bugs    uint64 // packets skipped: accounting them panicked
	sh      *core
	// pub is what the worker last published of its counts, for the
	// statistics lines, which run on another goroutine.
	pub workerCounts
}

// workerCounts are a worker's counts as it last published them.
type workerCounts struct {
	packets, records, evicted atomic.Uint64
}

// publish makes the worker's counts readable from other goroutines; the
// worker's goroutine calls it now and then.
func (w *worker) publish() {
	w.active.Store(int64(w.table.Len()))
	w.pub.packets.Store(w.table.Stats.Packets)
	w.pub.records.Store(w.records)
	w.pub.evicted.Store(w.table.Stats.Evicted)
}

// tableConfig is what a source's workers are made from.
type tableConfig struct {
	Table    flows.Config
	Workers  int // the capacity is the sensor's; the workers share it
	HomeNets []netip.Prefix
	Seed     uint16 // Community ID seed
}

func newWorker(cfg tableConfig, sh *core) *worker {
	w := &worker{exp: newExporter(record.NewClassifier(cfg.HomeNets, cfg.Seed), sh), sh: sh}
	tc := cfg.Table
	if tc.Capacity == 0 {
		tc = flows.DefaultConfig()
	}
	if sh.names != nil {
		tc.Inspect.DNSAnswer = sh.names.Add
	}
	if sh.det != nil {
		// Every DNS message goes to the DNS-tunnel analytic from the
		// worker, before the flow's record: the alert waits for that
		// record to name the process (replay and live alike; collect
		// sees no payload).
		tc.Inspect.DNSMessage = sh.det.eng.DNS
	}
	tc.Capacity = max(tc.Capacity/max(cfg.Workers, 1), 1024)
	w.table = flows.NewTable(tc, w.emit)
	return w
}

func (w *worker) emit(r *flows.Record) {
	w.records++
	w.exp.add(r, w.table.Inspection(r))
}

// flush hands the records gathered so far to the exporter.
func (w *worker) flush() { w.exp.send() }

// close hands over the last records and waits until all are written.
func (w *worker) close() { w.exp.close() }

// lineWriter serialises whole batches of lines from the workers.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (l *lineWriter) write(b []byte) {
	if len(b) == 0 {
		return
	}
	l.mu.Lock()
	if l.err == nil {
		_, l.err = l.w.Write(b)
	}
	l.mu.Unlock()
}

// dispatcher spreads decoded packets over the workers by a symmetric hash of
// their flow, so each table is touched by one goroutine only. Packets are
// copied into batches that cycle between the reader and the workers, so
// steady state allocates nothing.
type dispatcher struct {
	workers []*worker
	pending []*batch
	ch      []*queue[*batch] // reader → worker: blocks, so a replay reads no faster than its workers
	free    chan *batch
	wg      sync.WaitGroup
	drained sync.WaitGroup // workers that have taken their last packet
	seed    maphash.Seed
	payload bool // copy payloads for inspection
}

const batchPackets = 256

// noPayload stands in for payloads the workers need only the length of; it
// is never written and never read.
var noPayload = make([]byte, 1<<18)

type batch struct {
	pkts []flows.Packet
	// With payload inspection on, payloads are copied into data and
	// pointed to by offset, so a growing data leaves no slice stale.
	data []byte
	offs []uint32
}

func newDispatcher(ws []*worker, payload bool) *dispatcher {
	d := &dispatcher{workers: ws, seed: maphash.MakeSeed(), free: make(chan *batch, 8*len(ws)), payload: payload}
	for i := 0; i < cap(d.free); i++ {
		d.free <- &batch{pkts: make([]flows.Packet, 0, batchPackets)}
	}
	d.pending = make([]*batch, len(ws))
	d.drained.Add(len(ws))
	d.ch = make([]*queue[*batch], len(ws))
	for i, w := range ws {
		d.ch[i] = newQueue[*batch]("reader→worker", Block, 4)
		d.wg.Add(1)
		go func(w *worker, ch *queue[*batch]) {
			defer d.wg.Done()
			// Payloads left in a mapped file are read here: a file cut
			// short under the replay faults, and costs the batch's
			// remaining packets (counted), not the process.
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			for b := range ch.ch {
				w.updateBatch(b, d.payload)
				b.data, b.offs = b.data[:0], b.offs[:0]
				w.publish()
				b.pkts = b.pkts[:0]
				d.free <- b
			}
			// Every worker ends its flows only once all have taken their
			// last packet: a flow's name may come from a DNS answer that
			// another worker is still to read.
			d.drained.Done()
			d.drained.Wait()
			w.table.Flush()
			w.close()
		}(w, d.ch[i])
	}
	return d
}

// updateBatch hands a batch's packets to the table. A fault reading a
// payload left in a mapped file that was cut short ends the batch: the
// packets not accounted are counted as lost. Any other panic is a bug a
// packet reached: it is counted and reported, and the batch goes on with
// the next packet.
func (w *worker) updateBatch(b *batch, payload bool) {
	for j := 0; j < len(b.pkts); {
		j = w.updateFrom(b, j, payload)
	}
}

// updateFrom accounts b's packets from j on and returns where to go on
// from: the end, or past a packet that reached a bug.
func (w *worker) updateFrom(b *batch, j int, payload bool) (next int) {
	defer func() {
		if r := recover(); r != nil {
			if capture.IsFault(r) {
				w.faulted += uint64(len(b.pkts) - j)
				next = len(b.pkts)
				return
			}
			w.bugs++
			q := &b.pkts[j]
			w.sh.bug(fmt.Sprintf("a packet %v -> %v proto %d", q.SrcAddrPort(), q.DstAddrPort(), q.Proto), r, debug.Stack(), nil, nil)
			w.sh.mendTable(w.table)
			next = j + 1
		}
	}()
	for ; j < len(b.pkts); j++ {
		if payload && b.offs[j] != inPlace {
			q := &b.pkts[j]
			q.Payload = b.data[b.offs[j] : b.offs[j]+uint32(len(q.Payload))]
		}
		w.table.Update(&b.pkts[j])
	}
	return j
}

// inPlace marks a payload left where the reader found it (a mapped file).
const inPlace = ^uint32(0)

// send queues p for its worker. stable says p's payload stays valid until
// the replay ends, so it need not be copied.
func (d *dispatcher) send(p *flows.Packet, stable bool) {
	i := 0
	if len(d.workers) > 1 {
		i = int(p.FlowHash(d.seed) % uint64(len(d.workers)))
	}
	b := d.pending[i]
	if b == nil {
		b = <-d.free
		d.pending[i] = b
	}
	b.pkts = append(b.pkts, *p)
	q := &b.pkts[len(b.pkts)-1]
	switch {
	case d.payload && stable:
		b.offs = append(b.offs, inPlace)
	case d.payload:
		// The worker re-slices data by offset; Payload keeps the length.
		b.offs = append(b.offs, uint32(len(b.data)))
		b.data = append(b.data, p.Payload...)
	default:
		// Without inspection the table reads only the payload's length
		// (how much of a segment was captured), so none is copied: the
		// packet points at as many bytes of a shared zero page.
		q.Payload = noPayload[:min(len(p.Payload), len(noPayload))]
	}
	if len(b.pkts) == batchPackets {
		d.ch[i].send(b)
		d.pending[i] = nil
	}
}

// activeFlows sums the flows the workers last reported.
func (d *dispatcher) activeFlows() int {
	n := int64(0)
	for _, w := range d.workers {
		n += w.active.Load()
	}
	return int(n)
}

func (d *dispatcher) close() {
	for i, b := range d.pending {
		if b != nil && len(b.pkts) > 0 {
			d.ch[i].send(b)
		}
		d.ch[i].close()
	}
	d.wg.Wait()
}

func addTableStats(dst, s *flows.TableStats) {
	dst.Packets += s.Packets
	dst.Created += s.Created
	dst.Expired += s.Expired
	dst.Evicted += s.Evicted
	dst.Interim += s.Interim
	dst.Reused += s.Reused
	dst.Fragments += s.Fragments
	dst.FragOrphans += s.FragOrphans
	dst.FragUnresolved += s.FragUnresolved
	dst.BeyondWindow += s.BeyondWindow
	dst.Discarded += s.Discarded
}

// minFlowBytes is the fewest bytes of an uncompressed capture one flow
// can take: a 16-byte record header and a 20-byte IPv4 header with no
// link header (raw IP), once more for a tunnel's inner flow: 36 bytes for
// two flows, rounded down.
const minFlowBytes = 16

// flowBound is the most flows uncompressed capture files can hold, 0 when
// it cannot be known (compressed or not a regular file). A replay sizes
// its tables by it: a table for a million flows is 250 MB, zeroed again
// for every file a watched directory reads, and a capture of a few
// megabytes needs a fraction of it. A file that held more (nested
// tunnels) would only see flows evicted early, counted.
func flowBound(files []string) int {
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || !fi.Mode().IsRegular() || compressed(f) {
			return 0
		}
		total += fi.Size()
	}
	return int(min(total/minFlowBytes+1, 1<<40))
}

// compressed says whether a capture file starts with gzip's magic.
func compressed(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var b [2]byte
	n, _ := io.ReadFull(f, b[:])
	return n == 2 && b[0] == 0x1f && b[1] == 0x8b
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
