// Package metrics serves a sensor's counts to Prometheus: a Collector over
// sensor.Snapshot, and an HTTP server with /metrics, /healthz and /readyz.
// Every metric is documented in docs/metrics.md; the Grafana dashboard in
// deploy/grafana/outflow.json is built on the same names.
package metrics

import (
	"maps"
	"slices"
	"strings"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/collect"
	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/prometheus/client_golang/prometheus"
)

// metric is one metric family: its name, help, type and labels.
type metric struct {
	name   string
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	labels []string
}

// all is every family, in the order Describe sends them.
var all []*metric

func counter(name, help string, labels ...string) *metric {
	return newMetric(name, help, prometheus.CounterValue, labels)
}
func gauge(name, help string, labels ...string) *metric {
	return newMetric(name, help, prometheus.GaugeValue, labels)
}

func newMetric(name, help string, kind prometheus.ValueType, labels []string) *metric {
	m := &metric{name: name, desc: prometheus.NewDesc(name, help, labels, nil), kind: kind, labels: labels}
	all = append(all, m)
	return m
}

// Label values of the source label: a capture, a watched directory
// ("directory:" and its path) or the flow listeners.
const (
	sourceCapture   = "capture"
	sourceListeners = "flow-listeners"
	sourceDirectory = "directory:"
)

