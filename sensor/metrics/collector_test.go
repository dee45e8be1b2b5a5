package metrics_test

import (
	"bytes"
	"testing"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/collect"
	"github.com/outflow-sensor/outflow/sensor/metrics"
	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// handMade is a snapshot with every section, each count a different
// number, so a count shown under the wrong name shows.
func handMade() sensor.Snapshot {
	var capture sensor.PacketCounts
	capture.DecodeErrors[flows.ReasonIPv4] = 3
	capture.DecodeErrors[flows.ReasonTCP] = 5
	capture.FlowsActive, capture.Records, capture.Evicted = 7, 11, 2
	capture.Handshakes = sensor.HandshakeCounts{ClientHellos: 13, ServerHellos: 12, QUICFlows: 4, QUICHellos: 6}
	var dir sensor.PacketCounts
	dir.DecodeErrors[flows.ReasonEmpty] = 1
	dir.Records, dir.Evicted = 17, 1
	dir.Handshakes.ClientHellos = 19
	var lis sensor.ListenerCounts
	lis.Datagrams, lis.Records, lis.Flows, lis.KernelDrops = 23, 29, 31, 37
	lis.DecodeErrors[collect.ReasonTruncated] = 41
	return sensor.Snapshot{
		Capture: &sensor.CaptureCounts{Interfaces: []sensor.InterfaceCounts{
			{Name: "eth0", Packets: 1000, Bytes: 64000, KernelPackets: 1010, KernelDrops: 10},
			{Name: "eth1", Packets: 500, Bytes: 32000, KernelPackets: 500},
		}, PacketCounts: capture},
		FlowListeners: &lis,
		Directories: []sensor.DirectoryCounts{{Path: "/var/spool/pcaps", Files: 43, FileErrors: 47, Packets: 53, Bytes: 59,
			PacketCounts: dir}},
		HostEvents: []sensor.FeedCounts{{Feed: "/var/log/sysmon.jsonl",
			Stats: feed.Stats{Lines: 61, Events: 59, Ignored: 1, Errors: map[string]uint64{"json": 1}}}},
		Joins: []sensor.JoinCounts{{Feed: sensor.JoinHostEvents, Joined: 67, Missed: 71, Processes: 73, Connects: 79},
			{Feed: sensor.JoinProcfs, Joined: 83, Missed: 89}},
		Detect: &sensor.DetectionCounts{Flows: 97, Events: 101, Alerts: 6, Suppressed: 103, DNSMessages: 227, DNSKeysDropped: 229,
			ByAlert:    []sensor.AlertCount{{Analytic: "AN1512", Severity: "high", Alerts: 4}, {Analytic: "AN0401", Severity: "medium", Alerts: 2}},
			QueueDepth: 3, QueueCapacity: 8, QueueBlocked: 107},
		Outputs: []sink.Stats{
			{Name: "/var/log/outflow/flows.json", Lines: 109, Bytes: 113, Dropped: 127, Errors: 131, Reopens: 137, Rotations: 139, Pending: 149},
			{Name: "kafka://broker:9092/alerts", Lines: 151, Bytes: 157, Queued: 163, Retries: 167, Rejected: 173, Spooled: 179, SpoolBytes: 181},
		},
	}
}

// TestCollectorExposesSnapshot: every count of a snapshot is in the
// exposition, under its name and labels, with its type, and nothing else
// is.
func TestCollectorExposesSnapshot(t *testing.T) {
	s := handMade()
	c := metrics.NewCollector(func() sensor.Snapshot { return s })
	e := parse(t, bytes.NewReader(expose(t, c)))
	want := map[string]float64{
		`outflow_capture_packets_total{interface="eth0"}`:        1000,
		`outflow_capture_packets_total{interface="eth1"}`:        500,
		`outflow_capture_bytes_total{interface="eth0"}`:          64000,
		`outflow_capture_bytes_total{interface="eth1"}`:          32000,
		`outflow_capture_kernel_packets_total{interface="eth0"}`: 1010,
		`outflow_capture_kernel_packets_total{interface="eth1"}`: 500,
		`outflow_capture_kernel_drops_total{interface="eth0"}`:   10,
		`outflow_capture_kernel_drops_total{interface="eth1"}`:   0,

		`outflow_decode_errors_total{reason="ipv4",source="capture"}`:                            3,
		`outflow_decode_errors_total{reason="tcp",source="capture"}`:                             5,
		`outflow_decode_errors_total{reason="empty",source="directory:/var/spool/pcaps"}`:        1,
		`outflow_flows_active{source="capture"}`:                                                 7,
		`outflow_flows_active{source="directory:/var/spool/pcaps"}`:                              0,
		`outflow_flow_records_total{source="capture"}`:                                           11,
		`outflow_flow_records_total{source="directory:/var/spool/pcaps"}`:                        17,
		`outflow_flow_records_total{source="flow-listeners"}`:                                    31,
		`outflow_flows_evicted_total{source="capture"}`:                                          2,
		`outflow_flows_evicted_total{source="directory:/var/spool/pcaps"}`:                       1,
		`outflow_handshakes_total{kind="tls_client_hello",source="capture"}`:                     13,
		`outflow_handshakes_total{kind="tls_server_hello",source="capture"}`:                     12,
		`outflow_handshakes_total{kind="quic_client_hello",source="capture"}`:                    6,
		`outflow_handshakes_total{kind="tls_client_hello",source="directory:/var/spool/pcaps"}`:  19,
		`outflow_handshakes_total{kind="tls_server_hello",source="directory:/var/spool/pcaps"}`:  0,
		`outflow_handshakes_total{kind="quic_client_hello",source="directory:/var/spool/pcaps"}`: 0,
		`outflow_quic_flows_total{source="capture"}`:                                             4,
		`outflow_quic_flows_total{source="directory:/var/spool/pcaps"}`:                          0,

		`outflow_directory_files_total{directory="/var/spool/pcaps"}`:       43,
		`outflow_directory_file_errors_total{directory="/var/spool/pcaps"}`: 47,
		`outflow_directory_packets_total{directory="/var/spool/pcaps"}`:     53,
		`outflow_directory_bytes_total{directory="/var/spool/pcaps"}`:       59,

		`outflow_flow_listener_datagrams_total{}`:                       23,
		`outflow_flow_listener_records_total{}`:                         29,
		`outflow_flow_listener_decode_errors_total{reason="truncated"}`: 41,
		`outflow_flow_listener_kernel_drops_total{}`:                    37,

		`outflow_host_event_lines_total{feed="/var/log/sysmon.jsonl"}`:                61,
		`outflow_host_events_total{feed="/var/log/sysmon.jsonl"}`:                     59,
		`outflow_host_events_ignored_total{feed="/var/log/sysmon.jsonl"}`:             1,
		`outflow_host_event_errors_total{feed="/var/log/sysmon.jsonl",reason="json"}`: 1,
		`outflow_host_event_joins_total{feed="host-events"}`:                          67,
		`outflow_host_event_join_misses_total{feed="host-events"}`:                    71,
		`outflow_host_event_processes_total{feed="host-events"}`:                      73,
		`outflow_host_event_connects_total{feed="host-events"}`:                       79,
		`outflow_host_event_joins_total{feed="procfs"}`:                               83,
		`outflow_host_event_join_misses_total{feed="procfs"}`:                         89,

		`outflow_detect_flows_total{}`:                              97,
		`outflow_detect_saas_events_total{}`:                        101,
		`outflow_detect_dns_messages_total{}`:                       227,
		`outflow_detect_dns_keys_dropped_total{}`:                   229,
		`outflow_alerts_total{analytic="AN1512",severity="high"}`:   4,
		`outflow_alerts_total{analytic="AN0401",severity="medium"}`: 2,
		`outflow_alerts_suppressed_total{}`:                         103,
		`outflow_detect_queue_batches{}`:                            3,
		`outflow_detect_queue_capacity_batches{}`:                   8,
		`outflow_detect_queue_blocked_total{}`:                      107,

		`outflow_output_records_total{output="/var/log/outflow/flows.json"}`:         109,
		`outflow_output_bytes_total{output="/var/log/outflow/flows.json"}`:           113,
		`outflow_output_dropped_records_total{output="/var/log/outflow/flows.json"}`: 127,
		`outflow_output_errors_total{output="/var/log/outflow/flows.json"}`:          131,
		`outflow_output_reopens_total{output="/var/log/outflow/flows.json"}`:         137,
		`outflow_output_rotations_total{output="/var/log/outflow/flows.json"}`:       139,
		`outflow_output_pending_bytes{output="/var/log/outflow/flows.json"}`:         149,
		`outflow_output_records_total{output="kafka://broker:9092/alerts"}`:          151,
		`outflow_output_bytes_total{output="kafka://broker:9092/alerts"}`:            157,
		`outflow_output_queued_records{output="kafka://broker:9092/alerts"}`:         163,
		`outflow_output_retries_total{output="kafka://broker:9092/alerts"}`:          167,
		`outflow_output_rejected_records_total{output="kafka://broker:9092/alerts"}`: 173,
		`outflow_output_spooled_records{output="kafka://broker:9092/alerts"}`:        179,
		`outflow_output_spool_bytes{output="kafka://broker:9092/alerts"}`:            181,
	}
	for k, v := range want {
		got, ok := e.values[k]
		if !ok {
			t.Errorf("%s: not exposed", k)
		} else if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	// Every other series of the exposition is a zero: a reason, output
	// count or handshake kind the snapshot holds none of.
	for k, v := range e.values {
		if _, ok := want[k]; !ok && v != 0 {
			t.Errorf("%s = %v: not in the snapshot", k, v)
		}
	}
	// Decode errors: one series per reason and packet source.
	if n := e.series("outflow_decode_errors_total"); n != 2*(int(flows.NumReasons)-1) {
		t.Errorf("%d decode error series, want every reason of both sources", n)
	}
	for name, typ := range e.types {
		gauge := name == "outflow_flows_active" || name == "outflow_detect_queue_batches" || name == "outflow_detect_queue_capacity_batches" ||
			name == "outflow_output_queued_records" || name == "outflow_output_pending_bytes" || name == "outflow_output_spooled_records" ||
			name == "outflow_output_spool_bytes" || name == "outflow_host_event_index_bytes" || name == "outflow_host_event_index_max_bytes" ||
			name == "outflow_flow_listener_state_bytes" || name == "outflow_flow_listener_state_max_bytes"
		if gauge != (typ == dto.MetricType_GAUGE) || !gauge && typ != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v", name, typ)
		}
	}
}

// TestCollectorLint: the names and help follow Prometheus' conventions,
// as promlint checks them.
func TestCollectorLint(t *testing.T) {
	s := handMade()
	problems, err := testutil.CollectAndLint(metrics.NewCollector(func() sensor.Snapshot { return s }))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestCollectorAddsUpDuplicates: two outputs or directories of one name
// are one series with their sum (a repeated series fails the scrape), and
// a name that is not UTF-8 is exposed all the same.
func TestCollectorAddsUpDuplicates(t *testing.T) {
	s := sensor.Snapshot{
		Outputs:     []sink.Stats{{Name: "-", Lines: 2}, {Name: "-", Lines: 3}},
		Directories: []sensor.DirectoryCounts{{Path: "/d", Files: 1}, {Path: "/d", Files: 4}, {Path: "/bad\xffname", Files: 5}},
	}
	text := expose(t, metrics.NewCollector(func() sensor.Snapshot { return s }))
	e := parse(t, bytes.NewReader(text))
	if v := e.values[`outflow_output_records_total{output="-"}`]; v != 5 {
		t.Errorf("records of output -: %v", v)
	}
	if v := e.values[`outflow_directory_files_total{directory="/d"}`]; v != 5 {
		t.Errorf("files of /d: %v", v)
	}
	if v := e.values[`outflow_directory_files_total{directory="/bad`+"\uFFFD"+`name"}`]; v != 5 {
		t.Errorf("files of the directory whose name is not UTF-8: %v\n%s", v, text)
	}
}

// TestCollectorEmptySnapshot: before the sensor runs, nothing of it is
// exposed, and the scrape still succeeds.
func TestCollectorEmptySnapshot(t *testing.T) {
	n := testutil.CollectAndCount(metrics.NewCollector(func() sensor.Snapshot { return sensor.Snapshot{} }))
	if n != 0 {
		t.Errorf("%d series from an empty snapshot", n)
	}
}
