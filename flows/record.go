package flows

// Endpoint holds one direction's counters and TCP sequence state. For TCP,
// payload bytes are derived from sequence numbers at export, as Zeek does, so
// retransmissions count once and holes are visible; other protocols sum the
// payload lengths their headers declare.
type Endpoint struct {
	Pkts    uint64
	IPBytes uint64
	// bytes is the declared payload sum for non-TCP flows and, for TCP, the
	// highest sequence offset past the start (seq+len) this side has sent.
	bytes uint64
	// ackSeq is the highest sequence offset of this side that the peer acked.
	ackSeq uint64
	// delivered is the end of the contiguous prefix of this side's stream
	// that was seen; data past it is a hole until it arrives or is acked.
	delivered uint64
	Missed    uint64
	isn       uint32
	// holeLen is the distance from delivered to the lowest sequence offset
	// seen past a hole (0: no hole).
	holeLen   uint32
	state     uint8
	prevState uint8
	flags     uint8 // epFin, epRst, epDidClose
	// Counts for Zeek's repeated letters, saturating at 255: the letter is
	// logged at the 1st, 10th and 100th occurrence.
	retrans uint8
	zeroWin uint8
	gaps    uint8
	seen    uint16 // history letters already logged, one bit each; window scaling on top
}

// Record is one flow: fixed-size and pointer-free so a table of a million
// costs no GC scanning. Orig is the originator (the SYN sender, else the first
// sender, flipped by port heuristics as Zeek marks with '^').
type Record struct {
	OrigH, RespH [16]byte
	First, Last  int64 // nanoseconds since the Unix epoch
	Orig, Resp   Endpoint
	OrigP, RespP uint16 // ICMP: type and counterpart type or code, as Zeek
	VLAN         uint16
	InnerVLAN    uint16
	Proto        uint8
	V6           bool
	Tunnel       Tunnel
	flags        uint8
	history      [16]byte // Zeek's letters, zero-padded
	// outer is the carrier flow of a tunnelled flow's latest packet and
	// tunnelChanges how often it changed; past 5 changes Zeek stops tracking
	// parents and logs 'X'.
	outer         uint16
	tunnelChanges uint8
	// frameDelta is, per direction (0 orig, 1 resp), the sum of frame
	// lengths minus the sum of IP lengths: link headers and padding, or a
	// negative amount when the snap length cut packets short. Frame bytes are
	// what Suricata and Arkime count.
	frameDelta [2]int64
	lruPrev    uint32
	lruNext    uint32
}

// Record flags.
const (
	recFlipped = 1 << iota // roles reversed from the first packet ('^')
	recFinal               // set on the copy handed to emit when the flow ends
	recEvicted             // ended early because the table was full
	recSawOrig             // TCP: a packet from the originator was seen
	recSawResp             // TCP: a packet from the responder was seen
	recPartial             // TCP: the handshake was not seen from its start
)

// Final reports whether this is the flow's last record (false for interim
// records emitted by the active timeout).
func (r *Record) Final() bool { return r.flags&recFinal != 0 }

// Evicted reports whether the flow ended because the table was full.
func (r *Record) Evicted() bool { return r.flags&recEvicted != 0 }

// Flipped reports whether the originator is not the first packet's sender.
func (r *Record) Flipped() bool { return r.flags&recFlipped != 0 }

// History returns Zeek's history string; it allocates nothing and is valid
// as long as the Record is.
func (r *Record) History() []byte { return r.history[:r.histLen()] }

func (r *Record) histLen() int {
	for i, c := range r.history {
		if c == 0 {
			return i
		}
	}
	return len(r.history)
}

// FrameBytes returns the captured frame bytes the side sent, link headers
// included: Suricata's bytes_toserver and bytes_toclient, Arkime's
// source.bytes and destination.bytes.
func (r *Record) FrameBytes(orig bool) uint64 {
	e, i := &r.Orig, 0
	if !orig {
		e, i = &r.Resp, 1
	}
	return uint64(int64(e.IPBytes) + r.frameDelta[i])
}

// OrigAddr and RespAddr return the endpoints' addresses, 4 or 16 bytes.
func (r *Record) OrigAddr() []byte {
	if r.V6 {
		return r.OrigH[:]
	}
	return r.OrigH[:4]
}

// RespAddr returns the responder's address, 4 or 16 bytes.
func (r *Record) RespAddr() []byte {
	if r.V6 {
		return r.RespH[:]
	}
	return r.RespH[:4]
}

// OrigBytes returns the originator's payload bytes: for TCP the sequence
// space it covered (Zeek's orig_bytes), for others the declared payload.
func (r *Record) OrigBytes() uint64 {
	if r.Proto != 6 {
		return r.Orig.bytes
	}
	return tcpSize(&r.Orig, &r.Resp)
}

// BeyondWindow reports, per side, a TCP stream that reached further past the
// peer's acknowledgment than any window the peer could offer, which only a
// forged or corrupted segment does; that side's bytes are then what the peer
// acknowledged, not the sequence space Zeek would count.
func (r *Record) BeyondWindow() (orig, resp bool) {
	if r.Proto != 6 {
		return false, false
	}
	return r.Orig.jumped(&r.Resp), r.Resp.jumped(&r.Orig)
}

// RespBytes returns the responder's payload bytes, as OrigBytes.
func (r *Record) RespBytes() uint64 {
	if r.Proto != 6 {
		return r.Resp.bytes
	}
	return tcpSize(&r.Resp, &r.Orig)
}

func (r *Record) addHistory(c byte) {
	if n := r.histLen(); n < len(r.history) {
		r.history[n] = c
	}
}
