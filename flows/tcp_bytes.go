package flows

// dataSent records payload [s, s+n) of the endpoint's stream as captured.
// The stream keeps its contiguous end (delivered) and the distance to the
// lowest data seen past a hole; segments past the hole are not remembered one
// by one.
func (e *Endpoint) dataSent(s, n uint64) {
	switch {
	case s+n <= e.delivered:
	case s <= e.delivered:
		// The hole ends where it ended: measured before delivered
		// moves, or a segment that fills it would push its end along
		// and never close it (a reordered segment, all captured, would
		// then count as missed at the next ACK).
		end := e.holeEnd()
		e.delivered = s + n
		switch {
		case e.holeLen == 0:
		case e.delivered >= end:
			e.delivered = max(e.delivered, e.dataEnd())
			e.holeLen = 0
		default:
			e.holeLen = uint32(end - e.delivered) // filled from its start
		}
	case e.holeLen == 0 || s < e.holeEnd():
		e.holeLen = uint32(min(s-e.delivered, 1<<31))
	}
}

func (e *Endpoint) holeEnd() uint64 { return e.delivered + uint64(e.holeLen) }

// dataEnd is the end of the data the endpoint sent, its FIN octet excluded.
func (e *Endpoint) dataEnd() uint64 {
	if e.flags&epFin != 0 && e.bytes > 0 {
		return e.bytes - 1
	}
	return e.bytes
}

// ackReceived applies the peer's acknowledgment x to endpoint e's stream:
// acked bytes that were never captured are a content gap, counted in
// missed_bytes when both sides are cleanly established, as Zeek counts them.
func (r *Record) ackReceived(e, sender *Endpoint, x uint64, eIsOrig bool) {
	if e.flags&epFin != 0 && x >= e.bytes {
		x = e.bytes - 1 // the FIN octet is not data
	}
	if x <= e.delivered {
		return
	}
	if x <= 2 && r.flags&recPartial != 0 {
		return
	}
	gap := x - e.delivered
	if e.holeLen != 0 {
		gap = min(x, e.holeEnd()) - e.delivered
		if end := e.dataEnd(); x > end {
			gap += x - end
		}
	}
	if gap > 0 && e.clean() && sender.clean() {
		e.Missed += gap
		r.scaledLetter(&e.gaps, eIsOrig, 'G')
	}
	if e.holeLen != 0 && x >= e.holeEnd() {
		x = max(x, e.dataEnd())
		e.holeLen = 0
	}
	e.delivered = x
}

// maxWindow is the largest receive window e could advertise: 65535 scaled
// by its SYN's shift, by the largest shift when its SYN was not seen.
func (e *Endpoint) maxWindow() uint64 {
	shift := uint8(maxWScale)
	if c := e.seen >> wsShift; c != 0 {
		shift = uint8(c - 1)
	}
	return 0xffff << shift
}

// beyondWindow reports whether e's stream reaches further past what the
// peer acknowledged than any window the peer could offer (+1: a FIN
// octet): no TCP sender can have sent that, and Zeek counts it all the same
// ("### check for large jumps here" in its TCP analyzer), so one forged
// segment far ahead in sequence would make the byte count any size. Taken as
// they are: a side the peer never acknowledged (a capture of one direction
// only), and one that sent no payload (SYN to FIN, as a capture filtered on
// TCP flags keeps them, which Zeek's FIN rule is there for).
func (e *Endpoint) beyondWindow(peer *Endpoint) bool {
	return e.ackSeq > 0 && e.flags&epData != 0 && e.bytes > e.ackSeq+peer.maxWindow()+1
}

// jumped reports a stream that went beyond the window: still, or before a
// FIN that ended it.
func (e *Endpoint) jumped(peer *Endpoint) bool {
	return e.flags&epJumped != 0 || e.beyondWindow(peer)
}

// tcpSize is Zeek's TCP_Endpoint::Size: the sequence space the side covered,
// or what the peer acked if that is further, less the SYN and FIN octets.
// A stream beyond any window (beyondWindow) counts only what the peer
// acknowledged.
func tcpSize(e, peer *Endpoint) uint64 {
	if e.prevState == tcpSynSent && e.state == tcpReset && peer.state == tcpInactive && e.ackSeq > 1 {
		return 0 // a half-open connection torn down
	}
	size := max(e.bytes, e.ackSeq)
	if e.beyondWindow(peer) {
		size = e.ackSeq
	}
	if size != 0 {
		size--
	}
	if e.flags&epFin != 0 && size != 0 {
		size--
	}
	return size
}
