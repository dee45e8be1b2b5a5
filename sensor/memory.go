package sensor

import (
	"github.com/outflow-sensor/outflow/enrich/dnscache"
	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/flows"
)

// MemoryPart is one store of a memory budget and the bytes it may hold.
type MemoryPart struct {
	Name  string // snake_case, a log key
	Bytes int64
}

// MemoryBudget is what a run config lets the sensor hold: Heap on the Go
// heap, the sum of its stores' budgets, which `outflow run` makes the Go
// runtime's soft limit (so the collector works harder near it instead of
// letting the heap double the live data, as GOGC alone would); OffHeap in
// fastcache's chunks, which the runtime does not see (detection state and
// DNS names). Mapped capture files and goroutine stacks come on top.
type MemoryBudget struct {
	Heap, OffHeap int64
	Parts         []MemoryPart
}

// Bytes per flow-table slot (a table of a million flows is about 250 MB,
// allocated whole) and per flow under inspection (its state, not its
// buffers, which MaxHeldBytes bounds).
const (
	flowSlotBytes    = 256
	inspectFlowBytes = 160
	// runtimeBytes is the heap the sensor needs besides its stores: code
	// tables, the output encoders, the analytics' small state, logging.
	runtimeBytes = 96 << 20
	// indexFixedBytes is what the host-event index holds beside its
	// budget whatever the budget: its maps keep the buckets of their
	// largest size (7.5 to 9 MB after a flood over 100 hosts,
	// enrich/process TestFloodKeepsRealJoins).
	indexFixedBytes = 16 << 20
	// listenerConnBytes is what each TCP host-event connection holds at
	// most outside the listener's budget: its record's own 64 KiB and
	// two 64 KiB read buffers.
	listenerConnBytes = feed.OwnBytes + 2<<16
	// datagramBufferBytes is the flow listeners' receive buffers
	// (datagram_buffers.go).
	datagramBufferBytes = smallDatagramBuffers*smallDatagram + largeDatagramBuffers*maxDatagram
)

// MemoryBudget adds up the budgets of the stores the config's sources,
// outputs and analytics use.
func (rc *RunConfig) MemoryBudget() MemoryBudget {
	var b MemoryBudget
	add := func(name string, n int64) {
		b.Heap += n
		b.Parts = append(b.Parts, MemoryPart{name, n})
	}
	src := &rc.Sources
	capacity := int64(src.MaxFlows)
	if capacity <= 0 {
		capacity = int64(flows.DefaultConfig().Capacity)
	}
	ic := flows.DefaultInspectConfig()
	inspectors := int64(0)
	if len(src.Capture.Interfaces) > 0 {
		add("capture_flow_tables", capacity*flowSlotBytes)
		inspectors += int64(max(src.Capture.Workers, 1))
	}
	if n := int64(len(src.Directories)); n > 0 {
		add("directory_flow_tables", n*capacity*flowSlotBytes)
		inspectors += n
	}
	if src.Inspect && inspectors > 0 {
		add("payload_inspection", inspectors*(ic.MaxHeldBytes+int64(ic.MaxFlows)*inspectFlowBytes))
	}
	if len(src.FlowListeners) > 0 {
		dc := src.FlowBudget.DecoderConfig(src.SamplingRate)
		add("flow_listener_state", dc.TotalBytes+datagramBufferBytes)
		add("flow_listener_stitching", capacity*flowSlotBytes)
	}
	if len(src.HostEvents) > 0 {
		add("host_event_index", src.HostEventBudget.IndexConfig().MaxBytes+indexFixedBytes)
		listeners := int64(0)
		for _, h := range src.HostEvents {
			if l, udp := feed.Listens(h); l && !udp {
				listeners++
			}
		}
		per := int64(src.HostEventBudget.ListenerBytes)
		if per <= 0 {
			per = feed.DefaultPendingBytes
		}
		if listeners > 0 {
			add("host_event_listeners", listeners*(per+feed.DefaultMaxConns*listenerConnBytes))
		}
	}
	queue := int64(rc.Outputs.QueueMaxBytes)
	if queue <= 0 {
		queue = defaultQueueMaxBytes
	}
	receivers := int64(0)
	for _, s := range append(append([]SinkConfig(nil), rc.Outputs.Flows...), rc.Outputs.Alerts...) {
		if s.URL != "" {
			receivers++
		}
	}
	if receivers > 0 {
		add("output_queues", receivers*queue)
	}
	add("runtime", runtimeBytes)
	state := int64(defaultStateBytes)
	if rc.Detect != nil && rc.Detect.State.MaxBytes > 0 {
		state = int64(rc.Detect.State.MaxBytes)
	}
	b.Parts = append(b.Parts, MemoryPart{"detection_state_off_heap", state},
		MemoryPart{"dns_names_off_heap", int64(dnscache.DefaultConfig().MaxBytes)})
	b.OffHeap = state + int64(dnscache.DefaultConfig().MaxBytes)
	return b
}
