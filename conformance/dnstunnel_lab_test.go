package conformance

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDNSTunnelLab replays the DNS-tunnel recording (pcaps/record-dnstunnel.sh:
// real iodine and dns2tcp tunnelling 300 KiB each, and dig asking dnsmasq
// 2,900 times for ordinary and CDN-like names) with the host events that
// on-host attribution wrote at the same time, under the shipped defaults,
// and gets exactly the alerts pcaps/dnstunnel-expected.tsv lists: each
// tunnel named with its program, the heavy ordinary DNS silent. The bytes
// the alerts say the names carried are at least what the programs sent.
func TestDNSTunnelLab(t *testing.T) {
	alerts, st := replayAlerts(t, options{files: []string{"../pcaps/outflow-dnstunnel.pcap"},
		hostEvents: []string{"../pcaps/outflow-dnstunnel.events.jsonl"}, table: inspectConfig()})
	if st.Detect == nil || st.Detect.DNSMessages == 0 {
		t.Fatalf("the DNS-tunnel analytic judged no message: %+v", st.Detect)
	}
	matchExpected(t, alerts, "../pcaps/dnstunnel-expected.tsv")
	counts := readCounts(t, "../pcaps/reported/dnstunnel-counts.txt")
	sent := map[string]int64{"iodine": counts["iodine_sent_bytes"], "dns2tcpc": counts["dns2tcp_sent_bytes"]}
	for _, a := range alerts {
		if a.Process == nil {
			continue
		}
		want, ok := sent[a.Process.Name]
		if !ok {
			continue
		}
		// Encoding in names only grows the data (base32 and base128 for
		// iodine, base64 for dns2tcp), by less than twice; the distinct
		// names' bytes are a lower bound of the total.
		total, _ := a.Evidence.Measured["query_name_bytes_total"].(float64)
		distinct, _ := a.Evidence.Measured["query_name_bytes"].(float64)
		if int64(total) < want || int64(total) > 2*want || distinct > total || distinct < float64(want)/2 {
			t.Errorf("%s: query_name_bytes %v of %v in all, the program sent %d", a.Process.Name, distinct, total, want)
		}
		if len(a.Evidence.CommunityIDs) != 1 {
			t.Errorf("%s: community ids %v, want the tunnel's flow", a.Process.Name, a.Evidence.CommunityIDs)
		}
	}
	// The number of lookups dig made is what dnsmasq logged: the near
	// miss really was heavy.
	if counts["dig_lookups"] < 2000 || counts["dnsmasq_queries_logged"] != counts["dig_lookups"] {
		t.Errorf("near miss: %v", counts)
	}
	// Without host events the tunnels still alert, and say the process
	// is missing.
	network, _ := replayAlerts(t, options{files: []string{"../pcaps/outflow-dnstunnel.pcap"}, table: inspectConfig()})
	if len(network) != 2 {
		t.Fatalf("without host events: %d alerts, want 2", len(network))
	}
	for _, a := range network {
		if a.Process != nil || len(a.Missing) == 0 || a.Missing[0] != "process" {
			t.Errorf("without host events: %s names %v, missing %v", a.Destination.Name, a.Process, a.Missing)
		}
	}
}

// readCounts reads "name value" lines.
func readCounts(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		m[k] = n
	}
	return m
}
