package collect

import (
	"fmt"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// templateStore is goflow2's template system for one exporter, bounded: a
// flood of template IDs cannot grow it past max.
type templateStore struct {
	max       int
	templates map[uint64]interface{}
	added     uint64 // templates added or replaced, so held sets can be retried
}

func newTemplateStore(max int) *templateStore {
	return &templateStore{max: max, templates: map[uint64]interface{}{}}
}

func key(version uint16, obs uint32, id uint16) uint64 {
	return uint64(version)<<48 | uint64(obs)<<16 | uint64(id)
}

func (t *templateStore) AddTemplate(version uint16, obs uint32, id uint16, tpl interface{}) error {
	k := key(version, obs, id)
	if _, ok := t.templates[k]; !ok && len(t.templates) >= t.max {
		return fmt.Errorf("template %d of domain %d: %w (%d held)", id, obs, errTemplateFlood, t.max)
	}
	t.templates[k] = tpl
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
	return tpl, nil
}

func (t *templateStore) GetTemplates() netflow.FlowBaseTemplateSet {
	out := make(netflow.FlowBaseTemplateSet, len(t.templates))
	for k, v := range t.templates {
		out[k] = v
	}
	return out
}
