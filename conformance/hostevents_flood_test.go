package conformance

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
)

// TestHostEventFloodKeepsJoins is issue 16's row 5 through a whole
// replay: after the lab's recorded host events come 200,000 forged
// connect events (a quarter claiming the lab's own host), fifty times the
// process index's 4 MiB budget. Before the budget, a flood like it evicted
// the real attributions without a count (joined flows 12 -> 0, alerts
// 1 -> 0). Now the index stays within its budget, the flood's cost is
// counted as refused or evicted, and every recorded connection still joins
// its process: the lab raises exactly its expected alerts.
func TestHostEventFloodKeepsJoins(t *testing.T) {
	cfg, err := detect.LoadConfig("../pcaps/detect-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "forged.jsonl")
	writeFlood(t, forged, 200_000)
	budget := process.DefaultConfig()
	budget.MaxBytes = 4 << 20
	alerts, st := replayAlerts(t, options{files: []string{"../pcaps/outflow-detect.pcap"},
		hostEvents: []string{"../pcaps/outflow-detect.events.jsonl", forged}, hostIndex: budget,
		table: inspectConfig(), detect: cfg})
	ix := st.HostEvents.Index
	t.Logf("index: %d bytes held of %d; connects refused %d, evicted %d; processes evicted %d; joined %d",
		ix.Bytes, ix.MaxBytes, ix.RefusedConnects, ix.EvictedConnects, ix.EvictedProcesses, ix.Joined)
	if ix.Bytes > ix.MaxBytes || ix.MaxBytes != budget.MaxBytes {
		t.Errorf("the index holds %d bytes, over its budget of %d", ix.Bytes, ix.MaxBytes)
	}
	if ix.RefusedConnects+ix.EvictedConnects == 0 {
		t.Error("a flood fifty times the budget cost nothing counted")
	}
	// The lab's recorded connections, each flow end of curl, tar, python3,
	// openssl and socat that the host events saw (TestDetectionLab's 12).
	if ix.Joined != 12 {
		t.Errorf("%d flow ends joined to a process under the flood, want the lab's 12", ix.Joined)
	}
	matchExpected(t, alerts, "../pcaps/detect-expected.tsv")
}

// writeFlood writes n forged connect events as Outflow host-event lines
// for tuples no flow of the lab has, dated within the lab's seconds: a
// quarter on the lab's host "vm", the rest on 99 made-up hosts.
func writeFlood(t *testing.T, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	base := time.Date(2026, 12, 1, 10, 59, 18, 0, time.UTC)
	for i := range n {
		host := "vm"
		if i%4 != 0 {
			host = fmt.Sprintf("forged-%02d", i%99)
		}
		fmt.Fprintf(w, `{"outflow_event":"connect","time":%q,"host":%q,"feed":"procfs","pid":%d,"image":"/usr/bin/forged",`+
			`"command_line":"forged --flood %d","proto":6,"src":"10.77.%d.%d","src_port":%d,"dst":"203.0.113.%d","dst_port":443,"initiated":true,"has_src_port":true}`+"\n",
			base.Add(time.Duration(i%6000)*time.Millisecond).Format(time.RFC3339Nano), host, 20000+i%30000, i,
			1+(i>>8)%250, 1+i%250, 1024+i%60000, 1+i%200)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
