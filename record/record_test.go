package record

import (
	"net/netip"
	"testing"

	"github.com/outflow-sensor/outflow/flows/communityid"
)

func TestDirectionAndBytes(t *testing.T) {
	c := NewClassifier(nil, 0)
	for _, tc := range []struct {
		orig, resp string
		dir        Direction
		out, in    uint64
	}{
		{"10.0.0.1:40000", "203.0.113.5:443", Outbound, 900, 100},
		{"203.0.113.5:40000", "192.168.1.2:22", Inbound, 100, 900},
		{"10.0.0.1:40000", "172.16.0.9:445", Internal, 900, 100},
		{"198.51.100.1:40000", "203.0.113.5:443", External, 900, 100},
		{"[fd00::1]:40000", "[2001:db8::1]:443", Outbound, 900, 100},
	} {
		f := &Flow{Proto: 6, Orig: netip.MustParseAddrPort(tc.orig), Resp: netip.MustParseAddrPort(tc.resp),
			Observed: true, OrigBytes: 900, RespBytes: 100, OrigIPBytes: 5000, RespIPBytes: 3000}
		c.Finish(f)
		if out, in := f.OutIn(); f.Direction != tc.dir || out != tc.out || in != tc.in {
			t.Errorf("%s -> %s: %v out %d in %d", tc.orig, tc.resp, f.Direction, out, in)
		}
		// Routers count IP bytes only: those are what the record weighs.
		f.Observed = false
		if o, r := f.PayloadOrIPBytes(); o != 5000 || r != 3000 {
			t.Errorf("unobserved: %d %d", o, r)
		}
		o, r := f.Orig.Addr().AsSlice(), f.Resp.Addr().AsSlice()
		if want := communityid.New(0).Append(nil, o, r, 6, f.Orig.Port(), f.Resp.Port()); !f.CommunityID.Is(string(want)) {
			t.Errorf("%s -> %s: Community ID %s, want %s", tc.orig, tc.resp, f.CommunityID.String(), want)
		}
	}
}
