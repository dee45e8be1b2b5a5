package collect

import (
	"bytes"
	"errors"
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

// hold keeps a data set whose template is not known yet.
func (d *Decoder) hold(e *exporter, from netip.Addr, h heldSet) {
	if len(e.held) >= d.cfg.HoldSets || e.heldBytes+len(h.data) > d.cfg.HoldBytes {
		// Keep the newest: the oldest has waited longest for a template
		// that may never come.
		if len(e.held) == 0 {
			_ = d.fail(e, from, ReasonNoTemplate, errors.New("set larger than the hold"))
			return
		}
		e.heldBytes -= len(e.held[0].data)
		e.held = e.held[1:]
		_ = d.fail(e, from, ReasonNoTemplate, errors.New("hold full"))
	}
	e.stats.Held++
	e.held = append(e.held, h)
	e.heldBytes += len(h.data)
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
		e.heldBytes -= len(h.data)
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
