package flows

// TCP endpoint states, as Zeek names them; conn_state is derived from the pair.
const (
	tcpInactive = iota
	tcpSynSent
	tcpSynAckSent
	tcpPartial
	tcpEstablished
	tcpClosed
	tcpReset
)

// Endpoint flag bits.
const (
	epFin      = 1 << iota // sent a FIN
	epRst                  // sent a RST
	epDidClose             // its close (FIN or RST) was processed
	epJumped               // its stream went beyond the window before its FIN
	epData                 // it sent a segment with payload
)

// The top four bits of Endpoint.seen, above the letters, hold the side's
// window scaling: 0 when its SYN was not seen, else 1 + the shift its SYN's
// window-scale option asked for (1 also when it had none, which may
// overstate the peer's window, never understate it). They belong to
// the endpoint, the letter bits to the role (see flip).
const (
	wsShift = 12
	wsMask  = 0xf << wsShift
)

// TCP window limits (RFC 7323): a shift above 14 is taken as 14, so no
// window exceeds 65535<<14 bytes, just under 1 GiB.
const maxWScale = 14

func (e *Endpoint) set(state uint8) {
	if e.state != state {
		e.prevState, e.state = e.state, state
	}
}

// clean is Zeek's test for counting content gaps: the endpoint is
// established, or closed straight from established.
func (e *Endpoint) clean() bool {
	return e.state == tcpEstablished || (e.state == tcpClosed && e.prevState == tcpEstablished)
}

// relSeq maps a sequence number to its offset from the endpoint's initial
// sequence number in 64 bits, unwrapping around ref (a recent offset of the
// same stream). underflow reports a number from before the start.
func (e *Endpoint) relSeq(seq uint32, ref uint64) (rel uint64, underflow bool) {
	off := uint64(seq - e.isn)
	v := ref&^0xffffffff | off
	switch {
	case v > ref+1<<31:
		if v < 1<<32 {
			return 0, true
		}
		v -= 1 << 32
	case v+1<<31 < ref:
		v += 1 << 32
	}
	return v, false
}

func (e *Endpoint) initStream(seq uint32, syn bool, segLen uint64) {
	if syn {
		e.isn, e.bytes = seq, segLen
	} else {
		// Without a SYN, number the stream as though one had been seen,
		// so sizes stay payload-only (Zeek does the same).
		e.isn, e.bytes = seq-1, 1
	}
	e.ackSeq, e.delivered, e.holeLen = 0, 1, 0
}

// flip swaps the roles of originator and responder. Zeek keeps its
// history-seen bits per role, not per endpoint, so those stay in place.
func (r *Record) flip() {
	r.OrigH, r.RespH = r.RespH, r.OrigH
	r.OrigP, r.RespP = r.RespP, r.OrigP
	os, rs := r.Orig.seen, r.Resp.seen
	r.Orig, r.Resp = r.Resp, r.Orig
	r.Orig.seen = os&^wsMask | r.Orig.seen&wsMask
	r.Resp.seen = rs&^wsMask | r.Resp.seen&wsMask
	r.frameDelta[0], r.frameDelta[1] = r.frameDelta[1], r.frameDelta[0]
	r.flags ^= recFlipped
	r.addHistory('^')
}

