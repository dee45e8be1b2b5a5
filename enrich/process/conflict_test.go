package process

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

var (
	t0       = time.Date(2026, 12, 1, 10, 59, 19, 0, time.UTC)
	client   = netip.MustParseAddrPort("10.77.0.2:44312")
	upload   = netip.MustParseAddrPort("198.51.100.10:443")
	uploadFl = Flow{Proto: 6, Orig: client, Resp: upload, Start: t0}
)

func start(host string, pid int64, image, cmd string, at time.Time) *feed.Event {
	return &feed.Event{Kind: feed.KindProcessStart, Feed: feed.FeedProcfs, Host: host, PID: pid, PPID: 1, Image: image,
		Command: cmd, Time: at}
}

func connectOf(host string, pid int64, image, feedName string, local, remote netip.AddrPort, at time.Time) *feed.Event {
	return &feed.Event{Kind: feed.KindConnect, Feed: feedName, Host: host, PID: pid, Image: image, Time: at, Proto: 6,
		Src: local.Addr(), SrcPort: local.Port(), Dst: remote.Addr(), DstPort: remote.Port(), Initiated: true, HasSrcPort: true}
}

// TestForgedConnectIsAConflict: a connect event naming another process,
// posted first and dated 30 s before the real one, neither wins silently:
// the nearer (the real) leads, the forged one is listed beside it, and
// the record says the attribution is contested.
func TestForgedConnectIsAConflict(t *testing.T) {
	x := New(DefaultConfig())
	x.Add(start("vm", 10384, "/usr/bin/curl", "curl --data-binary @- -X PUT https://upload.example/docs.tar", t0.Add(-time.Second)))
	x.Add(connectOf("vm", 6666, "/usr/bin/forged", feed.FeedProcfs, client, upload, t0.Add(-30*time.Second)))
	x.Add(connectOf("vm", 10384, "/usr/bin/curl", feed.FeedProcfs, client, upload, t0.Add(250*time.Millisecond)))
	orig, _ := x.Join(uploadFl)
	if orig == nil || orig.PID != 10384 || orig.Command == "" {
		t.Fatalf("orig = %+v, want curl (10384) with its command line", orig)
	}
	want := []ProcessRef{{Host: "vm", PID: 6666, Image: "/usr/bin/forged", Feed: feed.FeedProcfs}}
	if len(orig.Conflict) != 1 || orig.Conflict[0] != want[0] {
		t.Fatalf("conflict = %+v, want %+v", orig.Conflict, want)
	}
	if s := x.Snapshot(); s.Conflicts != 1 {
		t.Errorf("Conflicts = %d, want 1", s.Conflicts)
	}
	var rec struct {
		P struct {
			PID        int64  `json:"pid"`
			Confidence string `json:"confidence"`
			Conflict   []struct {
				PID  int64  `json:"pid"`
				Name string `json:"name"`
				Feed string `json:"feed"`
			} `json:"conflict"`
		} `json:"orig_process"`
	}
	b := append([]byte(`{"x":1`), AppendJSON(nil, "orig_process", orig)...)
	if err := json.Unmarshal(append(b, '}'), &rec); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if rec.P.PID != 10384 || rec.P.Confidence != "contested" || len(rec.P.Conflict) != 1 ||
		rec.P.Conflict[0].PID != 6666 || rec.P.Conflict[0].Name != "forged" || rec.P.Conflict[0].Feed != "procfs" {
		t.Errorf("record: %s", b)
	}
}

// TestConflictAcrossHosts: two hosts claiming the local end of one
// tuple (one of them lies about its address) is a conflict too.
func TestConflictAcrossHosts(t *testing.T) {
	x := New(DefaultConfig())
	x.Add(connectOf("vm", 10384, "/usr/bin/curl", feed.FeedProcfs, client, upload, t0))
	x.Add(connectOf("other", 77, "/usr/bin/wget", feed.FeedProcfs, client, upload, t0))
	orig, _ := x.Join(uploadFl)
	if orig == nil || len(orig.Conflict) != 1 {
		t.Fatalf("orig = %+v, want one rival", orig)
	}
	if orig.Host == orig.Conflict[0].Host {
		t.Errorf("lead and rival on one host: %+v", orig)
	}
}

