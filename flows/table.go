package flows

import (
	"hash/maphash"
	"time"
)

// Config sizes the table and sets its timeouts. Timeouts follow Zeek's
// defaults so that records line up with conn.log.
type Config struct {
	Capacity int // hard cap on concurrent flows; the oldest idle flow is evicted past it
	// AttemptTimeout ends a TCP attempt (a SYN and no answer) this long after
	// its first SYN (Zeek tcp_attempt_delay); a later SYN starts a new flow.
	AttemptTimeout time.Duration
	// HandshakeTimeout is the idle timeout while both sides are still in the
	// handshake (Zeek starts every TCP connection at 60 s).
	HandshakeTimeout time.Duration
	TCPTimeout       time.Duration // idle TCP flows (Zeek tcp_inactivity_timeout)
	// InteractiveTimeout is the idle timeout of established FTP, SSH, Telnet
	// and rlogin sessions (Zeek: 1 h for ports 21, 22, 23, 513).
	InteractiveTimeout time.Duration
	ClosedTimeout      time.Duration // after a complete close (Zeek tcp_close_delay)
	UDPTimeout         time.Duration
	ICMPTimeout        time.Duration
	OtherTimeout       time.Duration
	ActiveTimeout      time.Duration // long flows emit interim records this often; 0 disables
	FragmentSlots      int           // fragmented datagrams tracked for their later fragments
	ExpireInterval     time.Duration // how often, in packet time, idle flows are swept
	Inspect            InspectConfig // payload inspection; off unless Inspect.Enable
}

// DefaultConfig returns Zeek's timeouts and room for a million flows.
func DefaultConfig() Config {
	return Config{
		Capacity:           1 << 20,
		AttemptTimeout:     5 * time.Second,
		HandshakeTimeout:   time.Minute,
		TCPTimeout:         5 * time.Minute,
		InteractiveTimeout: time.Hour,
		ClosedTimeout:      5 * time.Second,
		UDPTimeout:         time.Minute,
		ICMPTimeout:        time.Minute,
		OtherTimeout:       time.Minute,
		ActiveTimeout:      30 * time.Minute,
		FragmentSlots:      4096,
		ExpireInterval:     time.Second,
	}
}

// TableStats counts what the table did; sensor turns it into metrics.
type TableStats struct {
	Packets        uint64
	Created        uint64
	Expired        uint64
	Evicted        uint64 // ended early because the table was full
	Interim        uint64 // interim records from the active timeout
	Reused         uint64 // a SYN on an existing 5-tuple started a new flow
	Fragments      uint64
	FragOrphans    uint64 // fragments whose first fragment never came
	FragUnresolved uint64 // fragments counted before their first fragment arrived
	// BeyondWindow counts the TCP directions of ended flows whose stream
	// reached further past the peer's acknowledgment than any window the
	// peer could offer (Record.BeyondWindow): anomalies, counted in place
	// of the bytes Zeek would count.
	BeyondWindow uint64
	// Discarded counts flows dropped without a record by Reset, after a
	// bug broke the table's bookkeeping.
	Discarded uint64
}

const nilIdx = ^uint32(0)

// Table tracks flows in a preallocated []Record. Lookups use open addressing
// with linear probing over slots holding a hash tag and the record index, so a
// packet costs one hash and usually one cache line of probing, and nothing is
// allocated after NewTable. Not safe for concurrent use: each worker owns one.
type Table struct {
	cfg      Config
	timeouts [numClasses]int64
	recs     []Record
	slots    []uint64 // hash low 32 bits << 32 | record index+1; 0 is empty
	mask     uint32
	free     uint32 // head of the freed records, chained through lruNext
	fresh    uint32 // records from here on were never used
	used     int
	lists    [numClasses]lruList
	seed     maphash.Seed
	keyBuf   [40]byte
	frags    fragCache
	now      int64
	nextTick int64
	emit     func(*Record)
	out      Record // the copy handed to emit
	// Inspection, when on: the slot of each record (by record index, plus
	// one, 0 for none) and the slot of the record being emitted. Kept out of
	// Record so that a table without inspection pays nothing for it.
	insp     *inspector
	inspSlot []uint32
	outSlot  uint32
	blank    Inspection // handed out for flows without a slot
	Stats    TableStats
}

