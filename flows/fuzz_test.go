package flows

import "testing"

// FuzzDecode feeds arbitrary frames of any link type through the decoder and
// the table: nothing may panic, and every packet handed out must be one the
// table can account.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{}, uint16(LinkEthernet))
	d := NewDecoder()
	cfg := DefaultConfig()
	cfg.Capacity = 64
	tab := NewTable(cfg, func(r *Record) { _ = r.ConnState(); _ = r.OrigBytes() + r.RespBytes() })
	var ts int64
	f.Fuzz(func(t *testing.T, data []byte, lt uint16) {
		ts += 1e6
		pkts, err := d.Decode(data, LinkType(lt), ts)
		if err != nil {
			if _, ok := err.(Reason); !ok {
				t.Fatalf("error %v is not a Reason", err)
			}
		}
		if len(pkts) > MaxDepth {
			t.Fatalf("%d packets from one frame", len(pkts))
		}
		for i := range pkts {
			tab.Update(&pkts[i])
		}
	})
}
