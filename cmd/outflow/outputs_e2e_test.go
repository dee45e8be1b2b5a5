//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/shared"
	"github.com/outflow-sensor/outflow/internal/testserver"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The detection lab, replayed as conformance/detect_lab_test.go replays it.
var (
	labPcap     = filepath.Join("..", "..", "pcaps", "outflow-detect.pcap")
	labEvents   = filepath.Join("..", "..", "pcaps", "outflow-detect.events.jsonl")
	labConfig   = filepath.Join("..", "..", "pcaps", "detect-lab.yaml")
	labExpected = filepath.Join("..", "..", "pcaps", "detect-expected.tsv")
)

// labArgs is `outflow replay` of the lab with its host events and config.
func labArgs(more ...string) []string {
	return append([]string{"replay", "--config", labConfig, "--host-events", labEvents, labPcap}, more...)
}

// buildOutflow builds the binary as users get it, once per test.
func buildOutflow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "outflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runOutflow runs the binary to its end and returns its exit status and
// stderr. The bound only turns a hang into a failure.
func runOutflow(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("outflow %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	return 0, ""
}

// fileLines returns a file's lines without their newlines; the file must
// end with one.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// expectedRows counts the alerts an expected-alerts file of the lab lists.
func expectedRows(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			n++
		}
	}
	return n
}

// msgs are the MSG parts of what rsyslog wrote, each checked to be an
// alert's message from Outflow.
func msgs(t *testing.T, input string, got []testserver.Message) []string {
	t.Helper()
	out := make([]string, len(got))
	for i, m := range got {
		if m.AppName != "outflow" || m.MsgID != "alert" || m.SD != "-" {
			t.Errorf("%s: message %d: header %+v, want APP-NAME outflow, MSGID alert, no structured data", input, i, m)
		}
		out[i] = m.Msg
	}
	return out
}

// sameLines fails the test unless got is want, line for line.
func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d lines, want the file's %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: line %d differs from the file's:\n got %.200q\nwant %.200q", what, i, got[i], want[i])
			return
		}
	}
}