// NewTable allocates a table for cfg.Capacity flows. emit receives every
// record that ends (final) and every interim record; the *Record is valid only
// during the call.
func NewTable(cfg Config, emit func(*Record)) *Table {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultConfig().Capacity
	}
	n := uint32(1)
	for n < uint32(cfg.Capacity)*2 {
		n <<= 1
	}
	t := &Table{
		cfg:   cfg,
		recs:  make([]Record, cfg.Capacity),
		slots: make([]uint64, n),
		mask:  n - 1,
		seed:  maphash.MakeSeed(),
		frags: newFragCache(cfg.FragmentSlots),
		emit:  emit,
		free:  nilIdx,
	}
	if cfg.Inspect.Enable {
		t.insp = newInspector(cfg.Inspect)
		t.inspSlot = make([]uint32, cfg.Capacity)
	}
	t.timeouts = [numClasses]int64{
		classAttempt: int64(cfg.AttemptTimeout), classHandshake: int64(cfg.HandshakeTimeout),
		classTCP: int64(cfg.TCPTimeout), classInteractive: int64(cfg.InteractiveTimeout),
		classClosed: int64(cfg.ClosedTimeout), classUDP: int64(cfg.UDPTimeout),
		classICMP: int64(cfg.ICMPTimeout), classOther: int64(cfg.OtherTimeout),
	}
	// Records are handed out from the fresh end before any freed one is
	// reused, so the pages of a large table are touched only as flows come.
	for i := range t.lists {
		t.lists[i] = lruList{nilIdx, nilIdx}
	}
	return t
}

// Inspection returns what payload inspection learned of the flow of a record
// handed to emit, valid during that call: an empty one (app_proto unknown)
// for a flow that carried no payload or found the pool full; nil when
// inspection is off or r is not the record being emitted.
func (t *Table) Inspection(r *Record) *Inspection {
	if t.insp == nil || r != &t.out {
		return nil
	}
	if s := t.insp.state(t.outSlot); s != nil {
		return s
	}
	t.blank = Inspection{}
	return &t.blank
}

// InspectStats returns the inspection counters (zero when inspection is off).
func (t *Table) InspectStats() InspectStats {
	if t.insp == nil {
		return InspectStats{}
	}
	return t.insp.Stats
}

// Len returns the number of flows in the table.
func (t *Table) Len() int { return t.used }

// Now returns the latest packet time seen, in Unix nanoseconds.
func (t *Table) Now() int64 { return t.now }

// Update accounts one packet to its flow, creating the flow if needed.
func (t *Table) Update(p *Packet) {
	t.Stats.Packets++
	if p.TS > t.now {
		t.now = p.TS
	}
	if t.now >= t.nextTick {
		t.Expire(t.now)
		t.nextTick = t.now + int64(t.cfg.ExpireInterval)
	}
	sport, dport := p.SrcPort, p.DstPort
	if p.Fragment {
		t.Stats.Fragments++
		var ok bool
		if sport, dport, ok = t.frags.resolve(p, t.now, &t.Stats); !ok {
			t.Stats.FragUnresolved++
			return
		}
	}
	oneWay := false
	if p.Proto == 1 || p.Proto == 58 {
		sport, dport, oneWay = ICMPPorts(p.Proto, uint8(sport), uint8(dport))
	} else if portless(p.Proto) {
		sport, dport = 0, 0
	}
	h, slot, idx, isOrig := t.lookup(p, sport, dport, oneWay)
	if idx == nilIdx {
		idx, isOrig = t.insert(p, sport, dport, h, slot)
	} else if p.Proto == 6 && (!p.Fragment || p.FragFirst) && isReuse(&t.recs[idx], p) {
		t.Stats.Reused++
		t.end(idx, false)
		idx, isOrig = t.insert(p, sport, dport, h, t.emptySlot(h))
	}
	r := &t.recs[idx]
	prevLast, oldClass := r.Last, classOf(r)
	if p.Fragment && p.FragFirst {
		t.frags.learn(p, sport, dport, t.now, &t.Stats)
	}
	isOrig = t.account(r, isOrig, p)
	// Inspection looks at payload and at the ends of a TCP stream; the
	// handshake and bare ACKs leave it alone. A flow gets its inspection
	// slot with its first payload, so scans and empty flows take none.
	if t.insp != nil && !p.Fragment && (len(p.Payload) > 0 || p.Flags&(FlagFIN|FlagRST) != 0) {
		slot := t.inspSlot[idx]
		if slot == 0 && len(p.Payload) > 0 && (r.Proto == 6 || r.Proto == 17) {
			slot = t.insp.alloc()
			if slot == 0 {
				slot = noSlot
			}
			t.inspSlot[idx] = slot
		}
		if slot != 0 && slot != noSlot {
			t.insp.packet(slot, r, p, isOrig)
		}
	}
	if frags, ip, l4 := t.frags.takePending(p); frags > 0 {
		e, _ := r.ends(isOrig)
		e.IPBytes += ip
		if r.Proto != 6 {
			e.bytes += l4
		}
	}
	if c := classOf(r); c != oldClass || (r.Last != prevLast && c != classAttempt) {
		t.unlink(idx, oldClass)
		t.pushTail(idx, c)
	}
	if a := int64(t.cfg.ActiveTimeout); a > 0 && (r.Last-r.First)/a > (prevLast-r.First)/a {
		// The flow crossed another multiple of the active timeout.
		t.Stats.Interim++
		t.outSlot = 0
		if t.insp != nil {
			t.outSlot = t.inspSlot[idx]
			if s := t.insp.state(t.outSlot); s != nil {
				t.insp.snapshot(s)
			}
		}
		t.out = *r
		t.emit(&t.out)
	}
}

