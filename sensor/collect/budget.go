package collect

import (
	"net/netip"
	"time"
	"unsafe"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// The decoder's state is counted in bytes, not only in templates and sets:
// a count bounds nothing when one IPFIX template may carry 16,000 fields.
// Twenty exporters of 1024 such templates each held 3.7 GB (issue 16).

// Byte costs, as Go lays the state out: what a template's fields take, and
// an estimate of what surrounds them (the boxed record, its map slot and
// key, the slot's share of a map grown by doubling).
const (
	fieldBytes       = int64(unsafe.Sizeof(netflow.Field{}))
	templateOverhead = 128
	// heldOverhead is a held set's struct and slot in the hold.
	heldOverhead = int64(unsafe.Sizeof(heldSet{}))
)

// templateSize is what one template takes in memory, as accounted.
func templateSize(tpl interface{}) int64 {
	var n int
	switch t := tpl.(type) {
	case netflow.TemplateRecord:
		n = cap(t.Fields)
	case netflow.IPFIXOptionsTemplateRecord:
		n = cap(t.Scopes) + cap(t.Options)
	case netflow.NFv9OptionsTemplateRecord:
		n = cap(t.Scopes) + cap(t.Options)
	}
	return templateOverhead + int64(n)*fieldBytes
}

// heldSize is what one held data set takes, as accounted.
func heldSize(h *heldSet) int64 { return heldOverhead + int64(cap(h.data)) }

// budget is the bytes every exporter's templates and held sets take now,
// against the configured bounds; each exporter's store points to it.
type budget struct {
	templateMax, heldMax, totalMax int64
	templates, held                int64
}

func (b *budget) used() int64 { return b.templates + b.held }

// BudgetStats is the decoder's state against its byte budget, and the
// exporters it forgot. Templates refused and held sets dropped over the
// budget are counted as decode errors, by ReasonTemplateBudget and
// ReasonHeldBudget.
type BudgetStats struct {
	TemplateBytes int64 // every exporter's templates, as accounted
	HeldBytes     int64 // data sets held for their templates, as accounted
	MaxBytes      int64 // Config.TotalBytes: the bound of both together
	Exporters     int   // exporters known now
	// EvictedFull counts exporters forgotten to make room for a new one;
	// ExpiredIdle, exporters forgotten after ExporterIdle of silence.
	EvictedFull, ExpiredIdle uint64
}

// Budget returns the decoder's state against its byte budget.
func (d *Decoder) Budget() BudgetStats {
	return BudgetStats{TemplateBytes: d.budget.templates, HeldBytes: d.budget.held, MaxBytes: d.budget.totalMax,
		Exporters: len(d.exporters), EvictedFull: d.Evicted, ExpiredIdle: d.Expired}
}

// Expire forgets, with their templates and held sets, the exporters that
// sent nothing for Config.ExporterIdle, and returns how many. Decode keeps
// no clock, so the caller calls Expire now and then (the collector once a
// second): an exporter is idle from the first call that finds it has sent
// nothing since the call before.
func (d *Decoder) Expire(now time.Time) int {
	n := 0
	for a, e := range d.exporters {
		if e.since.IsZero() || e.seen != e.seenAtMark {
			e.since, e.seenAtMark = now, e.seen
			continue
		}
		if now.Sub(e.since) >= d.cfg.ExporterIdle {
			d.forget(a, e)
			d.Expired++
			n++
		}
	}
	return n
}

// forget drops an exporter and gives back the bytes it held.
func (d *Decoder) forget(a netip.Addr, e *exporter) {
	d.budget.templates -= e.templates.bytes
	d.budget.held -= e.heldBytes
	delete(d.exporters, a)
	delete(d.Stats, a)
}
