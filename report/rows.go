package report

import (
	"net/netip"
)

// maxDests bounds the destinations a row remembers; the rest of its
// bytes are added up as others.
const maxDests = 64

// rowKey is one internal host and one process on it ("" when the flows
// were not attributed).
type rowKey struct {
	host netip.Addr
	proc string
}

// destKey is a destination: its name when one is known (SNI, HTTP Host,
// the name resolved), else its address.
type destKey struct {
	name string
	addr netip.Addr
}

// row is what one host's process sent and received.
type row struct {
	flows, out, in uint64
	dests          map[destKey]uint64 // bytes out by destination
	otherDests     uint64             // flows to destinations past maxDests
}

// rowTable is the rows by host and process, at most max of them; past
// it, new rows are added up in rest.
type rowTable struct {
	max  int
	rows map[rowKey]*row
	rest row
}

func (t *rowTable) init(max int) {
	t.max = max
	t.rows = make(map[rowKey]*row)
}

func (t *rowTable) add(host netip.Addr, proc string, remote netip.AddrPort, name string, out, in uint64) {
	k := rowKey{host, proc}
	r := t.rows[k]
	if r == nil {
		if len(t.rows) >= t.max {
			r = &t.rest
		} else {
			r = &row{}
			t.rows[k] = r
		}
	}
	r.flows++
	r.out += out
	r.in += in
	if r == &t.rest {
		return // the rest names no destinations
	}
	d := destKey{name: name}
	if name == "" {
		d.addr = remote.Addr().Unmap()
	}
	if _, ok := r.dests[d]; !ok && len(r.dests) >= maxDests {
		r.otherDests++
		return
	}
	if r.dests == nil {
		r.dests = make(map[destKey]uint64, 4)
	}
	r.dests[d] += out
}

func (d destKey) String() string {
	if d.name != "" {
		return d.name
	}
	return d.addr.String()
}