// Expire ends every flow idle past its timeout at now (Unix nanoseconds).
func (t *Table) Expire(now int64) {
	for c := range t.lists {
		to := t.timeouts[c]
		for l := &t.lists[c]; l.head != nilIdx; {
			r := &t.recs[l.head]
			since := r.Last
			if c == classAttempt {
				since = r.First
			}
			if now-since < to {
				break
			}
			t.Stats.Expired++
			t.end(l.head, false)
		}
	}
	t.frags.expire(now, &t.Stats)
}

// Flush ends every flow, as at the end of a capture or at shutdown.
func (t *Table) Flush() {
	for c := range t.lists {
		for l := &t.lists[c]; l.head != nilIdx; {
			t.end(l.head, false)
		}
	}
	t.frags.expire(1<<63-1, &t.Stats)
}

func (t *Table) hashKey(p *Packet, sport, dport uint16) uint64 {
	a, b := p.srcAddr(), p.dstAddr()
	pa, pb := sport, dport
	if lessEndpoint(b, pb, a, pa) {
		a, b, pa, pb = b, a, pb, pa
	}
	k := t.keyBuf[:0]
	k = append(k, a...)
	k = append(k, b...)
	k = append(k, byte(pa>>8), byte(pa), byte(pb>>8), byte(pb), p.Proto)
	return maphash.Bytes(t.seed, k)
}

func lessEndpoint(a []byte, pa uint16, b []byte, pb uint16) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return pa < pb
}

// lookup finds the flow of p. It returns the hash, the slot where a new flow
// would go, the record index (nilIdx when absent) and whether p's sender is
// the originator. oneWay keys (ICMP messages without a reply type) match in
// their own direction only, as in Zeek.
func (t *Table) lookup(p *Packet, sport, dport uint16, oneWay bool) (uint64, uint32, uint32, bool) {
	h := t.hashKey(p, sport, dport)
	tag := uint32(h)
	for i := tag & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return h, i, nilIdx, false
		}
		if uint32(s>>32) != tag {
			continue
		}
		idx := uint32(s) - 1
		r := &t.recs[idx]
		if r.Proto != p.Proto || r.V6 != p.V6 {
			continue
		}
		if r.OrigP == sport && r.RespP == dport && r.OrigH == p.Src && r.RespH == p.Dst {
			return h, i, idx, true
		}
		if !oneWay && r.OrigP == dport && r.RespP == sport && r.OrigH == p.Dst && r.RespH == p.Src {
			return h, i, idx, false
		}
	}
}

// emptySlot returns the first empty slot of hash h's probe chain, where a
// flow known to be absent goes. It does not match keys: a lookup would, and
// for a one-way ICMP key it would take the slot of the flow of the reverse
// message, which shares the hash, if asked to match both ways.
func (t *Table) emptySlot(h uint64) uint32 {
	i := uint32(h) & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	return i
}

