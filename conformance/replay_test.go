package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor"
)

// Flow is one flow record as the sensor writes it, decoded from its JSON
// line: the line is the product's contract, so the suites read it through
// the encoder rather than through the types behind it. Keys the encoder
// writes as null or leaves out are pointers where a suite tells the two
// apart from zero.
type Flow struct {
	TS             string   `json:"ts"`
	EndTS          string   `json:"end_ts"`
	Duration       float64  `json:"duration"`
	Proto          string   `json:"proto"`
	OrigH          string   `json:"orig_h"`
	OrigP          uint64   `json:"orig_p"`
	RespH          string   `json:"resp_h"`
	RespP          uint64   `json:"resp_p"`
	OrigPkts       uint64   `json:"orig_pkts"`
	RespPkts       uint64   `json:"resp_pkts"`
	OrigIPBytes    uint64   `json:"orig_ip_bytes"`
	RespIPBytes    uint64   `json:"resp_ip_bytes"`
	OrigFrameBytes uint64   `json:"orig_frame_bytes"` // not in records from exports
	RespFrameBytes uint64   `json:"resp_frame_bytes"`
	OrigBytes      *uint64  `json:"orig_bytes"` // null in records from exports
	RespBytes      *uint64  `json:"resp_bytes"`
	MissedBytes    *uint64  `json:"missed_bytes"`
	History        *string  `json:"history"`
	State          *string  `json:"state"`
	Final          bool     `json:"final"`
	Evicted        bool     `json:"evicted"`
	CommunityID    string   `json:"community_id"`
	VLAN           *uint64  `json:"vlan"`
	InnerVLAN      *uint64  `json:"inner_vlan"`
	Tunnel         *string  `json:"tunnel"`
	Direction      string   `json:"direction"`
	OutBytes       uint64   `json:"out_bytes"`
	InBytes        uint64   `json:"in_bytes"`
	OutInRatio     *float64 `json:"out_in_ratio"`
	UploadRatio    float64  `json:"upload_ratio"`

	// What inspection learnt.
	AppProto     string             `json:"app_proto"`
	ServerName   string             `json:"server_name"`
	TLS          *TLS               `json:"tls"`
	QUIC         *QUIC              `json:"quic"`
	HTTP         *HTTP              `json:"http"`
	DNS          *DNS               `json:"dns"`
	Entropy      map[string]Entropy `json:"entropy"`
	PayloadClass map[string]string  `json:"payload_class"`

	// Records decoded from exports.
	ObservedPayload *bool  `json:"observed_payload"`
	Exporter        string `json:"exporter"`
	ExportVersion   uint64 `json:"export_version"`
	Stitch          string `json:"stitch"`
	SamplingRate    uint64 `json:"sampling_rate"`

	// Host events' attribution.
	OrigProcess *Process `json:"orig_process"`
	RespProcess *Process `json:"resp_process"`
}

// TLS is a record's tls object.
type TLS struct {
	ClientHello bool     `json:"client_hello"`
	ServerHello bool     `json:"server_hello"`
	Established bool     `json:"established"`
	StartTLS    bool     `json:"starttls"`
	Version     string   `json:"version"`
	Cipher      string   `json:"cipher"`
	SNI         string   `json:"sni"`
	ALPN        []string `json:"alpn"`
	JA3         string   `json:"ja3"`
	JA3String   string   `json:"ja3_string"`
	JA4         string   `json:"ja4"`
	JA3S        string   `json:"ja3s"`
	JA3SString  string   `json:"ja3s_string"`
}

// QUIC is a record's quic object.
type QUIC struct {
	Version string   `json:"version"`
	SNI     string   `json:"sni"`
	ALPN    []string `json:"alpn"`
	JA4     string   `json:"ja4"`
}

// HTTP is a record's http object.
type HTTP struct {
	Method           string `json:"method"`
	Host             string `json:"host"`
	RequestBodyBytes int64  `json:"request_body_bytes"`
}

// DNS is a record's dns object.
type DNS struct {
	Query   string   `json:"query"`
	QType   uint64   `json:"qtype"`
	RCode   *uint64  `json:"rcode"`
	Answers []string `json:"answers"`
}

// Entropy is one direction of a record's entropy object.
type Entropy struct {
	Bits float64 `json:"bits"`
	N    uint64  `json:"n"`
	Chi2 float64 `json:"chi2"`
}

// Process is a record's orig_process or resp_process.
type Process struct {
	Host        string `json:"host"`
	PID         *int64 `json:"pid"`
	GUID        string `json:"guid"`
	Image       string `json:"image"`
	Name        string `json:"name"`
	CommandLine string `json:"command_line"`
	User        string `json:"user"`
	Parent      *struct {
		Image       string `json:"image"`
		CommandLine string `json:"command_line"`
	} `json:"parent"`
	Feed   string `json:"feed"`
	Match  string `json:"match"`
	SkewMS int64  `json:"skew_ms"`
}

