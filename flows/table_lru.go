package flows

// Timeout classes. Each has one LRU list ordered by last packet (the attempt
// class by first packet), so the head of a list is always the next flow of
// that class to expire.
const (
	classAttempt = iota
	classHandshake
	classTCP
	classInteractive
	classClosed
	classUDP
	classICMP
	classOther
	numClasses
)

type lruList struct{ head, tail uint32 }

// evictOne ends the flow that has been idle longest, preferring flows that
// are already closing.
func (t *Table) evictOne() {
	victim := t.lists[classClosed].head
	if victim == nilIdx {
		oldest := int64(1<<63 - 1)
		for c := range t.lists {
			if h := t.lists[c].head; h != nilIdx && t.recs[h].Last < oldest {
				victim, oldest = h, t.recs[h].Last
			}
		}
	}
	t.Stats.Evicted++
	t.end(victim, true)
}

func (t *Table) pushTail(idx uint32, class uint8) {
	l := &t.lists[class]
	r := &t.recs[idx]
	r.lruPrev, r.lruNext = l.tail, nilIdx
	if l.tail != nilIdx {
		t.recs[l.tail].lruNext = idx
	} else {
		l.head = idx
	}
	l.tail = idx
}

func (t *Table) unlink(idx uint32, class uint8) {
	l := &t.lists[class]
	r := &t.recs[idx]
	if r.lruPrev != nilIdx {
		t.recs[r.lruPrev].lruNext = r.lruNext
	} else {
		l.head = r.lruNext
	}
	if r.lruNext != nilIdx {
		t.recs[r.lruNext].lruPrev = r.lruPrev
	} else {
		l.tail = r.lruPrev
	}
	r.lruPrev, r.lruNext = nilIdx, nilIdx
}

// classOf derives a flow's timeout class from its state, so the record need
// not store it.
func classOf(r *Record) uint8 {
	switch r.Proto {
	case 6:
	case 17:
		return classUDP
	case 1, 58:
		return classICMP
	default:
		return classOther
	}
	o, s := &r.Orig, &r.Resp
	if closeDone(o, s) || closeDone(s, o) {
		return classClosed
	}
	if o.state <= tcpSynAckSent && s.state <= tcpSynAckSent {
		if o.state != tcpInactive && s.state == tcpInactive {
			return classAttempt
		}
		return classHandshake
	}
	if o.state == tcpEstablished || s.state == tcpEstablished {
		switch r.RespP {
		case 21, 22, 23, 513:
			return classInteractive
		}
	}
	return classTCP
}

// closeDone: e's close was processed and nothing more is expected (Zeek
// removes such connections tcp_close_delay after their last packet).
func closeDone(e, peer *Endpoint) bool {
	return e.flags&epDidClose != 0 && (e.state == tcpReset || peer.flags&epDidClose != 0 || peer.state == tcpInactive)
}