var (
	capturePackets = counter("outflow_capture_packets_total", "Frames read from the interface's AF_PACKET sockets.", "interface")
	captureBytes   = counter("outflow_capture_bytes_total", "Bytes of the frames read from the interface, as captured.", "interface")
	kernelPackets  = counter("outflow_capture_kernel_packets_total", "Packets the kernel passed to our sockets on the interface, drops included.", "interface")
	kernelDrops    = counter("outflow_capture_kernel_drops_total", "Packets the kernel dropped on the interface because a capture ring was full.", "interface")

	dirFiles      = counter("outflow_directory_files_total", "Capture files read whole from the watched directory.", "directory")
	dirFileErrors = counter("outflow_directory_file_errors_total", "Capture files of the directory that could not be read, or not to their end.", "directory")
	dirPackets    = counter("outflow_directory_packets_total", "Frames read from the directory's files.", "directory")
	dirBytes      = counter("outflow_directory_bytes_total", "Bytes of the frames read from the directory's files, as captured.", "directory")

	decodeErrors = counter("outflow_decode_errors_total", "Frames, or the part of them past the outer packets, that could not be decoded, by reason.", "source", "reason")
	flowsActive  = gauge("outflow_flows_active", "Flows in the source's flow tables now.", "source")
	flowRecords  = counter("outflow_flow_records_total", "Flow records the source ended and handed to the outputs.", "source")
	flowsEvicted = counter("outflow_flows_evicted_total", "Flows ended early because a flow table was full (counted in the records too).", "source")
	handshakes   = counter("outflow_handshakes_total", "Handshakes read by payload inspection: TLS ClientHellos and ServerHellos over TCP, ClientHellos out of QUIC Initials.", "source", "kind")
	quicFlows    = counter("outflow_quic_flows_total", "Flows recognised as QUIC.", "source")
	inspAbandon  = counter("outflow_inspection_abandoned_total", "Flows whose handshake inspection was given up, by reason: budget (its buffers would pass the inspector's held-bytes budget).", "source", "reason")

	listenerDatagrams = counter("outflow_flow_listener_datagrams_total", "Flow export datagrams (NetFlow, IPFIX, sFlow) decoded.")
	listenerRecords   = counter("outflow_flow_listener_records_total", "Export records decoded from the datagrams.")
	listenerErrors    = counter("outflow_flow_listener_decode_errors_total", "Export datagrams and sets that could not be decoded, by reason.", "reason")
	listenerDrops     = counter("outflow_flow_listener_kernel_drops_total", "Datagrams the kernel dropped on the listeners' sockets.")
	listenerRefused   = counter("outflow_flow_listener_not_allowed_total", "Datagrams from senders outside a listener's allow=, dropped unread.")
	listenerState     = gauge("outflow_flow_listener_state_bytes", "Bytes the exporters' templates and held data sets take now, as accounted, by store.", "store")
	listenerStateMax  = gauge("outflow_flow_listener_state_max_bytes", "The flow listeners' byte budget for every exporter's templates and held sets together.")
	listenerForgotten = counter("outflow_flow_listener_exporters_forgotten_total", "Exporters forgotten with their templates, by reason.", "reason")

	feedLines      = counter("outflow_host_event_lines_total", "Lines (records) read from the host-event source.", "feed")
	feedEvents     = counter("outflow_host_events_total", "Host events parsed from the source and handed to the process index.", "feed")
	feedIgnored    = counter("outflow_host_events_ignored_total", "Well-formed host-event records of kinds no analytic reads.", "feed")
	feedErrors     = counter("outflow_host_event_errors_total", "Host-event records skipped, by reason.", "feed", "reason")
	joins          = counter("outflow_host_event_joins_total", "Flow ends given a process, by what attributed them (host-events: the index every host-event source feeds; procfs: /proc on this host).", "feed")
	joinMisses     = counter("outflow_host_event_join_misses_total", "Flow ends of an instrumented host that no process was found for.", "feed")
	indexDropped   = counter("outflow_host_event_index_dropped_total", "Processes and events the host-event index dropped or refused to stay within its byte budget, by reason.", "reason")
	indexTruncated = counter("outflow_host_event_command_lines_truncated_total", "Command lines cut at the index's MaxCommandLine.")
	joinConflicts  = counter("outflow_host_event_join_conflicts_total", "Flow ends that two processes claimed: the record and alerts name both.")
	indexBytes     = gauge("outflow_host_event_index_bytes", "Memory the host-event index holds, as estimated.")
	indexMaxBytes  = gauge("outflow_host_event_index_max_bytes", "The host-event index's byte budget.")
	feedJoins      = counter("outflow_host_event_feed_joins_total", "Flow ends given a process by the host-event index, by the feed whose connect event named it (sysmon, auditd, osquery...).", "event_feed")
	processes      = counter("outflow_host_event_processes_total", "Process starts the host-event index took in.", "feed")
	connects       = counter("outflow_host_event_connects_total", "Connections the host-event index took in.", "feed")

	detectFlows      = counter("outflow_detect_flows_total", "Flow records the analytics read.")
	detectEvents     = counter("outflow_detect_saas_events_total", "SaaS host events the analytics read.")
	detectDNS        = counter("outflow_detect_dns_messages_total", "DNS messages the DNS-tunnel analytic judged.")
	detectDNSDropped = counter("outflow_detect_dns_keys_dropped_total", "Host and domain windows the DNS-tunnel analytic had no room for.")
	alerts           = counter("outflow_alerts_total", "Alerts raised, by analytic and severity.", "analytic", "severity")
	alertsSuppressed = counter("outflow_alerts_suppressed_total", "Alerts not raised because their dedup key was still live.")
	queueBatches     = gauge("outflow_detect_queue_batches", "Batches of flow records waiting for the analytics.")
	queueCapacity    = gauge("outflow_detect_queue_capacity_batches", "Batches the analytics' queue holds at most.")
	queueBlocked     = counter("outflow_detect_queue_blocked_total", "Batches whose sender had to wait for room in the analytics' queue.")

	fleetProduced = counter("outflow_fleet_produced_total", "Observations of this sensor's analytics that Kafka acknowledged.")
	fleetDropped  = counter("outflow_fleet_dropped_total", "Observations lost: the backlog was full, Kafka refused them, or they were undelivered at stop.")
	fleetConsumed = counter("outflow_fleet_consumed_total", "Messages read from the fleet's topics, this sensor's own included.")
	fleetMerged   = counter("outflow_fleet_merged_total", "Other sensors' observations folded into this sensor's analytics.")
	fleetBad      = counter("outflow_fleet_bad_messages_total", "Messages on the fleet's topics refused as cut short, malformed or of an unknown version.")
	fleetLag      = gauge("outflow_fleet_lag_messages", "Messages on the fleet's topics not read yet, as of the last fetch.")
	fleetBacklog  = gauge("outflow_fleet_backlog_observations", "Observations waiting for Kafka.")
	fleetDown     = gauge("outflow_fleet_down", "1 while Kafka is unreachable: the sensor learns alone.")

	outRecords   = counter("outflow_output_records_total", "Records written to (or taken by) the output's destination.", "output")
	outBytes     = counter("outflow_output_bytes_total", "Bytes written to (or taken by) the output's destination.", "output")
	outDropped   = counter("outflow_output_dropped_records_total", "Records the output lost: its destination failed and its queue was full.", "output")
	outErrors    = counter("outflow_output_errors_total", "Failed writes, opens or sends of the output.", "output")
	outRetries   = counter("outflow_output_retries_total", "Sends the output tried again.", "output")
	outRejected  = counter("outflow_output_rejected_records_total", "Records the receiver refused for good, skipped.", "output")
	outRotations = counter("outflow_output_rotations_total", "Rotations of the output's file.", "output")
	outReopens   = counter("outflow_output_reopens_total", "Reopenings of the output's file (SIGHUP).", "output")
	outQueued    = gauge("outflow_output_queued_records", "Records waiting in the output's memory queue.", "output")
	outPending   = gauge("outflow_output_pending_bytes", "Bytes waiting in the output's buffer or queue.", "output")
	outSpooled   = gauge("outflow_output_spooled_records", "Records waiting in the output's spool on disk.", "output")
	outSpool     = gauge("outflow_output_spool_bytes", "Bytes of the output's spool on disk.", "output")

	bugs = counter("outflow_bugs_total", "Inputs that reached a bug (a panic in the sensor or a library), in any source or stage: each was skipped, logged and kept as a bug report.")
)

