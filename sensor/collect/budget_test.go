package collect

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// bigTemplate is an IPFIX template set of one template of n fields
// (octetDeltaCount, 4 bytes, repeated).
func bigTemplate(id uint16, n int) []byte {
	body := binary.BigEndian.AppendUint16(nil, id)
	body = binary.BigEndian.AppendUint16(body, uint16(n))
	for i := 0; i < n; i++ {
		body = append(body, 0, 1, 0, 4)
	}
	return set(2, body)
}

// TestBudgets: templates are accounted by their fields, refused past the
// exporter's budget and past the total, held sets dropped oldest first
// past theirs, and an idle exporter forgotten with all it held.
func TestBudgets(t *testing.T) {
	const fields = 100
	per := int64(fields)*12 + templateOverhead // from the wire: 100 specifiers
	d := NewDecoder(Config{TemplateBytes: 3 * per, HoldBytes: 3000, TotalBytes: 5 * per, ExporterIdle: time.Minute})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := 0; i < 4; i++ {
		_, _ = d.Decode(a, message(1, bigTemplate(uint16(256+i), fields)), nil)
	}
	if got := d.Budget().TemplateBytes; got != 3*per {
		t.Fatalf("%d template bytes, want 3 templates of %d", got, per)
	}
	if d.Errors[ReasonTemplateBudget] != 1 || d.Stats[a].Errors[ReasonTemplateBudget] != 1 {
		t.Errorf("refusals %d (exporter %d), want 1", d.Errors[ReasonTemplateBudget], d.Stats[a].Errors[ReasonTemplateBudget])
	}
	// Replacing a template by one of the same size costs nothing more.
	if _, err := d.Decode(a, message(1, bigTemplate(256, fields)), nil); err != nil {
		t.Errorf("a template sent again: %v", err)
	}
	// The second exporter fits two before the total is reached.
	for i := 0; i < 3; i++ {
		_, _ = d.Decode(b, message(1, bigTemplate(uint16(256+i), fields)), nil)
	}
	if got := d.Budget().TemplateBytes; got != 5*per || d.Stats[b].Errors[ReasonTemplateBudget] != 1 {
		t.Errorf("%d template bytes, %d refused of b's", got, d.Stats[b].Errors[ReasonTemplateBudget])
	}

	// Held data: the total is full of templates, so b's data is refused.
	data := set(999, make([]byte, 1000))
	_, _ = d.Decode(b, message(1, data), nil)
	if d.Stats[b].Errors[ReasonHeldBudget] != 1 || d.Budget().HeldBytes != 0 {
		t.Errorf("held over the total: %d refused, %d held", d.Stats[b].Errors[ReasonHeldBudget], d.Budget().HeldBytes)
	}
	// Forgetting a makes room; c's hold keeps its newest within 3000 bytes.
	d.forget(a, d.exporters[a])
	c := netip.MustParseAddr("192.0.2.3")
	for i := 0; i < 4; i++ {
		_, _ = d.Decode(c, message(1, data), nil)
	}
	e := d.exporters[c]
	if len(e.held) != 2 || d.Stats[c].Errors[ReasonHeldBudget] != 2 || e.heldBytes > 3000 || d.Budget().HeldBytes != e.heldBytes {
		t.Errorf("%d sets held (%d bytes, %d in all), %d dropped", len(e.held), e.heldBytes, d.Budget().HeldBytes, d.Stats[c].Errors[ReasonHeldBudget])
	}

	// Idle: b and c send nothing for a minute; b sends again in between.
	t0 := time.Unix(1700000000, 0)
	d.Expire(t0)
	_, _ = d.Decode(b, message(1, bigTemplate(256, fields)), nil)
	if n := d.Expire(t0.Add(time.Minute)); n != 1 || d.exporters[c] != nil || d.exporters[b] == nil {
		t.Errorf("%d expired at a minute", n)
	}
	if n := d.Expire(t0.Add(2 * time.Minute)); n != 1 || len(d.exporters) != 0 || d.Expired != 2 {
		t.Errorf("%d expired at two minutes, %d left", n, len(d.exporters))
	}
	if st := d.Budget(); st.TemplateBytes != 0 || st.HeldBytes != 0 || st.ExpiredIdle != 2 {
		t.Errorf("after expiry: %+v", st)
	}
	// Refusals outlive the exporters.
	if d.Errors[ReasonTemplateBudget] != 2 || d.Errors[ReasonHeldBudget] != 3 {
		t.Errorf("refusals after expiry: %v", d.Errors)
	}
}
