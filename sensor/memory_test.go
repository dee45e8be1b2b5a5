package sensor

import (
	"testing"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// TestMemoryBudget: the budget counts each store the config's sources use,
// once per source or listener that has one, and nothing for sources it
// lacks: two directories' tables and inspectors, one flow listener, the
// index and two TCP listeners (the UDP one holds no records in progress).
func TestMemoryBudget(t *testing.T) {
	rc, err := ParseRunConfig("budget.yaml", []byte(`Sources:
  Directories: [{Path: /tmp/a}, {Path: /tmp/b}]
  FlowListeners: ["netflow://:2055"]
  HostEvents: ["syslog+udp://:5514", "syslog+tcp://:5514", "http://:8088/e"]
  MaxFlows: 65536
  HostEventBudget: {MaxBytes: 32MiB, ListenerBytes: 8MiB}
  FlowBudget: {TotalBytes: 16MiB}
Outputs:
  Flows: [{Path: /tmp/flows.jsonl}]
`))
	if err != nil {
		t.Fatal(err)
	}
	b := rc.MemoryBudget()
	want := map[string]int64{
		"directory_flow_tables":   2 * 65536 * flowSlotBytes,
		"payload_inspection":      2 * (64<<20 + 262144*inspectFlowBytes),
		"flow_listener_state":     16<<20 + datagramBufferBytes,
		"flow_listener_stitching": 65536 * flowSlotBytes,
		"host_event_index":        32<<20 + indexFixedBytes,
		"host_event_listeners":    2 * (8<<20 + feed.DefaultMaxConns*listenerConnBytes),
		"runtime":                 runtimeBytes,
	}
	var sum int64
	for _, p := range b.Parts {
		if w, ok := want[p.Name]; ok {
			if p.Bytes != w {
				t.Errorf("%s: %d bytes, want %d", p.Name, p.Bytes, w)
			}
			sum += p.Bytes
			delete(want, p.Name)
		}
	}
	for n := range want {
		t.Errorf("no %s in %v", n, b.Parts)
	}
	if b.Heap != sum || b.OffHeap != 128<<20 {
		t.Errorf("heap %d (parts %d), off heap %d", b.Heap, sum, b.OffHeap)
	}
	for _, p := range b.Parts {
		if p.Name == "capture_flow_tables" || p.Name == "output_queues" {
			t.Errorf("%s counted without a capture or a receiver", p.Name)
		}
	}
}
