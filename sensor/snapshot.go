package sensor

import (
	"sort"
	"sync"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/enrich/procfs"
	"github.com/outflow-sensor/outflow/fleet"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor/collect"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// Snapshot is everything a running sensor has counted so far, taken
// without stopping anything: the statistics lines and the metrics are both
// read from it, so they never disagree. Each stage publishes its counts
// now and then rather than per packet (a capture worker once a second, a
// watched directory when a file has been read whole, the flow listeners
// once a second), so a snapshot is as fresh as that. Counts only grow
// while a run lasts, except the gauges: FlowsActive, the detection queue's
// depth and the outputs' queues. A Snapshot is a copy: nothing in it
// changes after it is taken.
type Snapshot struct {
	// Started is set in every snapshot of a sensor; the zero Snapshot is
	// of none (a metrics server before the run).
	Started bool
	// Stopped is set once the run has stopped: the counts are final.
	Stopped       bool
	Capture       *CaptureCounts  // nil without Sources.Capture
	FlowListeners *ListenerCounts // nil without Sources.FlowListeners
	Directories   []DirectoryCounts
	// HostEvents are the host-event sources' counts, one per source, as
	// they go.
	HostEvents []FeedCounts
	// Joins are what attributed flows to processes: the host-event index
	// (JoinHostEvents) and /proc on this host (JoinProcfs), when in use.
	Joins   []JoinCounts
	Detect  *DetectionCounts // nil without detection
	Outputs []sink.Stats     // one per output, by name
	// Bugs are inputs that reached a bug (a panic in the sensor or a
	// library) in any source or stage: each was skipped, logged and kept
	// as a bug report (Logging.BugReports).
	Bugs uint64
}

// PacketCounts are what a packet source's decoders and flow tables
// counted.
type PacketCounts struct {
	// DecodeErrors are frames, or the part of them past the outer
	// packets, that could not be decoded, by flows.Reason.
	DecodeErrors [flows.NumReasons]uint64
	FlowsActive  int64  // flows in the tables now
	Records      uint64 // flows ended and handed to the outputs
	Evicted      uint64 // of Records: ended early because a table was full
	Handshakes   HandshakeCounts
}

// HandshakeCounts are the handshakes payload inspection read.
type HandshakeCounts struct {
	ClientHellos uint64 // TLS ClientHellos over TCP
	ServerHellos uint64 // TLS ServerHellos over TCP
	QUICFlows    uint64 // flows recognised as QUIC
	QUICHellos   uint64 // ClientHellos read out of QUIC Initial packets
	// Abandoned counts flows whose handshake inspection was given up, by
	// flows.AbandonReason.
	Abandoned [flows.NumAbandonReasons]uint64
}

// handshakesOf picks the handshake counts out of a table's inspection
// counts.
func handshakesOf(is *flows.InspectStats) HandshakeCounts {
	return HandshakeCounts{ClientHellos: is.ClientHellos, ServerHellos: is.ServerHellos, QUICFlows: is.QUIC, QUICHellos: is.QUICHellos,
		Abandoned: is.Abandoned}
}

// CaptureCounts are what capture from interfaces counted.
type CaptureCounts struct {
	Interfaces []InterfaceCounts // in the order of Sources.Capture.Interfaces
	PacketCounts
}

// InterfaceCounts are one interface's counts, summed over its sockets.
type InterfaceCounts struct {
	Name    string
	Packets uint64 // frames read
	Bytes   uint64 // their bytes as captured
	// KernelPackets and KernelDrops are the kernel's counts for our
	// sockets (AF_PACKET): packets seen, drops included, and packets
	// dropped because a ring was full.
	KernelPackets uint64
	KernelDrops   uint64
}

// DirectoryCounts are a watched directory's counts. A file's counts are
// added when it has been read whole.
type DirectoryCounts struct {
	Path       string
	Files      uint64 // files read
	FileErrors uint64 // files that could not be read, or not to their end
	Packets    uint64 // frames read
	Bytes      uint64 // their bytes as captured
	PacketCounts
}

// directoryCounts is the snapshot's view of a directory's statistics.
func directoryCounts(st DirectoryStats) DirectoryCounts {
	return DirectoryCounts{Path: st.Path, Files: st.Files, FileErrors: st.FileErrors, Packets: st.Frames, Bytes: st.Bytes,
		PacketCounts: PacketCounts{DecodeErrors: st.Decode.Errors, Records: st.Records, Evicted: st.Table.Evicted,
			Handshakes: handshakesOf(&st.Inspect)}}
}

// ListenerCounts are what the flow listeners (NetFlow, IPFIX, sFlow)
// counted.
type ListenerCounts struct {
	Datagrams uint64 // datagrams decoded
	Records   uint64 // export records decoded
	Flows     uint64 // flow records made of them and handed to the outputs
	// DecodeErrors are datagrams and sets that could not be decoded, by
	// collect.Reason.
	DecodeErrors [collect.NumReasons]uint64
	KernelDrops  uint64 // datagrams the kernel dropped on the sockets
	NotAllowed   uint64 // datagrams from senders outside allow=, dropped
	// Budget is the decoder's templates and held sets against its byte
	// budget, and the exporters it forgot, by why.
	Budget collect.BudgetStats
}

// FeedCounts are one host-event source's counts; Feed is the source as
// configured (a path or a URL).
type FeedCounts struct {
	Feed string
	feed.Stats
}

// What attributes flows to processes, as JoinCounts.Feed names it.
const (
	JoinHostEvents = "host-events" // the index every host-event source feeds
	JoinProcfs     = "procfs"      // /proc on this host (Sources.Capture.OnHost)
)

// JoinCounts are one attributer's counts of flow ends.
type JoinCounts struct {
	Feed   string // JoinHostEvents or JoinProcfs
	Joined uint64 // flow ends given a process
	// Missed are flow ends of an instrumented host (one that reports host
	// events, or this host) that no process was found for.
	Missed uint64
	// Processes and Connects are the process starts and connections the
	// host-event index took in (JoinHostEvents only).
	Processes, Connects uint64
	// ByEventFeed splits Joined by the feed whose connect event named the
	// process: sysmon, auditd, osquery... (JoinHostEvents only).
	ByEventFeed map[string]uint64
	// The host-event index's budget (JoinHostEvents only): what it
	// dropped or refused for room, by reason, command lines cut, flows
	// two processes claimed, and the bytes it holds against its bound.
	Dropped              map[string]uint64
	Truncated            uint64
	Conflicts            uint64
	IndexBytes, MaxBytes int64
}

// joinCounts reads the attributers' counts; they are safe to read at any
// time, also after the run.
func joinCounts(j joiner) []JoinCounts {
	js, ok := j.(joiners)
	if !ok {
		return nil
	}
	var out []JoinCounts
	for _, x := range js {
		switch x := x.(type) {
		case *process.Index:
			s := x.Snapshot()
			out = append(out, JoinCounts{Feed: JoinHostEvents, Joined: s.Joined, Missed: s.Missed, Processes: s.Processes, Connects: s.Connects,
				ByEventFeed: s.JoinedByFeed, Truncated: s.Truncated, Conflicts: s.Conflicts, IndexBytes: s.Bytes, MaxBytes: s.MaxBytes,
				Dropped: map[string]uint64{"connect_evicted": s.EvictedConnects, "connect_refused": s.RefusedConnects,
					"process_evicted": s.EvictedProcesses, "other_evicted": s.EvictedOthers}})
		case *procfs.Watcher:
			s := x.Snapshot()
			out = append(out, JoinCounts{Feed: JoinProcfs, Joined: s.Joined, Missed: s.Missed})
		}
	}
	return out
}

// feedCounts are the host-event sources' counts: the final ones once the
// core has stopped, else those of the sources followed so far, or of the
// files read at start.
func feedCounts(sh *core, final *coreStats) []FeedCounts {
	var files []HostEventFile
	switch {
	case final != nil && final.HostEvents != nil:
		files = final.HostEvents.Files
	case sh.liveHostEvents != nil:
		files = sh.liveHostEvents()
	case sh.hostFiles != nil:
		files = sh.hostFiles.Files
	}
	out := make([]FeedCounts, 0, len(files))
	for _, f := range files {
		out = append(out, FeedCounts{Feed: f.Path, Stats: f.Stats})
	}
	return out
}

// DetectionCounts are what the analytics counted.
type DetectionCounts struct {
	Flows      uint64 // flow records the analytics read
	Events     uint64 // SaaS host events the analytics read
	Alerts     uint64
	Suppressed uint64 // alerts whose dedup key was still live: not raised
	// DNSMessages are the DNS messages the DNS-tunnel analytic judged;
	// DNSKeysDropped the (host, domain) windows it had no room for.
	DNSMessages, DNSKeysDropped uint64
	// ByAlert counts the alerts raised, by analytic and severity, sorted.
	ByAlert []AlertCount
	// The queue of record batches from the record stages to the
	// analytics: batches waiting now, room, and sends that had to wait.
	QueueDepth    int
	QueueCapacity int
	QueueBlocked  uint64
	// Fleet is what sharing with the other sensors counted; nil for a
	// lone sensor.
	Fleet *fleet.Stats
}

// AlertCount is how many alerts one analytic raised at one severity.
type AlertCount struct {
	Analytic, Severity string
	Alerts             uint64
}

// counts reads the analytics' counts.
func (x *detector) counts() *DetectionCounts {
	es := x.eng.Snapshot()
	q := x.batches.snapshot()
	return &DetectionCounts{Flows: es.Flows, Events: es.Events, Alerts: es.Alerts, Suppressed: es.Suppressed,
		DNSMessages: es.DNSMessages, DNSKeysDropped: es.DNSKeysDropped, ByAlert: x.alerts.list(), QueueDepth: q.Depth, QueueCapacity: q.Capacity, QueueBlocked: q.Blocked, Fleet: x.fleetStats()}
}

// fleetStats are the fleet client's counts, nil for a lone sensor. After
// the close they are the last ones.
func (x *detector) fleetStats() *fleet.Stats {
	if x.fleet == nil {
		return nil
	}
	st := x.fleet.Stats()
	return &st
}

// alertCounts counts alerts by analytic and severity as they go out.
// Alerts are rare: a lock is cheap enough.
type alertCounts struct {
	mu sync.Mutex
	n  map[AlertCount]uint64 // keys have Alerts zero
}

func (c *alertCounts) add(a *detect.Alert) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[AlertCount]uint64{}
	}
	c.n[AlertCount{Analytic: a.Analytic, Severity: a.Severity}]++
	c.mu.Unlock()
}