// ends returns the sender's and the peer's endpoints.
func (r *Record) ends(isOrig bool) (*Endpoint, *Endpoint) {
	if isOrig {
		return &r.Orig, &r.Resp
	}
	return &r.Resp, &r.Orig
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// tcpUpdate applies one segment as Zeek's TCP analyzer does and returns
// whether the sender is the originator afterwards (roles can flip mid-flow)
// and whether the flow's last-activity time moves.
func tcpUpdate(r *Record, isOrig bool, p *Packet) (senderIsOrig, touch bool) {
	f := p.Flags
	syn, fin, rst, ack := f&FlagSYN != 0, f&FlagFIN != 0, f&FlagRST != 0, f&FlagACK != 0
	length := uint64(p.L4Len)
	e, peer := r.ends(isOrig)
	stateIsOrig := isOrig // the state machine sees the direction before any flip in this packet

	if isOrig && r.flags&recSawOrig == 0 {
		r.flags |= recSawOrig
		if !syn || ack {
			r.flags |= recPartial
		}
	} else if !isOrig && r.flags&recSawResp == 0 {
		r.flags |= recSawResp
		if r.flags&recPartial == 0 && !syn {
			r.flags |= recPartial
		}
	}

	segLen := length + b2u(syn) + b2u(fin)
	if rst {
		segLen -= length // a RST's payload is not sequence space
	}
	switch e.state {
	case tcpInactive:
		e.initStream(p.Seq, syn, segLen)
	case tcpSynSent, tcpSynAckSent:
		if syn && p.Seq != e.isn {
			e.initStream(p.Seq, true, segLen)
		}
	case tcpEstablished, tcpPartial:
		if syn {
			e.initStream(p.Seq, true, segLen)
		}
	case tcpReset:
		if syn && e.prevState == tcpInactive {
			e.initStream(p.Seq, true, segLen)
		}
	}
	rel, underflow := e.relSeq(p.Seq, e.bytes)
	if syn {
		code := uint16(1)
		if p.HasWScale {
			code += uint16(min(p.WScale, maxWScale))
		}
		e.seen = e.seen&^wsMask | code<<wsShift
	}

	// History.
	switch {
	case b2u(syn)+b2u(fin)+b2u(rst) > 1:
		if fin && rst && !syn {
			r.letter(e, isOrig, 'I')
		} else {
			r.letter(e, isOrig, 'Q')
		}
	case syn && ack:
		r.letter(e, isOrig, 'H')
	case syn:
		r.letter(e, isOrig, 'S')
	case fin:
		r.letter(e, isOrig, 'F')
	case rst:
		r.letter(e, isOrig, 'R')
	case length > 0 || ack:
		c := byte('A')
		if length > 0 {
			c = 'D'
		}
		if h := r.History(); len(h) == 1 && h[0] == 'H' {
			// The flow began with a SYN-ACK from the side we took for the
			// originator, and now the other side talks: it is the client.
			r.flip()
			r.history = [16]byte{'^', 'h'}
			r.Resp.seen |= letterBit('H')
			isOrig = !isOrig
			e, peer = r.ends(isOrig)
		}
		r.letter(e, isOrig, c)
	}
	if p.Window == 0 && !rst && peer.state != tcpClosed && e.state != tcpReset {
		r.scaledLetter(&e.zeroWin, isOrig, 'W')
	}
	touch = r.Orig.flags&r.Resp.flags&epDidClose == 0

	if fin {
		e.flags |= epFin
	}
	if length > 0 && !rst {
		e.flags |= epData
	}
	if rst {
		e.flags |= epRst
	}
	var relAck uint64
	ackOK := false
	if ack && peer.state != tcpInactive {
		a, uf := peer.relSeq(p.Ack, peer.ackSeq)
		if !uf {
			relAck, ackOK = a, true
			if !rst && a > peer.ackSeq {
				peer.ackSeq = a
			}
		}
	}

	end := rel + segLen
	delta := int64(end - e.bytes)
	switch {
	case underflow:
	case (syn || rst) && (delta > 1<<20 || delta < -(1<<20)):
	case e.state == tcpReset:
	case delta > 0:
		e.bytes = end
	case length > 0:
		r.scaledLetter(&e.retrans, isOrig, 'T')
	}
	if fin && !rst && !underflow && end < e.bytes && e.beyondWindow(peer) {
		// Nothing follows a FIN: the stream ends here, not at a jump
		// no window allowed. Zeek keeps the FIN's place apart
		// (FIN_seq); the end of the stream stands for it here, so that
		// its ACK is not taken for a missed byte.
		e.bytes = end
		e.flags |= epJumped
	}

	if tcpStateMachine(r, e, peer, stateIsOrig, syn, fin, rst, ack, length) {
		// The reversal flip inside the state machine moved the sender.
		isOrig = !isOrig
		e, peer = r.ends(isOrig)
	}

	if ackOK {
		r.ackReceived(peer, e, relAck, !isOrig)
	}
	if length > 0 && !rst && !underflow && len(p.Payload) >= int(length) {
		s := rel
		if syn {
			s++
		}
		e.dataSent(s, length)
	}
	return isOrig, touch
}

// tcpStateMachine moves the endpoint states on one segment (Zeek's
// TCPSessionAdapter transitions). It reports whether it flipped the roles.
func tcpStateMachine(r *Record, e, peer *Endpoint, isOrig, syn, fin, rst, ack bool, length uint64) (flipped bool) {
	doClose := false
	switch e.state {
	case tcpInactive:
		if syn {
			if isOrig {
				if ack {
					e.set(tcpSynAckSent)
				} else {
					e.set(tcpSynSent)
				}
			} else {
				if !ack && peer.state == tcpSynAckSent {
					// A SYN answering what we took for the originator's
					// SYN-ACK: the roles were the other way round.
					r.flags &^= recPartial
					r.flip()
					flipped = true
					peer.set(tcpEstablished)
				}
				if peer.state == tcpSynSent {
					peer.set(tcpEstablished)
				}
				e.set(tcpEstablished)
			}
		}
		if fin {
			e.set(tcpClosed)
			doClose = true
		}
		if rst {
			e.set(tcpReset)
			doClose = true
		}
		if e.state == tcpInactive {
			switch {
			case !isOrig && length == 0 && r.Orig.state == tcpSynSent:
				// an ACK for a SYN, seen before the SYN-ACK
			case ack && peer.state == tcpEstablished:
				e.set(tcpEstablished)
				r.flags &^= recPartial
			default:
				e.set(tcpPartial)
			}
		}
	case tcpSynSent, tcpSynAckSent:
		if fin {
			e.set(tcpClosed)
			doClose = true
		}
		if rst {
			e.set(tcpReset)
			doClose = true
		}
	case tcpEstablished, tcpPartial:
		if syn && !ack && e.state == tcpPartial && peer.state == tcpInactive {
			e.set(tcpSynSent)
		}
		if fin && !rst {
			e.set(tcpClosed)
			if peer.state == tcpReset && peer.prevState == tcpClosed {
				peer.set(tcpClosed)
			}
			doClose = true
		}
		if rst {
			e.set(tcpReset)
			doClose = true
		}
	case tcpClosed:
		if rst && peer.state != tcpClosed {
			e.set(tcpReset)
			doClose = e.flags&epDidClose == 0
		}
	}
	if doClose {
		e.flags |= epDidClose
	}
	return flipped
}

// isReuse reports whether a SYN on an existing TCP flow starts a new
// connection (Zeek's rules): always after a close; otherwise when its
// sequence number differs from the recorded start.
func isReuse(r *Record, p *Packet) bool {
	if p.Flags&FlagSYN == 0 {
		return false
	}
	e := &r.Orig
	if p.Flags&FlagACK != 0 {
		if r.Orig.state != tcpInactive {
			return false
		}
		e = &r.Resp
	}
	if (r.Orig.flags|r.Resp.flags)&epDidClose != 0 {
		return true
	}
	if p.Seq == e.isn {
		return false // a retransmission
	}
	if p.Flags&FlagACK == 0 && r.Orig.state == tcpSynAckSent && r.Resp.state == tcpInactive && p.Seq == r.Resp.isn {
		return false
	}
	return true
}

// shouldFlip decides, on a flow's first packet, whether its sender is the
// responder, by Zeek's port heuristic: the likely-server-port steps of
// ServerSide, never its lower-port step (Zeek keeps the first sender then). A
// pure SYN never flips; a SYN-ACK alone is not enough when both ports are
// likely server ports (stealth scans send them); UDP flips only on exactly
// one likely port, and never for a packet to the broadcast address.
func shouldFlip(p *Packet, sport, dport uint16) bool {
	switch p.Proto {
	case 6:
		if p.Flags&(FlagSYN|FlagACK) == FlagSYN {
			return false
		}
		srcIsServer, ev := ServerSide(6, sport, dport)
		switch ev {
		case ServerByLikelyPort:
			return srcIsServer
		case ServerByBothLikely:
			// Zeek: only when this is not a SYN-ACK, which a stealth
			// scan could have sent.
			return srcIsServer && p.Flags&FlagSYN == 0
		}
		return false
	case 17:
		if !p.V6 && p.Dst[0] == 255 && p.Dst[1] == 255 && p.Dst[2] == 255 && p.Dst[3] == 255 {
			return false
		}
		srcIsServer, ev := ServerSide(17, sport, dport)
		return srcIsServer && ev == ServerByLikelyPort
	}
	return false
}