// options say what to replay or collect and how.
type options struct {
	files      []string
	table      flows.Config // passed as is: flows.Config{} is the zero table
	workers    int
	seed       uint16 // Community ID seed
	homeNets   []netip.Prefix
	exports    []string // exporter traffic to decode (replay)
	hostEvents []string
	hostIndex  process.Config // the process index's budget (zero: the defaults)
	detect     *detect.Config // detection on (replayAlerts: nil is detect.Compiled())
	final      bool           // keep only the final records
	exported   bool           // keep only the records decoded from exports
	errors     io.Writer      // problems; nil: kept and shown when the run fails
}

// replay runs sensor.Replay as o says and returns its records, decoded
// from the JSON lines it wrote.
func replay(t testing.TB, o options) ([]Flow, sensor.ReplayStats) {
	t.Helper()
	out, _, st := runReplay(t, o)
	return decodeFlows(t, out, o), st
}

// replayAlerts runs sensor.Replay as replay does, detection on, and
// returns the alerts it wrote.
func replayAlerts(t testing.TB, o options) ([]*detect.Alert, sensor.ReplayStats) {
	t.Helper()
	if o.detect == nil {
		o.detect = detect.Compiled()
	}
	_, alerts, st := runReplay(t, o)
	return decodeAlerts(t, alerts), st
}

func runReplay(t testing.TB, o options) (out, alerts *bytes.Buffer, st sensor.ReplayStats) {
	t.Helper()
	out, alerts = &bytes.Buffer{}, &bytes.Buffer{}
	var errs bytes.Buffer
	cfg := sensor.ReplayConfig{
		Files: o.files, Workers: o.workers, Table: o.table, CommunityIDSeed: o.seed, HomeNets: o.homeNets,
		Exports: o.exports, HostEvents: o.hostEvents, HostEventIndex: o.hostIndex, Flows: out, Errors: &errs,
	}
	if o.errors != nil {
		cfg.Errors = o.errors
	}
	if o.detect != nil {
		cfg.Detect = &sensor.Detection{Config: o.detect, Alerts: alerts}
	}
	st, err := sensor.Replay(context.Background(), cfg)
	if err != nil {
		t.Fatalf("replay %v: %v\n%s", o.files, err, errs.String())
	}
	return out, alerts, st
}

// collect starts sensor.Collect on a loopback port, runs export (given the
// port) and, once the datagrams stop coming, returns the records, the
// alerts (with o.detect) and the statistics. Of o it uses seed, homeNets,
// hostEvents, detect, final, exported and errors.
func collect(t testing.TB, o options, export func(port int)) ([]Flow, []*detect.Alert, sensor.ExportStats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, alerts, errs lockedBuffer
	var received atomic.Uint64
	cfg := sensor.CollectConfig{
		Listen: []string{"netflow://127.0.0.1:0"}, HostEvents: o.hostEvents, HomeNets: o.homeNets,
		CommunityIDSeed: o.seed, Flows: &out, Errors: &errs, Received: &received,
	}
	if o.errors != nil {
		cfg.Errors = o.errors
	}
	if o.detect != nil {
		cfg.Detect = &sensor.Detection{Config: o.detect, Alerts: &alerts}
	}
	ready := make(chan int, 1)
	cfg.Ready = func(a []net.Addr) { ready <- a[0].(*net.UDPAddr).Port }
	done := make(chan sensor.ExportStats, 1)
	go func() {
		st, err := sensor.Collect(ctx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	export(<-ready)
	waitQuiet(&received)
	cancel()
	st := <-done
	return decodeFlows(t, bytes.NewBufferString(out.String()), o), decodeAlerts(t, bytes.NewBufferString(alerts.String())), st
}

// waitQuiet returns once the count of datagrams read stops moving: the
// exporter has exited, and what it sent was in the socket buffer.
func waitQuiet(received *atomic.Uint64) {
	last := uint64(0)
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		if n := received.Load(); n == last && n > 0 {
			return
		} else {
			last = n
		}
	}
}

// decodeFlows reads JSON lines into records, keeping those o asks for.
func decodeFlows(t testing.TB, out *bytes.Buffer, o options) []Flow {
	t.Helper()
	var recs []Flow
	for _, l := range bytes.Split(out.Bytes(), []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var f Flow
		if err := json.Unmarshal(l, &f); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		if o.final && !f.Final || o.exported && f.ObservedPayload == nil {
			continue
		}
		recs = append(recs, f)
	}
	return recs
}

// decodeAlerts reads the alerts' JSON lines.
func decodeAlerts(t testing.TB, alerts *bytes.Buffer) []*detect.Alert {
	t.Helper()
	var out []*detect.Alert
	dec := json.NewDecoder(alerts)
	for dec.More() {
		a := &detect.Alert{}
		if err := dec.Decode(a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// inspectConfig is the default table with inspection on.
func inspectConfig() flows.Config {
	c := flows.DefaultConfig()
	c.Inspect = flows.DefaultInspectConfig()
	return c
}

// lockedBuffer is a buffer a test may read while a command or the
// collector writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// decimal is a record's number as its JSON line gives it.
func decimal(v uint64) string { return strconv.FormatUint(v, 10) }

// orDash is a number the record may write as null or leave out, "-" then
// (Zeek's way of logging an unset field).
func orDash(p *uint64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatUint(*p, 10)
}

// strOrDash is orDash for strings.
func strOrDash(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

// value is a number the record may write as null, 0 then.
func value(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