// TestOutputsReceivers replays the detection lab through the binary with
// its alerts going at once to a file, to a real rsyslog over TCP
// (octet-counted), UDP and TLS, and to a real nginx over HTTPS with a
// bearer token read from a file, and its flows to a file and to Kafka
// (franz-go's kfake, read back by a separate consumer). Every receiver gets
// exactly the file's lines, byte for byte: in the file's order over TCP,
// TLS and HTTPS, as a set over UDP, whose datagrams may be reordered; the
// alerts are as many as pcaps/detect-expected.tsv lists. Each Kafka
// message is keyed by the flow's internal host, and the messages of one
// key keep the file's order. Then the alerts in ECS to a file and to
// rsyslog's TLS input that wants a client certificate: event.id is the id
// of the same alert in Outflow's JSON.
func TestOutputsReceivers(t *testing.T) {
	began := time.Now()
	rs := testserver.StartRsyslog(t)
	ng := testserver.StartNginx(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	bin := buildOutflow(t)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(ng.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alertsPath, flowsPath := filepath.Join(dir, "alerts.json"), filepath.Join(dir, "flows.json")
	hook := ng.URL("https", "/bearer") + "?token_file=" + url.QueryEscape(token) + "&ca=" + url.QueryEscape(ng.PKI.CA)
	kafkaURL := "kafka://" + strings.Join(kc.ListenAddrs(), ",") + "/flows"
	code, stderr := runOutflow(t, bin, labArgs(
		"--alerts", alertsPath,
		"--alerts", "syslog+tcp://"+rs.Addr(testserver.TCP),
		"--alerts", "syslog+udp://"+rs.Addr(testserver.UDP),
		"--alerts", "syslog+tls://"+rs.Addr(testserver.TLS)+"?ca="+url.QueryEscape(rs.PKI.CA),
		"--alerts", hook,
		"--flows", flowsPath, "--flows", kafkaURL,
		"--spool", filepath.Join(dir, "spool"))...)
	if code != 0 {
		t.Fatalf("outflow replay: exit %d\n%s", code, stderr)
	}
	alerts := fileLines(t, alertsPath)
	if want := expectedRows(t, labExpected); len(alerts) != want {
		t.Fatalf("%s holds %d alerts; %s lists %d", alertsPath, len(alerts), labExpected, want)
	}

	// rsyslog, once it has them all: stopping it writes out what it holds,
	// so a copy still on its way would show.
	rs.Wait(testserver.TCP, len(alerts))
	rs.Wait(testserver.TLS, len(alerts))
	rs.Wait(testserver.UDP, len(alerts))
	rs.Stop()
	sameLines(t, "rsyslog over TCP", msgs(t, "tcp", rs.Read(testserver.TCP)), alerts)
	sameLines(t, "rsyslog over TLS", msgs(t, "tls", rs.Read(testserver.TLS)), alerts)
	udp := msgs(t, "udp", rs.Read(testserver.UDP))
	slices.Sort(udp)
	sorted := slices.Sorted(slices.Values(alerts))
	sameLines(t, "rsyslog over UDP, sorted", udp, sorted)

	// nginx: POSTs answered 200 whose NDJSON bodies are the file.
	file, _ := os.ReadFile(alertsPath)
	ng.Bodies("/bearer", len(file))
	ng.Stop()
	var posted []byte
	for i, r := range ng.Read("/bearer") {
		if r.Status != "200" || r.ContentType != "application/x-ndjson" {
			t.Errorf("POST %d: %v", i, r)
		}
		posted = append(posted, r.Body...)
	}
	if !bytes.Equal(posted, file) {
		t.Errorf("nginx kept %d bytes of POST bodies, not the %d of %s", len(posted), len(file), alertsPath)
	}

	checkKafka(t, kc, fileLines(t, flowsPath))
	t.Logf("JSON to every receiver: %d alerts, checked in %v", len(alerts), time.Since(began).Round(time.Millisecond))

	// ECS: the same alerts, by id.
	rs.Start()
	ecsPath := filepath.Join(dir, "alerts.ecs.json")
	auth := "syslog+tls://" + rs.Addr(testserver.TLSAuth) + "?ca=" + url.QueryEscape(rs.PKI.CA) +
		"&cert=" + url.QueryEscape(rs.PKI.ClientCert) + "&key=" + url.QueryEscape(rs.PKI.ClientKey)
	code, stderr = runOutflow(t, bin, labArgs("--alerts-format", "ecs", "--alerts", ecsPath, "--alerts", auth,
		"--flows", os.DevNull, "--spool", filepath.Join(dir, "spool-ecs"))...)
	if code != 0 {
		t.Fatalf("outflow replay --alerts-format ecs: exit %d\n%s", code, stderr)
	}
	ecs := fileLines(t, ecsPath)
	rs.Wait(testserver.TLSAuth, len(ecs))
	rs.Stop()
	sameLines(t, "rsyslog over TLS with a client certificate, ECS", msgs(t, "tlsauth", rs.Read(testserver.TLSAuth)), ecs)
	var ids, ecsIDs []string
	for _, l := range alerts {
		var a struct{ ID string }
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.ID == "" {
			t.Fatalf("an alert without an id: %.200s (%v)", l, err)
		}
		ids = append(ids, a.ID)
	}
	for _, l := range ecs {
		var e struct {
			Event struct{ ID string } `json:"event"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Event.ID == "" {
			t.Fatalf("an ECS alert without event.id: %.200s (%v)", l, err)
		}
		ecsIDs = append(ecsIDs, e.Event.ID)
	}
	slices.Sort(ids)
	slices.Sort(ecsIDs)
	if !slices.Equal(ids, ecsIDs) {
		t.Errorf("ECS event.id values %v, JSON alert ids %v", ecsIDs, ids)
	}
	t.Logf("%v in all", time.Since(began).Round(time.Millisecond))
}

// labHomeNets are the internal prefixes the lab runs with (detect-lab.yaml
// keeps deploy/outflow.yaml's HomeNets).
var labHomeNets = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7")}

func internal(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	for _, p := range labHomeNets {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// internalHost is the end of a flow inside the home networks, the
// originator when both are: what a Kafka message of the flow is keyed by
// ("" for a flow with no internal end).
func internalHost(t *testing.T, line string) string {
	t.Helper()
	var f struct {
		Orig string `json:"orig_h"`
		Resp string `json:"resp_h"`
	}
	if err := json.Unmarshal([]byte(line), &f); err != nil {
		t.Fatalf("a flow record that is not JSON: %.200s", line)
	}
	switch {
	case internal(f.Orig):
		return f.Orig
	case internal(f.Resp):
		return f.Resp
	}
	return ""
}

// checkKafka reads the flows topic back and compares it with the flow
// file: the same lines, each keyed by its internal host, the lines of a
// partition in the file's order. A marker the test produces to each
// partition after outflow has exited ends what outflow wrote there, so a
// record sent twice would show.
func checkKafka(t *testing.T, kc *kfake.Cluster, flows []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound, not a timing
	defer cancel()
	const partitions = 3
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.DefaultProduceTopic("flows"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("end of test")}).FirstErr(); err != nil {
			t.Fatalf("producing the marker to partition %d: %v", p, err)
		}
	}
	prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumeTopics("flows"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	byPart := map[int32][]*kgo.Record{}
	ended := 0
	for ended < partitions {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the markers of %d partitions are not read back after 2 minutes", partitions-ended)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("reading partition %d back: %v", p, err) })
		for _, r := range fs.Records() {
			if string(r.Value) == "end of test" {
				ended++
				continue
			}
			byPart[r.Partition] = append(byPart[r.Partition], r)
		}
	}
	pos := map[string][]int{} // a line's places in the file
	for i, l := range flows {
		pos[l] = append(pos[l], i)
	}
	var got []string
	for p, recs := range byPart {
		last := -1
		for _, r := range recs {
			v := string(r.Value)
			got = append(got, v)
			if want := internalHost(t, v); string(r.Key) != want {
				t.Errorf("partition %d: a message keyed %q, not by its internal host %q: %.200s", p, r.Key, want, v)
			}
			i := slices.IndexFunc(pos[v], func(i int) bool { return i > last })
			if i < 0 {
				t.Errorf("partition %d: a message out of the file's order, or not in the file: %.200s", p, v)
				continue
			}
			last = pos[v][i]
		}
	}
	slices.Sort(got)
	sameLines(t, "Kafka, sorted", got, slices.Sorted(slices.Values(flows)))
	keyed := 0
	for _, l := range flows {
		if internalHost(t, l) != "" {
			keyed++
		}
	}
	t.Logf("Kafka: %d flows in %d partitions, %d keyed by an internal host", len(got), len(byPart), keyed)
}

// TestOutputsZeek: --flows-format zeek writes a file that starts with the
// header Zeek's ASCII writer puts down (as in a conn.log Zeek wrote, from
// the shared test data), then a row per flow record: as many as the JSON
// run of the same capture writes.
func TestOutputsZeek(t *testing.T) {
	zeekLog := shared.Path(t, "zeek/testing/btest/Baseline/scripts.base.protocols.imap.starttls/conn.log")
	bin := buildOutflow(t)
	dir := t.TempDir()
	tsv, js := filepath.Join(dir, "conn.log"), filepath.Join(dir, "flows.json")
	for _, args := range [][]string{
		{"replay", "--quiet", "--flows-format", "zeek", "--flows", tsv, labPcap},
		{"replay", "--quiet", "--flows", js, labPcap},
	} {
		if code, stderr := runOutflow(t, bin, args...); code != 0 {
			t.Fatalf("outflow %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
	}
	ours := fileLines(t, tsv)
	var zeek []string
	for _, l := range fileLines(t, zeekLog) {
		if strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "###") { // ### is btest's note
			zeek = append(zeek, l)
		}
	}
	// Zeek's own header: #separator, #set_separator, #empty_field,
	// #unset_field, #path, then #open (btest masks its time), #fields,
	// #types.
	if len(ours) < 8 || len(zeek) < 8 {
		t.Fatalf("%s starts %q", tsv, ours)
	}
	for i := range 5 {
		if ours[i] != zeek[i] {
			t.Errorf("header line %d: %q, Zeek wrote %q", i+1, ours[i], zeek[i])
		}
	}
	if !strings.HasPrefix(ours[5], "#open\t") || !strings.HasPrefix(zeek[5], "#open") {
		t.Errorf("header line 6: %q, Zeek wrote %q", ours[5], zeek[5])
	}
	fields := strings.Split(ours[6], "\t")
	types := strings.Split(ours[7], "\t")
	zeekFields := strings.Split(zeek[6], "\t")
	// The connection's identity comes first, as in every conn.log.
	first := min(len(zeekFields), 8)
	if fields[0] != "#fields" || types[0] != "#types" || len(fields) != len(types) || len(fields) < first ||
		!slices.Equal(fields[:first], zeekFields[:first]) {
		t.Errorf("#fields and #types lines: %q / %q; Zeek's #fields starts %q", ours[6], ours[7], zeekFields[:first])
	}
	rows := 0
	for i, l := range ours[8:] {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if n := len(strings.Split(l, "\t")); n != len(fields)-1 {
			t.Errorf("row %d has %d columns, #fields names %d", i+1, n, len(fields)-1)
		}
		rows++
	}
	if want := len(fileLines(t, js)); rows != want {
		t.Errorf("%s holds %d rows; the JSON run wrote %d flow records", tsv, rows, want)
	}
}

// TestOutputsBadURL: a receiver URL that cannot work is a mistake in the
// command line: exit status 2, and one sentence that names the flag.
func TestOutputsBadURL(t *testing.T) {
	bin := buildOutflow(t)
	for _, tc := range []struct{ flag, url, says string }{
		{"--alerts", "syslog+tcp://127.0.0.1", `port "": give one`},
		{"--alerts", "ftp://127.0.0.1/x", `unknown receiver "ftp"`},
		{"--flows", "kafka://127.0.0.1:9092", "no topic"},
		{"--flows", "https://127.0.0.1:8443/hook?gzip=maybe", "option gzip"},
	} {
		code, stderr := runOutflow(t, bin, "replay", labPcap, tc.flag, tc.url)
		first, _, _ := strings.Cut(stderr, "\n")
		if code != 2 || !strings.HasPrefix(first, "outflow: replay: "+tc.flag+": ") || !strings.Contains(first, tc.says) {
			t.Errorf("%s %s: exit %d (want 2), stderr %q; want one line naming %s and saying %q", tc.flag, tc.url, code, stderr, tc.flag, tc.says)
		}
		for _, internal := range []string{"url.Error", "strconv.", "*url.", "%!"} {
			if strings.Contains(stderr, internal) {
				t.Errorf("%s %s: a Go internal in %q", tc.flag, tc.url, stderr)
			}
		}
		if strings.Count(first, ". ") > 0 {
			t.Errorf("%s %s: more than one sentence: %q", tc.flag, tc.url, first)
		}
	}
}
