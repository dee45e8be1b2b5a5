package encode

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/flows/communityid"
	"github.com/outflow-sensor/outflow/record"
)

// sample is the README's record: the 3 MiB curl upload of the bundled
// capture, as the flow table reports it.
func sample() *record.Flow {
	f := &record.Flow{
		Proto: 6, Orig: netip.MustParseAddrPort("10.77.0.2:41728"), Resp: netip.MustParseAddrPort("198.51.100.10:80"),
		OrigPkts: 2209, RespPkts: 480, OrigIPBytes: 3264000, RespIPBytes: 19415, Observed: true,
		OrigBytes: 3145912, RespBytes: 214, State: "SF", Final: true, HTTPBody: -1,
	}
	f.History.Set([]byte("ShADadfF"))
	f.Start = time.Date(2026, 11, 22, 11, 33, 19, 123456789, time.UTC).UnixNano()
	f.End = f.Start + 2_500_000_001
	record.NewClassifier([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 0).Finish(f)
	return f
}

// TestFlowJSON: the record is valid JSON whose values say what the record
// holds; timestamps are RFC 3339 in UTC with nanoseconds; a record from
// router exports has its payload-only keys null and says so.
func TestFlowJSON(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2026, 11, 22, 11, 33, 19, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 1, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 3, 1, 12, 0, 0, 999999999, time.UTC),
	} {
		f := sample()
		f.Start = ts.UnixNano()
		f.End = f.Start + 2_500_000_001
		var m map[string]any
		line := AppendFlow(nil, f)
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		for k, want := range map[string]any{
			"ts": ts.Format(tsLayout), "end_ts": ts.Add(2500000001).Format(tsLayout),
			"duration": 2.500000001, "proto": "tcp", "orig_h": "10.77.0.2", "resp_h": "198.51.100.10", "orig_p": 41728.0,
			"orig_bytes": 3145912.0, "resp_bytes": 214.0, "state": "SF", "direction": "outbound", "final": true,
			"out_bytes": 3145912.0, "in_bytes": 214.0, "history": "ShADadfF",
			// communityid reproduces every vector of the spec's baselines.
			"community_id": string(communityid.New(0).Append(nil, []byte{10, 77, 0, 2}, []byte{198, 51, 100, 10}, 6, 41728, 80)),
		} {
			if m[k] != want {
				t.Errorf("%s = %v, want %v", k, m[k], want)
			}
		}
		if got, want := m["upload_ratio"].(float64), (3145912.0-214)/(3145912+214); got < want-1e-6 || got > want+1e-6 {
			t.Errorf("upload_ratio %v, want %v", got, want)
		}
	}
	f := sample()
	f.Observed, f.Export = false, record.Export{Exporter: netip.MustParseAddr("192.0.2.1"), Version: 10, Stitch: "biflow", SamplingRate: 100}
	var m map[string]any
	if err := json.Unmarshal(AppendFlow(nil, f), &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"orig_bytes": nil, "history": nil, "state": nil, "observed_payload": false,
		"exporter": "192.0.2.1", "export_version": 10.0, "stitch": "biflow", "sampling_rate": 100.0,
		"out_bytes": 3264000.0, "in_bytes": 19415.0} {
		if v, ok := m[k]; !ok || v != want {
			t.Errorf("export: %s = %v, want %v", k, v, want)
		}
	}
}

func BenchmarkFlowJSON(b *testing.B) {
	f := sample()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendFlow(buf[:0], f)
	}
	b.SetBytes(int64(len(buf)))
}

// TestAppendTimestamp compares the hand-written formatter with the time
// package over a spread of instants, leap days and the epoch included.
func TestAppendTimestamp(t *testing.T) {
	check := func(ns int64) {
		want := time.Unix(0, ns).UTC().Format(tsLayout)
		if got := string(appendTimestamp(nil, ns)); got != want {
			t.Fatalf("%d: %s, time package %s", ns, got, want)
		}
	}
	for _, s := range []string{"1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "1900-03-01T00:00:00Z", "2100-02-28T12:00:00Z", "1969-12-31T23:59:59Z"} {
		ts, _ := time.Parse(time.RFC3339, s)
		check(ts.UnixNano())
		check(ts.UnixNano() + 999999999)
	}
	x := uint64(88172645463325252)
	for i := 0; i < 200000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		check(int64(x % (1 << 62)))
		check(-int64(x % (1 << 61)))
	}
	if got := string(appendSeconds(nil, 2_500_000_001)); got != "2.500000001" {
		t.Errorf("duration %s", got)
	}
}