func (c *alertCounts) list() []AlertCount {
	c.mu.Lock()
	out := make([]AlertCount, 0, len(c.n))
	for k, n := range c.n {
		k.Alerts = n
		out = append(out, k)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Analytic != out[j].Analytic {
			return out[i].Analytic < out[j].Analytic
		}
		return out[i].Severity < out[j].Severity
	})
	return out
}

// outputCounts are the outputs' counts, one per name: the core's flow
// and alert outputs, then those the caller counts (RunOptions.Outputs).
// A sink that serves several outputs (stdout for flows and alerts) is
// counted once.
func outputCounts(sh *core, extra func() []sink.Stats) []sink.Stats {
	var out []sink.Stats
	seen := map[string]bool{}
	add := func(st sink.Stats) {
		if !seen[st.Name] {
			seen[st.Name] = true
			out = append(out, st)
		}
	}
	sinks := func(outs []Output) {
		for _, o := range outs {
			for _, s := range o.Sinks {
				if _, plain := s.(writerSink); !plain { // a writer is counted by its owner
					add(s.Stats())
				}
			}
		}
	}
	sinks(sh.outs)
	if sh.det != nil {
		for _, e := range sh.det.outs {
			sinks([]Output{e.Output})
		}
	}
	if extra != nil {
		for _, st := range extra() {
			add(st)
		}
	}
	return out
}

// snapshot takes the counts of every source, of the stages after them
// and of the outputs, as they stand.
func (r *running) snapshot(o RunOptions) Snapshot {
	s := Snapshot{Started: true}
	if r.live != nil {
		s.Capture = r.live.snapshot()
	}
	if r.coll != nil {
		s.FlowListeners = r.coll.snapshot()
	}
	for _, d := range r.dirs {
		s.Directories = append(s.Directories, directoryCounts(d.stats()))
	}
	r.mu.Lock()
	final := r.final
	r.mu.Unlock()
	s.Stopped = final != nil
	s.HostEvents = feedCounts(r.sh, final)
	s.Joins = joinCounts(r.sh.joiner)
	if r.sh.det != nil {
		s.Detect = r.sh.det.counts()
	}
	s.Outputs = outputCounts(r.sh, o.Outputs)
	s.Bugs = r.sh.bugCount.Load()
	return s
}
