package collect

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// heldSet is a data set that arrived before its template, with what is
// needed to decode it once the template comes.
type heldSet struct {
	version   uint16
	obsDomain uint32
	id        uint16
	data      []byte
	hdr       header
}

// hold keeps a data set whose template is not known yet, within the
// exporter's set count, its byte budget and every exporter's. To make room
// the exporter's oldest sets go first: they have waited longest for a
// template that may never come. One exporter's hold never drops another's.
func (d *Decoder) hold(e *exporter, from netip.Addr, h heldSet) {
	size := heldSize(&h)
	b := &d.budget
	if size > b.heldMax {
		_ = d.fail(e, from, ReasonHeldBudget, fmt.Errorf("a set of %d bytes is larger than an exporter's hold (%d bytes)", len(h.data), b.heldMax))
		return
	}
	for len(e.held) >= d.cfg.HoldSets {
		d.dropOldest(e, ReasonNoTemplate)
	}
	for e.heldBytes+size > b.heldMax {
		d.dropOldest(e, ReasonHeldBudget)
	}
	for len(e.held) > 0 && b.used()+size > b.totalMax {
		d.dropOldest(e, ReasonHeldBudget)
	}
	if b.used()+size > b.totalMax {
		_ = d.fail(e, from, ReasonHeldBudget, fmt.Errorf("a set of %d bytes: every exporter's templates and held sets take %d bytes of %d", len(h.data), b.used(), b.totalMax))
		return
	}
	e.stats.Held++
	e.held = append(e.held, h)
	e.heldBytes += size
	b.held += size
}

// dropOldest drops e's oldest held set, counted by r.
func (d *Decoder) dropOldest(e *exporter, r Reason) {
	size := heldSize(&e.held[0])
	e.heldBytes -= size
	d.budget.held -= size
	e.held[0] = heldSet{}
	e.held = e.held[1:]
	d.count(e, r)
}

// release decodes the held sets whose template is now known.
func (d *Decoder) release(e *exporter, from netip.Addr, out []Record) []Record {
	kept := e.held[:0]
	for _, h := range e.held {
		t, err := e.templates.GetTemplate(h.version, h.obsDomain, h.id)
		if err != nil {
			kept = append(kept, h)
			continue
		}
		e.heldBytes -= heldSize(&h)
		d.budget.held -= heldSize(&h)
		buf := bytes.NewBuffer(h.data)
		switch tr := t.(type) {
		case netflow.TemplateRecord:
			recs, err := netflow.DecodeDataSet(h.version, buf, tr.Fields)
			if err != nil {
				_ = d.fail(e, from, ReasonMalformed, err)
			}
			for _, r := range recs {
				out = append(out, d.record(e, from, h.version, h.obsDomain, h.id, h.hdr, r.Values))
			}
		case netflow.IPFIXOptionsTemplateRecord:
			recs, _ := netflow.DecodeOptionsDataSet(h.version, buf, tr.Scopes, tr.Options)
			e.learnOptions(h.obsDomain, netflow.OptionsDataFlowSet{Records: recs})
		case netflow.NFv9OptionsTemplateRecord:
			recs, _ := netflow.DecodeOptionsDataSet(h.version, buf, tr.Scopes, tr.Options)
			e.learnOptions(h.obsDomain, netflow.OptionsDataFlowSet{Records: recs})
		}
	}
	e.held = kept
	return out
}
