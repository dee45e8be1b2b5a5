package flows

import "fmt"

// Check checks the table's bookkeeping: every live flow (one on an LRU
// list) is found by probing from its hash's home slot, every occupied slot
// holds a live flow under that flow's own hash, and the counts agree. It
// returns nil for a sound table. A flow its slots lose cannot be ended
// (removeSlot searches for it forever), so a fault found here is a hang or
// a corrupted table a few packets later. It costs a pass over the table
// and a map of its flows: the fuzz targets call it after every frame, the
// sensor after a panic inside Update (Reset then makes the table whole).
func (t *Table) Check() error {
	live := make(map[uint32]bool, t.used)
	for c := range t.lists {
		prev := nilIdx
		for i := t.lists[c].head; i != nilIdx; i = t.recs[i].lruNext {
			if live[i] || len(live) > len(t.recs) {
				return fmt.Errorf("LRU list %d loops at record %d", c, i)
			}
			if t.recs[i].lruPrev != prev {
				return fmt.Errorf("LRU list %d: record %d points back to %d, not %d", c, i, t.recs[i].lruPrev, prev)
			}
			if got := classOf(&t.recs[i]); got != uint8(c) {
				return fmt.Errorf("record %d is on LRU list %d but its class is %d", i, c, got)
			}
			live[i] = true
			prev = i
		}
		if t.lists[c].tail != prev {
			return fmt.Errorf("LRU list %d ends at %d, its tail says %d", c, prev, t.lists[c].tail)
		}
	}
	if len(live) != t.used {
		return fmt.Errorf("%d flows on the LRU lists, %d counted", len(live), t.used)
	}
	occupied := 0
	for i, s := range t.slots {
		if s == 0 {
			continue
		}
		occupied++
		idx := uint32(s) - 1
		if !live[idx] {
			return fmt.Errorf("slot %d holds record %d, which is not a live flow", i, idx)
		}
		if h := recordHash(t, idx); uint32(h) != uint32(s>>32) {
			return fmt.Errorf("slot %d holds record %d under tag %#x, its hash is %#x", i, idx, uint32(s>>32), uint32(h))
		}
	}
	if occupied != t.used {
		return fmt.Errorf("%d slots occupied for %d flows", occupied, t.used)
	}
	for idx := range live {
		found := false
		for i, n := uint32(recordHash(t, idx))&t.mask, 0; n < len(t.slots) && t.slots[i] != 0; i, n = (i+1)&t.mask, n+1 {
			if uint32(t.slots[i]) == idx+1 {
				found = true
				break
			}
		}
		if !found {
			r := &t.recs[idx]
			return fmt.Errorf("record %d (proto %d, ports %d/%d) is not reachable from its home slot", idx, r.Proto, r.OrigP, r.RespP)
		}
	}
	return nil
}

// Reset drops every flow without a record and returns how many it dropped,
// counted in Stats.Discarded: for a table whose bookkeeping a bug broke
// (Check), where ending flows could loop forever. Counts and inspection
// statistics carry on.
func (t *Table) Reset() int {
	lost := t.used
	clear(t.slots)
	clear(t.recs)
	t.free, t.fresh, t.used = nilIdx, 0, 0
	for i := range t.lists {
		t.lists[i] = lruList{nilIdx, nilIdx}
	}
	t.frags = newFragCache(t.cfg.FragmentSlots)
	if t.insp != nil {
		st := t.insp.Stats
		t.insp = newInspector(t.cfg.Inspect)
		t.insp.Stats = st
		clear(t.inspSlot)
	}
	t.Stats.Discarded += uint64(lost)
	return lost
}

// recordHash is the hash the table filed record idx under.
func recordHash(t *Table, idx uint32) uint64 {
	r := &t.recs[idx]
	var p Packet
	p.Src, p.Dst, p.V6, p.Proto = r.OrigH, r.RespH, r.V6, r.Proto
	return t.hashKey(&p, r.OrigP, r.RespP)
}
