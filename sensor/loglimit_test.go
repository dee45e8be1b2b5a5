package sensor

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/sensor/collect"
)

// TestBadInputLogIsLimited: 15,000 datagrams that do not decode give a
// few log lines and a count, not 15,000 lines; every one is still counted
// in the exporter's statistics; other messages pass.
func TestBadInputLogIsLimited(t *testing.T) {
	var logs syncBuf
	h := newLimitedHandler(slog.NewTextHandler(&logs, nil), problemBurst, time.Minute)
	clock := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h.st.now = func() time.Time { return clock }
	log := slog.New(h)
	p := newExportPipeline(time.Minute, collect.DefaultConfig(), nil, 0, &core{log: log}, recordStage{})
	from := netip.MustParseAddr("192.0.2.7")
	junk := []byte{0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0, 0} // no export format
	for i := 0; i < 15000; i++ {
		p.datagram(from, junk, clock)
	}
	log.Info("collecting", "addresses", "127.0.0.1:2055")
	clock = clock.Add(61 * time.Second)
	p.datagram(from, junk, clock) // the next minute: the count of the last one, then this one
	st := p.flush()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != problemBurst+3 {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), problemBurst+3, logs.String())
	}
	if !strings.Contains(logs.String(), "suppressed=14995") || !strings.Contains(logs.String(), "msg=collecting") {
		t.Errorf("%s", logs.String())
	}
	var errs uint64
	for _, n := range st.Exporters[from].Errors {
		errs += n
	}
	if errs != 15001 {
		t.Errorf("the exporter's statistics count %d bad datagrams, want 15001", errs)
	}
}
