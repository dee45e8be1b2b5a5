package flows

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func sampleRecord() *Record {
	var r Record
	r.OrigH = [16]byte{10, 77, 0, 2}
	r.RespH = [16]byte{198, 51, 100, 10}
	r.OrigP, r.RespP, r.Proto = 41728, 80, 6
	r.First = time.Date(2026, 11, 22, 11, 33, 19, 123456789, time.UTC).UnixNano()
	r.Last = r.First + 2_500_000_001
	r.Orig.Pkts, r.Orig.IPBytes, r.Resp.Pkts, r.Resp.IPBytes = 2209, 3264000, 480, 19415
	r.Orig.state, r.Resp.state = tcpClosed, tcpClosed
	r.Orig.bytes, r.Orig.flags = 3145914, epFin
	r.Resp.bytes, r.Resp.flags = 216, epFin
	copy(r.history[:], "ShADadfF")
	r.flags = recFinal
	return &r
}

// TestEncoderOutput: the record is valid JSON whose values say what the
// record holds; timestamps are RFC 3339 in UTC with nanoseconds.
func TestEncoderOutput(t *testing.T) {
	e := NewEncoder([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 0)
	for _, ts := range []time.Time{
		time.Date(2026, 11, 22, 11, 33, 19, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 1, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 3, 1, 12, 0, 0, 999999999, time.UTC),
	} {
		r := sampleRecord()
		r.First = ts.UnixNano()
		r.Last = r.First + 2_500_000_001
		var m map[string]any
		line := e.Append(nil, r, nil)
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		for k, want := range map[string]any{
			"ts": ts.Format("2006-01-02T15:04:05.000000000Z07:00"), "end_ts": ts.Add(2500000001).Format("2006-01-02T15:04:05.000000000Z07:00"),
			"duration": 2.500000001, "proto": "tcp", "orig_h": "10.77.0.2", "resp_h": "198.51.100.10", "orig_p": 41728.0,
			"orig_bytes": 3145912.0, "resp_bytes": 214.0, "state": "SF", "direction": "outbound", "final": true,
			"out_bytes": 3145912.0, "in_bytes": 214.0, "history": "ShADadfF",
		} {
			if m[k] != want {
				t.Errorf("%s = %v, want %v", k, m[k], want)
			}
		}
		if got, want := m["upload_ratio"].(float64), (3145912.0-214)/(3145912+214); got < want-1e-6 || got > want+1e-6 {
			t.Errorf("upload_ratio %v, want %v", got, want)
		}
	}
}

func BenchmarkEncoder(b *testing.B) {
	e := NewEncoder(nil, 0)
	r := sampleRecord()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = e.Append(buf[:0], r, nil)
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