// Collector is a prometheus.Collector over a sensor's snapshots. Each
// scrape takes one snapshot, so all the counters of a scrape agree.
type Collector struct {
	take func() sensor.Snapshot
}

// NewCollector returns a collector that calls take once per scrape.
func NewCollector(take func() sensor.Snapshot) *Collector { return &Collector{take: take} }

// Describe sends every family the collector may expose.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range all {
		ch <- m.desc
	}
}

// Collect takes a snapshot and sends its counts.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var e emitter
	e.snapshot(c.take())
	e.send(ch)
}

// emitter gathers one scrape's samples. Samples of one family with the
// same label values (two outputs or directories of one name) are added
// up: a family must not repeat a series.
type emitter struct {
	order []sample
	vals  map[sample]float64
}

type sample struct {
	m      *metric
	labels string // the values, each valid UTF-8, joined by labelSep
}

// labelSep cannot occur in valid UTF-8.
const labelSep = "\xff"

func (e *emitter) add(m *metric, v float64, labels ...string) {
	for i, l := range labels {
		labels[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	k := sample{m, strings.Join(labels, labelSep)}
	if e.vals == nil {
		e.vals = map[sample]float64{}
	}
	if _, ok := e.vals[k]; !ok {
		e.order = append(e.order, k)
	}
	e.vals[k] += v
}

func (e *emitter) send(ch chan<- prometheus.Metric) {
	for _, k := range e.order {
		var labels []string
		if len(k.m.labels) > 0 {
			labels = strings.Split(k.labels, labelSep)
		}
		pm, err := prometheus.NewConstMetric(k.m.desc, k.m.kind, e.vals[k], labels...)
		if err != nil {
			pm = prometheus.NewInvalidMetric(k.m.desc, err)
		}
		ch <- pm
	}
}

func (e *emitter) snapshot(s sensor.Snapshot) {
	if s.Started {
		e.add(bugs, float64(s.Bugs))
	}
	if c := s.Capture; c != nil {
		for _, i := range c.Interfaces {
			e.add(capturePackets, float64(i.Packets), i.Name)
			e.add(captureBytes, float64(i.Bytes), i.Name)
			e.add(kernelPackets, float64(i.KernelPackets), i.Name)
			e.add(kernelDrops, float64(i.KernelDrops), i.Name)
		}
		e.packets(sourceCapture, &c.PacketCounts)
	}
	for _, d := range s.Directories {
		e.add(dirFiles, float64(d.Files), d.Path)
		e.add(dirFileErrors, float64(d.FileErrors), d.Path)
		e.add(dirPackets, float64(d.Packets), d.Path)
		e.add(dirBytes, float64(d.Bytes), d.Path)
		e.packets(sourceDirectory+d.Path, &d.PacketCounts)
	}
	if l := s.FlowListeners; l != nil {
		e.add(listenerDatagrams, float64(l.Datagrams))
		e.add(listenerRecords, float64(l.Records))
		for r := 1; r < len(l.DecodeErrors); r++ {
			e.add(listenerErrors, float64(l.DecodeErrors[r]), collect.Reason(r).String())
		}
		e.add(listenerDrops, float64(l.KernelDrops))
		e.add(listenerRefused, float64(l.NotAllowed))
		e.add(listenerState, float64(l.Budget.TemplateBytes), "templates")
		e.add(listenerState, float64(l.Budget.HeldBytes), "held")
		e.add(listenerStateMax, float64(l.Budget.MaxBytes))
		e.add(listenerForgotten, float64(l.Budget.EvictedFull), "full")
		e.add(listenerForgotten, float64(l.Budget.ExpiredIdle), "idle")
		e.add(flowRecords, float64(l.Flows), sourceListeners)
	}
	for _, f := range s.HostEvents {
		e.add(feedLines, float64(f.Lines), f.Feed)
		e.add(feedEvents, float64(f.Events), f.Feed)
		e.add(feedIgnored, float64(f.Ignored), f.Feed)
		for reason, n := range f.Errors {
			e.add(feedErrors, float64(n), f.Feed, reason)
		}
	}
	for _, j := range s.Joins {
		e.add(joins, float64(j.Joined), j.Feed)
		e.add(joinMisses, float64(j.Missed), j.Feed)
		if j.Feed == sensor.JoinHostEvents {
			e.add(processes, float64(j.Processes), j.Feed)
			e.add(connects, float64(j.Connects), j.Feed)
			for _, f := range slices.Sorted(maps.Keys(j.ByEventFeed)) {
				e.add(feedJoins, float64(j.ByEventFeed[f]), f)
			}
			for _, r := range slices.Sorted(maps.Keys(j.Dropped)) {
				e.add(indexDropped, float64(j.Dropped[r]), r)
			}
			e.add(indexTruncated, float64(j.Truncated))
			e.add(joinConflicts, float64(j.Conflicts))
			e.add(indexBytes, float64(j.IndexBytes))
			e.add(indexMaxBytes, float64(j.MaxBytes))
		}
	}
	if d := s.Detect; d != nil {
		e.add(detectFlows, float64(d.Flows))
		e.add(detectEvents, float64(d.Events))
		e.add(detectDNS, float64(d.DNSMessages))
		e.add(detectDNSDropped, float64(d.DNSKeysDropped))
		for _, a := range d.ByAlert {
			e.add(alerts, float64(a.Alerts), a.Analytic, a.Severity)
		}
		e.add(alertsSuppressed, float64(d.Suppressed))
		e.add(queueBatches, float64(d.QueueDepth))
		e.add(queueCapacity, float64(d.QueueCapacity))
		e.add(queueBlocked, float64(d.QueueBlocked))
		if f := d.Fleet; f != nil {
			e.add(fleetProduced, float64(f.Produced))
			e.add(fleetDropped, float64(f.Dropped))
			e.add(fleetConsumed, float64(f.Consumed))
			e.add(fleetMerged, float64(f.Merged))
			e.add(fleetBad, float64(f.Bad))
			e.add(fleetLag, float64(f.Lag))
			e.add(fleetBacklog, float64(f.Backlog))
			down := 0.0
			if f.Down {
				down = 1
			}
			e.add(fleetDown, down)
		}
	}
	for i := range s.Outputs {
		e.output(&s.Outputs[i])
	}
}

// packets adds what a packet source's decoders and tables counted.
func (e *emitter) packets(source string, p *sensor.PacketCounts) {
	for r := 1; r < len(p.DecodeErrors); r++ {
		e.add(decodeErrors, float64(p.DecodeErrors[r]), source, flows.Reason(r).String())
	}
	e.add(flowsActive, float64(p.FlowsActive), source)
	e.add(flowRecords, float64(p.Records), source)
	e.add(flowsEvicted, float64(p.Evicted), source)
	e.add(handshakes, float64(p.Handshakes.ClientHellos), source, "tls_client_hello")
	e.add(handshakes, float64(p.Handshakes.ServerHellos), source, "tls_server_hello")
	e.add(handshakes, float64(p.Handshakes.QUICHellos), source, "quic_client_hello")
	e.add(quicFlows, float64(p.Handshakes.QUICFlows), source)
	for r := flows.AbandonReason(1); r < flows.NumAbandonReasons; r++ {
		e.add(inspAbandon, float64(p.Handshakes.Abandoned[r]), source, r.String())
	}
}

func (e *emitter) output(o *sink.Stats) {
	e.add(outRecords, float64(o.Lines), o.Name)
	e.add(outBytes, float64(o.Bytes), o.Name)
	e.add(outDropped, float64(o.Dropped), o.Name)
	e.add(outErrors, float64(o.Errors), o.Name)
	e.add(outRetries, float64(o.Retries), o.Name)
	e.add(outRejected, float64(o.Rejected), o.Name)
	e.add(outRotations, float64(o.Rotations), o.Name)
	e.add(outReopens, float64(o.Reopens), o.Name)
	e.add(outQueued, float64(o.Queued), o.Name)
	e.add(outPending, float64(o.Pending), o.Name)
	e.add(outSpooled, float64(o.Spooled), o.Name)
	e.add(outSpool, float64(o.SpoolBytes), o.Name)
}
