package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/detect"
)

// TestDetectionLab replays the detection lab (pcaps/record-detect.sh: real
// curl, tar, python3, openssl and socat, with the host events that
// on-host attribution recorded at the same time) and gets exactly the
// alerts pcaps/detect-expected.tsv lists, near misses silent. The volumes
// the alerts measured are the programs' own counts.
func TestDetectionLab(t *testing.T) {
	cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	alerts, st := replayAlerts(t, options{files: []string{"../pcaps/outflow-detect.pcap"}, hostEvents: []string{"../pcaps/outflow-detect.events.jsonl"},
		table: inspectConfig(), detect: cfg})
	if st.HostEvents == nil || st.HostEvents.Index.Joined == 0 {
		t.Fatalf("no flow joined to the recorded host events: %+v", st.HostEvents)
	}
	matchExpected(t, alerts, "../pcaps/detect-expected.tsv")
	checkVolumes(t, alerts)
	// The capture alone: the network side still fires, says what it
	// missed, and rates lower.
	network, _ := replayAlerts(t, options{files: []string{"../pcaps/outflow-detect.pcap"}, table: inspectConfig(), detect: cfg})
	matchExpected(t, network, "../pcaps/detect-expected-network.tsv")
	for _, a := range network {
		if !strings.HasPrefix(a.Analytic, "top_file_sharing") && (len(a.Missing) == 0 || a.Missing[0] != "process") {
			t.Errorf("%s: missing %v", a.Analytic, a.Missing)
		}
	}
}

// matchExpected checks that alerts are exactly the rows of an expected
// file: analytic, severity, process name (prefix), destination, port. A
// process "TOOL via OWNER" is a socket OWNER forked by TOOL: the alert's
// process is OWNER and its title names TOOL.
func matchExpected(t *testing.T, alerts []*detect.Alert, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			if w := strings.Split(l, "\t"); len(w) >= 5 {
				want = append(want, w)
			} else {
				t.Errorf("%s: %q: want analytic, severity, process, destination, port, why", path, l)
			}
		}
	}
	used := make([]bool, len(alerts))
	for _, w := range want {
		tool, owner, lineage := strings.Cut(w[2], " via ")
		if !lineage {
			owner = w[2]
		}
		found := false
		for i, a := range alerts {
			if used[i] || a.Analytic != w[0] || a.Severity != w[1] {
				continue
			}
			proc, dest, port := "-", "-", "-"
			if a.Process != nil {
				proc = a.Process.Name
			}
			if a.Destination != nil {
				dest, port = a.Destination.Name, strconv.Itoa(int(a.Destination.Port))
			}
			if !strings.HasPrefix(proc, owner) || dest != w[3] || port != w[4] {
				continue
			}
			if lineage && !regexp.MustCompile(`\b`+regexp.QuoteMeta(tool)+`\b`).MatchString(a.Title) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			t.Errorf("%s: missing: %s", path, strings.Join(w[:5], " "))
		}
	}
	for i, a := range alerts {
		if !used[i] {
			proc, dest := "-", "-"
			if a.Process != nil {
				proc = a.Process.Name
			}
			if a.Destination != nil {
				dest = a.Destination.Name + " " + strconv.Itoa(int(a.Destination.Port))
			}
			t.Errorf("%s: unexpected: %s %s %s %s: %s", path, a.Analytic, a.Severity, proc, dest, a.Title)
		}
	}
}

// checkVolumes compares the volumes alerts measured with what the
// programs reported.
func checkVolumes(t *testing.T, alerts []*detect.Alert) {
	t.Helper()
	// The measured volumes against the programs' reports.
	var curlTar struct {
		SizeUpload int64 `json:"size_upload"`
	}
	readJSON(t, "../pcaps/reported/detect-curl-tar-upload.json", &curlTar)
	var py struct {
		Uploaded int64 `json:"uploaded"`
	}
	readJSON(t, "../pcaps/reported/detect-python-upload.json", &py)
	encBytes := readInt(t, "../pcaps/reported/detect-openssl-enc-bytes.txt")
	for _, a := range alerts {
		out, _ := a.Evidence.Measured["out_bytes"].(float64)
		switch {
		case a.Analytic == "AN1512" && a.Process.Name == "curl":
			// TLS adds its records' overhead and the request headers.
			if int64(out) < curlTar.SizeUpload || int64(out) > curlTar.SizeUpload*102/100+16<<10 {
				t.Errorf("AN1512 curl: out_bytes %v, curl uploaded %d", out, curlTar.SizeUpload)
			}
		case a.Analytic == "first_large_upload":
			if int64(out) < py.Uploaded || int64(out) > py.Uploaded*102/100+16<<10 {
				t.Errorf("first upload: out_bytes %v, python uploaded %d", out, py.Uploaded)
			}
		case a.Analytic == "AN0401":
			// A raw stream: what openssl wrote is what crossed the wire.
			if int64(out) != encBytes {
				t.Errorf("AN0401: out_bytes %v, openssl enc wrote %d", out, encBytes)
			}
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if _, err := fmt.Sscan(string(b), &n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}
