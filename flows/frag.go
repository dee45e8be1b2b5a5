package flows

// fragCache remembers, for a bounded number of fragmented datagrams, the
// ports their first fragment carried, so later fragments count to the right
// flow. Fragments that arrive before their first are held as counts only and
// added when it comes; nothing of the payload is kept.
type fragCache struct {
	slots []fragEntry
	mask  uint32
}

type fragEntry struct {
	src, dst     [16]byte
	id           uint32
	proto        uint8
	used, known  bool
	sport, dport uint16
	pendFrags    uint64
	pendIP       uint64
	pendL4       uint64
	ts           int64
}

// fragLifetime is how long a datagram's fragments are matched, in packet time
// (Linux's ipfrag_time default).
const fragLifetime = 30e9

func newFragCache(n int) fragCache {
	size := uint32(1)
	for size < uint32(max(n, 1)) {
		size <<= 1
	}
	return fragCache{slots: make([]fragEntry, size), mask: size - 1}
}

func (c *fragCache) slot(p *Packet) *fragEntry {
	h := p.FragID*2654435761 ^ be32(p.Src[:4]) ^ be32(p.Dst[12:16])*40503 ^ uint32(p.Proto)
	return &c.slots[h&c.mask]
}

func (e *fragEntry) is(p *Packet) bool {
	return e.used && e.id == p.FragID && e.proto == p.Proto && e.src == p.Src && e.dst == p.Dst
}

// resolve returns the ports for a fragment. A first fragment carries its own;
// a later one borrows them from the cache, or is held as counts when its first
// fragment has not been seen.
func (c *fragCache) resolve(p *Packet, now int64, st *TableStats) (uint16, uint16, bool) {
	if p.FragFirst {
		return p.SrcPort, p.DstPort, true
	}
	e := c.slot(p)
	if e.is(p) && e.known {
		return e.sport, e.dport, true
	}
	if !e.is(p) {
		c.reuse(e, p, st)
		e.ts = now
	}
	e.pendFrags++
	e.pendIP += uint64(p.L4Len) // payload only: the datagram counts once, at its first fragment
	e.pendL4 += uint64(p.L4Len)
	return 0, 0, false
}

// learn records the ports of a first fragment.
func (c *fragCache) learn(p *Packet, sport, dport uint16, now int64, st *TableStats) {
	e := c.slot(p)
	if !e.is(p) {
		c.reuse(e, p, st)
	}
	e.known, e.sport, e.dport, e.ts = true, sport, dport, now
}

// reuse gives a slot to p's datagram. Fragments the slot still held for
// another datagram will never meet their first fragment: they are orphans
// now, not when they would have expired (a flood of unfinished fragments
// showed as one slot's worth of orphans, however many it sent).
func (c *fragCache) reuse(e *fragEntry, p *Packet, st *TableStats) {
	st.FragOrphans += e.pendFrags
	*e = fragEntry{src: p.Src, dst: p.Dst, id: p.FragID, proto: p.Proto, used: true}
}

// takePending hands over the counts of fragments that came before the first.
func (c *fragCache) takePending(p *Packet) (frags, ip, l4 uint64) {
	if !p.Fragment || !p.FragFirst {
		return 0, 0, 0
	}
	e := c.slot(p)
	if !e.is(p) || e.pendFrags == 0 {
		return 0, 0, 0
	}
	frags, ip, l4 = e.pendFrags, e.pendIP, e.pendL4
	e.pendFrags, e.pendIP, e.pendL4 = 0, 0, 0
	return frags, ip, l4
}

func (c *fragCache) expire(now int64, st *TableStats) {
	for i := range c.slots {
		e := &c.slots[i]
		if e.used && now-e.ts >= fragLifetime {
			st.FragOrphans += e.pendFrags
			*e = fragEntry{}
		}
	}
}
