package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/shared"
)

// runCollector starts Collect on a loopback port, runs export (given the
// port) and returns the flow records once every datagram sent was read.
func runCollector(t *testing.T, export func(port int)) ([]map[string]any, ExportStats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	var received atomic.Uint64
	ready := make(chan int, 1)
	done := make(chan ExportStats, 1)
	go func() {
		st, err := Collect(ctx, CollectConfig{
			Listen: []string{"netflow://127.0.0.1:0"}, Flows: &out, Received: &received,
			Ready: func(a []net.Addr) { ready <- a[0].(*net.UDPAddr).Port },
		})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	export(<-ready)
	// The exporter has exited; what it sent is in the socket buffer. Wait
	// until the count stops moving before ending the collector.
	last := uint64(0)
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		if n := received.Load(); n == last && n > 0 {
			break
		} else {
			last = n
		}
	}
	cancel()
	st := <-done
	var recs []map[string]any
	dec := json.NewDecoder(&out)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	return recs, st
}

func needTool(t *testing.T, name, pkg string) {
	if _, err := exec.LookPath(name); err != nil {
		shared.Missing(t, name+" (Debian package "+pkg+")", err)
	}
}

// TestSoftflowdExports: softflowd, a real exporter from Debian, reads the
// bundled capture and exports it as NetFlow v5, v9, IPFIX and IPFIX biflows
// over loopback to the collector. Every TCP and UDP session comes out
// stitched with the packets and IP bytes per direction that replay of the
// same capture counts.
func TestSoftflowdExports(t *testing.T) {
	needTool(t, "softflowd", "softflowd")
	want := map[string]map[string]any{}
	for _, r := range replayWith(t, []string{demo}, flows.DefaultConfig(), 0) {
		if p := r["proto"]; p == "tcp" || p == "udp" {
			want[fmt.Sprintf("%v %v:%v %v:%v", p, r["orig_h"], jsonNum(r, "orig_p"), r["resp_h"], jsonNum(r, "resp_p"))] = r
		}
	}
	for _, mode := range [][]string{{"-v", "5"}, {"-v", "9", "-6"}, {"-v", "10", "-6"}, {"-v", "10", "-6", "-b"}} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			dir := t.TempDir()
			recs, st := runCollector(t, func(port int) {
				// No control socket: softflowd 1.1.0 reading a file may
				// block in accept() on it (its poll state is not set
				// in that mode).
				args := append([]string{"-r", demo, "-n", fmt.Sprintf("127.0.0.1:%d", port), "-d",
					"-c", "none", "-p", filepath.Join(dir, "pid")}, mode...)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, "softflowd", args...)
				cmd.WaitDelay = time.Second
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("softflowd %v: %v\n%s", args, err, out)
				}
			})
			got := 0
			for _, r := range recs {
				k := fmt.Sprintf("%v %v:%v %v:%v", r["proto"], r["orig_h"], jsonNum(r, "orig_p"), r["resp_h"], jsonNum(r, "resp_p"))
				w := want[k]
				if w == nil {
					continue
				}
				got++
				for _, f := range []string{"orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes"} {
					if num(r[f]) != num(w[f]) {
						t.Errorf("%s: %s %v, replay counted %v (stitch %v)", k, f, r[f], w[f], r["stitch"])
					}
				}
				wantStitch := "paired"
				if mode[len(mode)-1] == "-b" {
					wantStitch = "biflow"
				}
				if r["stitch"] != wantStitch {
					t.Errorf("%s: stitch %v, want %s", k, r["stitch"], wantStitch)
				}
				if r["observed_payload"] != false {
					t.Errorf("%s: observed_payload %v", k, r["observed_payload"])
				}
			}
			if got != len(want) {
				t.Errorf("%d of %d replayed TCP/UDP flows found among %d collected (stats %+v)", got, len(want), len(recs), st.Stitch)
			}
		})
	}
}
