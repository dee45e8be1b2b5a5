package flows

import (
	"strings"
	"testing"
	"time"
)

// TestReorderedSegmentsAreNotMissed: segments that arrive out of order but
// all arrive (two swapped, or a hole filled in two pieces) leave no
// missed bytes and no content gap ('G'): Zeek counts a gap only when the
// peer acknowledges bytes that were never captured (docs/zeek-accounting.md
// 5.7). A hole that is never filled still counts.
func TestReorderedSegmentsAreNotMissed(t *testing.T) {
	const seg = 1000
	at := func(i int) time.Duration { return 10*time.Millisecond + time.Duration(i)*time.Millisecond }
	for _, c := range []struct {
		name   string
		order  [][2]uint32 // offset past the ISN, length
		missed uint64
	}{
		{"in order", [][2]uint32{{0, seg}, {seg, seg}, {2 * seg, seg}, {3 * seg, seg}}, 0},
		{"two swapped", [][2]uint32{{0, seg}, {2 * seg, seg}, {seg, seg}, {3 * seg, seg}}, 0},
		{"hole filled in two pieces", [][2]uint32{{0, seg}, {3 * seg, seg}, {seg, seg}, {2 * seg, seg}}, 0},
		{"hole filled in two pieces, the later first", [][2]uint32{{0, seg}, {3 * seg, seg}, {2 * seg, seg}, {seg, seg}}, 0},
		{"hole never filled", [][2]uint32{{0, seg}, {2 * seg, seg}, {3 * seg, seg}}, seg},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got collected
			tab := NewTable(DefaultConfig(), got.emit)
			handshake(tab, 0, 40000)
			for i, s := range c.order {
				p := tcp(at(i), 40000, false, FlagACK|FlagPSH, 101+s[0], 501, s[1])
				p.Payload = make([]byte, s[1]) // captured whole
				tab.Update(p)
			}
			// The server acknowledges everything the client sent, then both close.
			tab.Update(tcp(at(10), 40000, true, FlagACK, 501, 101+4*seg, 0))
			tab.Update(tcp(at(11), 40000, false, FlagFIN|FlagACK, 101+4*seg, 501, 0))
			tab.Update(tcp(at(12), 40000, true, FlagFIN|FlagACK, 501, 102+4*seg, 0))
			tab.Update(tcp(at(13), 40000, false, FlagACK, 102+4*seg, 502, 0))
			tab.Flush()
			if len(got.recs) != 1 {
				t.Fatalf("%d records", len(got.recs))
			}
			r := &got.recs[0]
			h := string(r.History())
			if r.Orig.Missed != c.missed || (c.missed == 0) == strings.Contains(h, "G") || r.OrigBytes() != 4*seg {
				t.Errorf("missed %d (want %d), history %s, orig_bytes %d", r.Orig.Missed, c.missed, h, r.OrigBytes())
			}
		})
	}
}
