package collect

import (
	"fmt"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// templateStore is goflow2's template system for one exporter, bounded: a
// flood of template IDs cannot grow it past max, nor large templates past
// the exporter's byte budget or every exporter's together.
type templateStore struct {
	max       int
	budget    *budget
	bytes     int64 // this exporter's templates, as accounted
	templates map[uint64]interface{}
	added     uint64 // templates added or replaced, so held sets can be retried
}

func newTemplateStore(max int, b *budget) *templateStore {
	return &templateStore{max: max, budget: b, templates: map[uint64]interface{}{}}
}

func key(version uint16, obs uint32, id uint16) uint64 {
	return uint64(version)<<48 | uint64(obs)<<16 | uint64(id)
}

func (t *templateStore) AddTemplate(version uint16, obs uint32, id uint16, tpl interface{}) error {
	k := key(version, obs, id)
	old, replacing := t.templates[k]
	if !replacing && len(t.templates) >= t.max {
		return fmt.Errorf("template %d of domain %d: %w (%d held)", id, obs, errTemplateFlood, t.max)
	}
	grow := templateSize(tpl)
	if replacing {
		grow -= templateSize(old)
	}
	if grow > 0 && t.bytes+grow > t.budget.templateMax {
		return fmt.Errorf("template %d of domain %d (%d fields): %w: the exporter's templates would take %d bytes of %d",
			id, obs, (templateSize(tpl)-templateOverhead)/fieldBytes, errTemplateBudget, t.bytes+grow, t.budget.templateMax)
	}
	if grow > 0 && t.budget.used()+grow > t.budget.totalMax {
		return fmt.Errorf("template %d of domain %d (%d fields): %w: every exporter's templates and held sets would take %d bytes of %d",
			id, obs, (templateSize(tpl)-templateOverhead)/fieldBytes, errTemplateBudget, t.budget.used()+grow, t.budget.totalMax)
	}
	t.templates[k] = tpl
	t.bytes += grow
	t.budget.templates += grow
	t.added++
	return nil
}

func (t *templateStore) GetTemplate(version uint16, obs uint32, id uint16) (interface{}, error) {
	if tpl, ok := t.templates[key(version, obs, id)]; ok {
		return tpl, nil
	}
	return nil, netflow.ErrorTemplateNotFound
}

func (t *templateStore) RemoveTemplate(version uint16, obs uint32, id uint16) (interface{}, error) {
	k := key(version, obs, id)
	tpl, ok := t.templates[k]
	if !ok {
		return nil, netflow.ErrorTemplateNotFound
	}
	delete(t.templates, k)
	t.bytes -= templateSize(tpl)
	t.budget.templates -= templateSize(tpl)
	return tpl, nil
}

func (t *templateStore) GetTemplates() netflow.FlowBaseTemplateSet {
	out := make(netflow.FlowBaseTemplateSet, len(t.templates))
	for k, v := range t.templates {
		out[k] = v
	}
	return out
}
