package conformance

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestCollectHostEvents: router flows joined to host events end to end.
// softflowd exports the OTRF Log4Shell Windows capture as IPFIX to
// collect, whose host events arrive as NDJSON POSTed to its HTTP source;
// every row of the fixture's EXPECTED_JOINS.md comes out attributed as it
// does in replay.
func TestCollectHostEvents(t *testing.T) {
	needTool(t, "softflowd", "softflowd")
	dir := shared.Path(t, filepath.Join("hostlogs", "otrf-log4shell-windows"))
	rows := readExpectedJoins(t, filepath.Join(dir, "EXPECTED_JOINS.md"))
	pcap := filepath.Join(dir, "pcap_log4shell_cve2021_44228_java_serialized_2022-05-13045800.pcapng")
	logs, _ := filepath.Glob(filepath.Join(dir, "*.json"))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostURL := "http://" + ln.Addr().String() + "/events"
	ln.Close()

	var errs lockedBuffer
	// Detection on router flows: the workstation's network is the home
	// one, and with no history the first program to reach the attacker's
	// host makes it rare.
	cfg, err := detect.ParseConfig("test", []byte("HomeNets: [192.168.2.0/24]\nBaseline:\n  ActivationAfter: 0d\n"))
	if err != nil {
		t.Fatal(err)
	}
	recs, alerts, st := collect(t, options{hostEvents: []string{hostURL}, homeNets: cfg.HomePrefixes(), detect: cfg, errors: &errs}, func(port int) {
		for _, l := range logs {
			body, err := os.ReadFile(l)
			if err != nil {
				t.Fatal(err)
			}
			var resp *http.Response
			for i := 0; i < 500; i++ {
				if resp, err = http.Post(hostURL, "application/x-ndjson", bytes.NewReader(body)); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, errs.String())
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST %s: %s", l, resp.Status)
			}
		}
		// softflowd reads the file and exits (-d: foreground), flushing its
		// flows; biflow IPFIX keeps both directions in one record.
		cmd := exec.Command("softflowd", "-r", pcap, "-n", fmt.Sprintf("127.0.0.1:%d", port), "-d", "-c", "none",
			"-p", filepath.Join(t.TempDir(), "pid"), "-v", "10", "-b")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("softflowd: %v\n%s", err, b)
		}
	})
	byCID := map[string]*Flow{}
	for i, r := range recs {
		byCID[r.CommunityID] = &recs[i]
	}
	for _, row := range rows {
		r := byCID[row.cid]
		if r == nil {
			t.Errorf("%s: no flow among %d collected (%+v)", row.cid, len(byCID), st.Stitch)
			continue
		}
		want := row.ends()
		got := 0
		for _, side := range []struct {
			name string
			p    *Process
		}{{"orig_process", r.OrigProcess}, {"resp_process", r.RespProcess}} {
			name, pid, m := procEnd(side.p)
			if m == nil {
				continue
			}
			got++
			if !want[name+" "+pid] && !want[name+" "] {
				t.Errorf("%s %s: %s %s, want one of %v", row.cid, side.name, name, pid, want)
			}
		}
		if got != len(want) {
			t.Errorf("%s: %d ends attributed, want %v\n%+v", row.cid, got, want, *r)
		}
	}
	// The alert names the process the host events gave, the flow's
	// Community ID as the exporter's record hashes to, and says the payload
	// was not seen.
	found := false
	for _, a := range alerts {
		if a.Process != nil && a.Process.Name == "powershell.exe" && a.Process.PID == 2084 {
			found = true
			if len(a.Evidence.CommunityIDs) != 1 || a.Evidence.CommunityIDs[0] != "1:Xf/GpWybMK81r6wmZ7ekbI0lWr8=" || !contains(a.Missing, "payload") {
				t.Errorf("%s: %v, missing %v", a.Title, a.Evidence.CommunityIDs, a.Missing)
			}
		}
	}
	if !found {
		var all strings.Builder
		for _, a := range alerts {
			fmt.Fprintf(&all, "%+v\n", *a)
		}
		t.Errorf("no alert for powershell.exe in:\n%s", all.String())
	}
	t.Logf("stderr:\n%s", errs.String())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