// insert files a new flow for p at slot, the first empty slot of hash h's
// probe chain, evicting the idlest flow first when the table is full.
func (t *Table) insert(p *Packet, sport, dport uint16, h uint64, slot uint32) (uint32, bool) {
	if t.free == nilIdx && int(t.fresh) == len(t.recs) {
		t.evictOne()
		// Eviction may have shifted slots: find the insertion point again.
		slot = t.emptySlot(h)
	}
	var idx uint32
	if t.free != nilIdx {
		idx = t.free
		t.free = t.recs[idx].lruNext
	} else {
		idx = t.fresh
		t.fresh++
	}
	t.used++
	t.slots[slot] = uint64(uint32(h))<<32 | uint64(idx+1)
	r := &t.recs[idx]
	*r = Record{
		OrigH: p.Src, RespH: p.Dst, OrigP: sport, RespP: dport,
		Proto: p.Proto, V6: p.V6, Tunnel: p.Tunnel, VLAN: p.VLAN, InnerVLAN: p.InnerVLAN,
		First: p.TS, Last: p.TS,
		lruPrev: nilIdx, lruNext: nilIdx,
	}
	r.Orig.delivered, r.Resp.delivered = 1, 1
	isOrig := true
	if shouldFlip(p, sport, dport) {
		r.flip()
		isOrig = false
	}
	t.Stats.Created++
	if t.insp != nil {
		t.inspSlot[idx] = 0
	}
	t.pushTail(idx, classOf(r))
	return idx, isOrig
}

// end emits a flow's final record and frees its slot and index.
func (t *Table) end(idx uint32, evicted bool) {
	r := &t.recs[idx]
	t.unlink(idx, classOf(r))
	t.out = *r
	t.out.flags |= recFinal
	if o, s := r.BeyondWindow(); o || s {
		t.Stats.BeyondWindow += b2u(o) + b2u(s)
	}
	if evicted {
		t.out.flags |= recEvicted
	}
	t.removeSlot(idx, r)
	r.lruNext = t.free
	t.free = idx
	t.used--
	t.outSlot = 0
	if t.insp != nil {
		t.outSlot = t.inspSlot[idx]
		if s := t.insp.state(t.outSlot); s != nil {
			t.insp.finish(s)
		}
	}
	t.emit(&t.out)
	if t.outSlot != 0 {
		t.insp.release(t.outSlot)
		t.inspSlot[idx], t.outSlot = 0, 0
	}
}

// noSlot marks a flow the inspection pool had no room for when its payload
// began; it is not asked again.
const noSlot = ^uint32(0)

func (t *Table) removeSlot(idx uint32, r *Record) {
	var p Packet
	p.Src, p.Dst, p.V6, p.Proto = r.OrigH, r.RespH, r.V6, r.Proto
	h := t.hashKey(&p, r.OrigP, r.RespP)
	i := uint32(h) & t.mask
	for uint32(t.slots[i]) != idx+1 {
		i = (i + 1) & t.mask
	}
	// Backward-shift deletion keeps probe chains unbroken without tombstones.
	for {
		t.slots[i] = 0
		j := i
		for {
			j = (j + 1) & t.mask
			s := t.slots[j]
			if s == 0 {
				return
			}
			home := uint32(s>>32) & t.mask
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				t.slots[i] = s
				i = j
				break
			}
		}
	}
}

// account applies p to r and returns whether the sender is the originator
// after the packet (TCP roles can flip mid-flow).
func (t *Table) account(r *Record, isOrig bool, p *Packet) bool {
	touch := true
	switch r.Proto {
	case 6:
		if !p.Fragment || p.FragFirst {
			isOrig, touch = tcpUpdate(r, isOrig, p)
		}
	case 17:
		e, _ := r.ends(isOrig)
		e.bytes += uint64(p.L4Len)
		e.state = active
		r.letter(e, isOrig, 'D')
	default:
		e, _ := r.ends(isOrig)
		e.bytes += uint64(p.L4Len)
		e.state = active
	}
	if p.Depth > 0 {
		switch {
		case r.outer == 0:
			r.outer = p.Outer
		case r.outer != p.Outer:
			r.outer = p.Outer
			if r.tunnelChanges++; r.tunnelChanges == maxTunnelChanges+1 {
				r.addHistory('X')
			}
		}
	}
	e, _ := r.ends(isOrig)
	side := 0
	if !isOrig {
		side = 1
	}
	if p.Fragment && !p.FragFirst {
		// A datagram counts once, at its first fragment, with the length it
		// has once reassembled, as Zeek and Arkime count it: later fragments
		// add their payload only.
		e.IPBytes += uint64(p.L4Len)
	} else {
		e.Pkts++
		e.IPBytes += uint64(p.IPLen)
		r.frameDelta[side] += int64(p.FrameLen) - int64(p.IPLen)
	}
	if touch && p.TS > r.Last {
		r.Last = p.TS
	}
	return isOrig
}

// maxTunnelChanges is Zeek's Tunnel::max_changes_per_connection.
const maxTunnelChanges = 5

// active marks a UDP, ICMP or other endpoint that sent something.
const active = 1