// TestOneProcessTwoReports: the same process reported twice (two feeds,
// or one feed twice) is no conflict.
func TestOneProcessTwoReports(t *testing.T) {
	x := New(DefaultConfig())
	x.Add(start("vm", 10384, "/usr/bin/curl", "curl", t0.Add(-time.Second)))
	x.Add(connectOf("vm", 10384, "/usr/bin/curl", feed.FeedProcfs, client, upload, t0))
	x.Add(connectOf("vm", 10384, "curl", feed.FeedAuditd, client, upload, t0.Add(time.Millisecond)))
	x.Add(connectOf("vm", 10384, "/usr/bin/curl", feed.FeedProcfs, client, upload, t0.Add(2*time.Millisecond)))
	orig, _ := x.Join(uploadFl)
	if orig == nil || orig.PID != 10384 || len(orig.Conflict) != 0 {
		t.Fatalf("orig = %+v, want curl without conflict", orig)
	}
	if b := AppendJSON(nil, "orig_process", orig); bytes.Contains(b, []byte("conflict")) || bytes.Contains(b, []byte("contested")) {
		t.Errorf("record says contested: %s", b)
	}
}

// TestSysmonAndSecurityAreOneProcess: in the LSASS fixture, a real
// Windows host's Sysmon 3 and Security 5156 reports of the same
// connections (one by GUID, one by pid, images spelled differently) are
// one process; a conflict is reported only where the fixture itself
// shows two pids on the tuple (mDNS on 5353, which svchost and msedge
// share), and then names the other pid.
func TestSysmonAndSecurityAreOneProcess(t *testing.T) {
	x := New(DefaultConfig())
	var flows []Flow
	r := feed.NewReader("lsass")
	if err := r.Read(bytes.NewReader(lsassLog(t)), func(e *feed.Event) {
		x.Add(e)
		if e.Kind == feed.KindConnect && e.Feed == feed.FeedSysmon && e.Initiated {
			flows = append(flows, Flow{Proto: e.Proto, Orig: netip.AddrPortFrom(e.Src, e.SrcPort),
				Resp: netip.AddrPortFrom(e.Dst, e.DstPort), Start: e.Time.Add(-100 * time.Millisecond)})
		}
	}); err != nil {
		t.Fatal(err)
	}
	twoFeeds := 0
	for _, f := range flows {
		x.mu.Lock()
		pids, feeds := map[int64]bool{}, map[string]bool{}
		for _, c := range x.tuples[tupleKey{proto: f.Proto, local: f.Orig, remote: f.Resp, hasLocalPrt: true}] {
			if abs(c.ev.Time.Sub(f.Start)) < time.Minute || c.ev.Feed == feed.FeedSecurity {
				pids[c.ev.PID], feeds[c.ev.Feed] = true, true
			}
		}
		x.mu.Unlock()
		o, _ := x.Join(f)
		if o == nil {
			t.Fatalf("%v: not joined", f)
		}
		if len(feeds) == 2 {
			twoFeeds++
		}
		for _, c := range o.Conflict {
			if c.Host == o.Host && c.PID == o.PID || !pids[c.PID] {
				t.Errorf("%v: %s (%d) in conflict with %+v", f, o.Image, o.PID, c)
			}
		}
		if len(pids) == 1 && len(o.Conflict) > 0 {
			t.Errorf("%v: one pid on the tuple, conflict %+v", f, o.Conflict)
		}
	}
	if twoFeeds == 0 {
		t.Fatal("no flow reported by both Sysmon and the Security log: the test proves nothing")
	}
	t.Logf("%d flows, %d reported by both feeds", len(flows), twoFeeds)
}
