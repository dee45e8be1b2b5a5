package conformance

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/flows"
)

const demo = "../pcaps/outflow-demo.pcap"

// TestDemoCaptureMatchesPrograms replays the bundled recording and checks each
// flow's payload bytes against what the programs that made the traffic
// reported (pcaps/reported): the kernel's TCP byte counters of every server
// connection, curl's own request and response sizes for cleartext HTTP, the
// DNS server's message sizes, and the size of the openssl enc output.
func TestDemoCaptureMatchesPrograms(t *testing.T) {
	recs, _ := replay(t, options{files: []string{demo}, table: flows.DefaultConfig(), workers: 1, final: true})
	byPort := map[string]*Flow{}
	for i, r := range recs {
		if r.OrigH == "10.77.0.2" {
			byPort[r.Proto+"/"+decimal(r.OrigP)] = &recs[i]
		}
	}
	rep := filepath.Join("..", "pcaps", "reported")
	f, err := os.Open(filepath.Join(rep, "servers.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dns := map[string][2]float64{}
	tcpChecked := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		port := e["client"].(string)[strings.LastIndex(e["client"].(string), ":")+1:]
		if e["server"] == "dns" {
			d := dns[port]
			dns[port] = [2]float64{d[0] + e["request_bytes"].(float64), d[1] + e["response_bytes"].(float64)}
			continue
		}
		r := byPort["tcp/"+port]
		if r == nil {
			t.Errorf("%v: no flow record for client port %s", e, port)
			continue
		}
		// Linux counts the FIN octet in tcpi_bytes_received and
		// tcpi_bytes_acked (they follow rcv_nxt and snd_una); both sides
		// closed with a FIN, so payload is one less each way.
		if got, want := float64(value(r.OrigBytes)), e["tcp_bytes_received"].(float64)-1; got != want {
			t.Errorf("%s port %s: orig_bytes %v, server kernel received %v payload bytes", e["server"], port, got, want)
		}
		if got, want := float64(value(r.RespBytes)), e["tcp_bytes_acked"].(float64)-1; got != want {
			t.Errorf("%s port %s: resp_bytes %v, server kernel sent %v payload bytes", e["server"], port, got, want)
		}
		if e["server"] == "sink" {
			enc, _ := os.ReadFile(filepath.Join(rep, "openssl-enc-bytes.txt"))
			n, _ := strconv.ParseFloat(strings.TrimSpace(string(enc)), 64)
			if float64(value(r.OrigBytes)) != n || e["app_bytes_received"].(float64) != n {
				t.Errorf("raw channel: orig_bytes %v, openssl enc wrote %v, sink read %v", value(r.OrigBytes), n, e["app_bytes_received"])
			}
		}
		if strOrDash(r.State) != "SF" || r.Direction != "outbound" || value(r.MissedBytes) != 0 {
			t.Errorf("%s port %s: state %v direction %v missed %v", e["server"], port, strOrDash(r.State), r.Direction, value(r.MissedBytes))
		}
		tcpChecked++
	}
	for port, d := range dns {
		r := byPort["udp/"+port]
		if r == nil || float64(value(r.OrigBytes)) != d[0] || float64(value(r.RespBytes)) != d[1] {
			t.Errorf("DNS from port %s: record %v, server saw %v bytes in and %v out", port, r, d[0], d[1])
		}
	}
	curls, _ := filepath.Glob(filepath.Join(rep, "curl-*.json"))
	for _, c := range curls {
		raw, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		var w map[string]any
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		r := byPort["tcp/"+strconv.Itoa(int(w["local_port"].(float64)))]
		if r == nil {
			t.Errorf("%s: no flow record for curl's port %v", c, w["local_port"])
			continue
		}
		if w["scheme"] == "https" || strings.HasPrefix(w["url_effective"].(string), "https") {
			continue // curl reports HTTP bytes; TLS adds its records (checked against the kernel above)
		}
		if got, want := float64(value(r.OrigBytes)), num(w["size_request"])+num(w["size_upload"]); got != want {
			t.Errorf("%s: orig_bytes %v, curl sent %v", filepath.Base(c), got, want)
		}
		if got, want := float64(value(r.RespBytes)), num(w["size_header"])+num(w["size_download"]); got != want {
			t.Errorf("%s: resp_bytes %v, curl received %v", filepath.Base(c), got, want)
		}
	}
	if tcpChecked < 9 || len(dns) < 8 || len(curls) < 8 {
		t.Fatalf("checked only %d TCP, %d DNS flows and %d curl reports", tcpChecked, len(dns), len(curls))
	}
}
