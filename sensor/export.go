package sensor

import (
	"fmt"
	"net/netip"
	"runtime/debug"

	"github.com/outflow-sensor/outflow/enrich/dnscache"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
)

// exportBatch is a run of ended flows on their way from a worker to its
// exporter: copies of the records and of what inspection learned.
type exportBatch struct {
	recs []flows.Record
	insp []flows.Inspection
	has  []bool
}

const exportBatchLen = 256

// exporter is the stage after a worker's flow table: it names flows from
// DNS answers and turns them into records for the record stage, on a
// goroutine of its own so that the table's goroutine only tracks packets.
// Batches cycle between the two through a free list, so steady state
// allocates nothing.
type exporter struct {
	cls     *record.Classifier
	names   *dnscache.Cache // shared by the workers: answers and flows may land on different ones
	stage   recordStage
	rec     record.Flow
	nameBuf []byte
	cur     *exportBatch
	ch      *queue[*exportBatch] // worker → exporter: blocks; a live worker's ring then fills and the kernel counts its drops
	free    chan *exportBatch
	done    chan struct{}
	sh      *core
}

func newExporter(cls *record.Classifier, sh *core) *exporter {
	e := &exporter{
		cls: cls, names: sh.names, stage: sh.stage(),
		ch: newQueue[*exportBatch]("worker→exporter", Block, 4), free: make(chan *exportBatch, 6), done: make(chan struct{}),
		sh: sh,
	}
	for i := 0; i < cap(e.free); i++ {
		e.free <- &exportBatch{
			recs: make([]flows.Record, 0, exportBatchLen),
			insp: make([]flows.Inspection, 0, exportBatchLen),
			has:  make([]bool, 0, exportBatchLen),
		}
	}
	go e.run()
	return e
}

// add copies one record, and its inspection when s is not nil; both are
// only valid during the table's emit call.
func (e *exporter) add(r *flows.Record, s *flows.Inspection) {
	if e.cur == nil {
		e.cur = <-e.free
	}
	b := e.cur
	b.recs = append(b.recs, *r)
	switch {
	case s != nil && !r.Final():
		// The flow goes on; the table may change its details while the
		// exporter encodes this record.
		b.insp = append(b.insp, s.Snapshot())
	case s != nil:
		b.insp = append(b.insp, *s)
	default:
		b.insp = append(b.insp, flows.Inspection{})
	}
	b.has = append(b.has, s != nil)
	if len(b.recs) == exportBatchLen {
		e.send()
	}
}

// send passes the current batch on, if it holds anything.
func (e *exporter) send() {
	if e.cur != nil && len(e.cur.recs) > 0 {
		e.ch.send(e.cur)
		e.cur = nil
	}
}

func (e *exporter) close() {
	e.send()
	e.ch.close()
	<-e.done
}

// records makes b's records from i on and hands them to the record stage
// (processes, analytics, outputs), and returns where to go on from: the
// end, or past a record whose making or judging panicked (a bug the flow's
// traffic reached, in a name, a handshake's strings, an analytic), which
// is counted and reported. The recovery is armed once per batch.
func (e *exporter) records(b *exportBatch, i int) (next int) {
	defer func() {
		if v := recover(); v != nil {
			r := &b.recs[i]
			o, _ := netip.AddrFromSlice(r.OrigAddr())
			d, _ := netip.AddrFromSlice(r.RespAddr())
			orig, resp := netip.AddrPortFrom(o, r.OrigP), netip.AddrPortFrom(d, r.RespP)
			e.sh.bug(fmt.Sprintf("the record of flow %v -> %v proto %d", orig, resp, r.Proto), v, debug.Stack(), nil, nil)
			next = i + 1
		}
	}()
	for ; i < len(b.recs); i++ {
		r := &b.recs[i]
		var s *flows.Inspection
		if b.has[i] {
			s = &b.insp[i]
			if e.names != nil && s.ServerName() == "" {
				var ok bool
				if e.nameBuf, ok = e.names.Lookup(e.nameBuf[:0], r.OrigAddr(), r.RespAddr(), r.First); ok {
					s.Resolved = string(e.nameBuf)
				}
			}
		}
		record.FromCapture(&e.rec, r, s)
		e.cls.Finish(&e.rec)
		e.stage.add(&e.rec)
	}
	return i
}

func (e *exporter) run() {
	defer close(e.done)
	for b := range e.ch.ch {
		for i := 0; i < len(b.recs); {
			i = e.records(b, i)
		}
		b.recs, b.insp, b.has = b.recs[:0], b.insp[:0], b.has[:0]
		e.free <- b
		// Write when the buffer is large, or when nothing else is queued,
		// so that a quiet live link still sees its records promptly.
		if e.stage.pending() >= 1<<15 || e.ch.len() == 0 {
			e.stage.flush()
		}
	}
	e.stage.flush()
}
