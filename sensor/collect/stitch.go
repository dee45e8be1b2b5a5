package collect

import (
	"net/netip"
	"time"

	"github.com/outflow-sensor/outflow/flows"
)

// How a Flow's two directions were joined.
const (
	StitchBiflow = "biflow" // one RFC 5103 or NSEL record carried both
	StitchPaired = "paired" // two one-way records matched within the window
	StitchSingle = "single" // no reverse record came within the window
)

// Flow is one session as the exports describe it, both directions joined.
type Flow struct {
	Exporter             netip.Addr
	Orig, Resp           netip.Addr
	OrigP, RespP         uint16
	Proto                uint8
	OrigPkts, OrigBytes  uint64 // layer-3 bytes, as exporters count them
	RespPkts, RespBytes  uint64
	OrigFlags, RespFlags uint8
	Start, End           time.Time
	SamplingRate         uint32
	Stitch               string
	Version              uint16
	ObsDomain            uint32
	InIf, OutIf          uint32
}

type stitchKey struct {
	exporter netip.Addr
	obs      uint32
	proto    uint8
	a, b     netip.Addr
	ap, bp   uint16
}

// key orders the two endpoints so that both directions share it.
func keyOf(r *Record) (stitchKey, bool) {
	sp, dp := r.SrcPort, r.DstPort
	if r.Proto == 1 || r.Proto == 58 {
		// A request and its reply (echo, router solicitation, ...) are
		// one session, as in Zeek: key them by type and counterpart.
		sp, dp, _ = flows.ICMPPorts(r.Proto, uint8(r.DstPort>>8), uint8(r.DstPort))
	}
	k := stitchKey{exporter: r.Exporter, obs: r.ObsDomain, proto: r.Proto, a: r.Src, b: r.Dst, ap: sp, bp: dp}
	forward := true
	if c := r.Src.Compare(r.Dst); c > 0 || (c == 0 && sp > dp) {
		k.a, k.b, k.ap, k.bp = r.Dst, r.Src, dp, sp
		forward = false
	}
	return k, forward
}

type pending struct {
	rec     Record
	forward bool
	arrived time.Time
	next    *pending // arrival order, for expiry
	gone    bool
}

// Stitcher joins the two directions of sessions that exporters report as
// two one-way records, and passes biflow records through. Records without
// a partner within Window are emitted alone. Not safe for concurrent use.
type Stitcher struct {
	Window  time.Duration
	emit    func(*Flow)
	waiting map[stitchKey]*pending
	head    *pending
	tail    *pending
	// MaxPending bounds the one-way records waiting for a partner; past it
	// the oldest is emitted alone.
	MaxPending int
	Stats      StitchStats
}

// StitchStats counts how flows were joined.
type StitchStats struct {
	Biflow, Paired, Single, Forced uint64
}

// NewStitcher returns a Stitcher calling emit for every joined flow; the
// *Flow is valid during the call.
func NewStitcher(window time.Duration, emit func(*Flow)) *Stitcher {
	return &Stitcher{Window: window, emit: emit, waiting: map[stitchKey]*pending{}, MaxPending: 1 << 20}
}

// Add takes one exported record, received at now.
func (s *Stitcher) Add(r *Record, now time.Time) {
	if r.Biflow {
		f := flowFrom(r)
		if biflowReversed(r) {
			swapDirections(&f)
		}
		f.Stitch = StitchBiflow
		s.Stats.Biflow++
		s.emit(&f)
		return
	}
	k, fwd := keyOf(r)
	if p := s.waiting[k]; p != nil && p.forward != fwd && overlaps(&p.rec, r, s.Window) {
		delete(s.waiting, k)
		p.gone = true
		f := join(&p.rec, r)
		f.Stitch = StitchPaired
		s.Stats.Paired++
		s.emit(&f)
		return
	} else if p != nil {
		// A second record of the same direction (an active-timeout
		// export): the first goes out alone.
		delete(s.waiting, k)
		p.gone = true
		s.single(&p.rec)
	}
	p := &pending{rec: *r, forward: fwd, arrived: now}
	s.waiting[k] = p
	if s.tail == nil {
		s.head = p
	} else {
		s.tail.next = p
	}
	s.tail = p
	for len(s.waiting) > s.MaxPending {
		s.Stats.Forced++
		s.expireOne()
	}
}

func overlaps(a, b *Record, window time.Duration) bool {
	d := a.Start.Sub(b.Start)
	return d <= window && d >= -window
}

// Expire emits alone every record that waited longer than Window.
func (s *Stitcher) Expire(now time.Time) {
	for s.head != nil && (s.head.gone || now.Sub(s.head.arrived) >= s.Window) {
		s.expireOne()
	}
}

func (s *Stitcher) expireOne() {
	p := s.head
	s.head = p.next
	if s.head == nil {
		s.tail = nil
	}
	if p.gone {
		return
	}
	k, _ := keyOf(&p.rec)
	delete(s.waiting, k)
	s.single(&p.rec)
}

// Flush emits every waiting record.
func (s *Stitcher) Flush() {
	for s.head != nil {
		s.expireOne()
	}
}

func (s *Stitcher) single(r *Record) {
	f := flowFrom(r)
	if client, ok := srcIsClient(r); ok && !client {
		// A lone record from the server's side: the client is its
		// destination.
		swapDirections(&f)
	}
	f.Stitch = StitchSingle
	s.Stats.Single++
	s.emit(&f)
}

func flowFrom(r *Record) Flow {
	return Flow{
		Exporter: r.Exporter, Orig: r.Src, Resp: r.Dst, OrigP: r.SrcPort, RespP: r.DstPort, Proto: r.Proto,
		OrigPkts: r.Packets, OrigBytes: r.Bytes, RespPkts: r.RevPackets, RespBytes: r.RevBytes,
		OrigFlags: r.TCPFlags, Start: r.Start, End: r.End, SamplingRate: r.SamplingRate,
		Version: r.Version, ObsDomain: r.ObsDomain, InIf: r.InIf, OutIf: r.OutIf,
	}
}

func swapDirections(f *Flow) {
	f.Orig, f.Resp = f.Resp, f.Orig
	f.OrigP, f.RespP = f.RespP, f.OrigP
	f.OrigPkts, f.RespPkts = f.RespPkts, f.OrigPkts
	f.OrigBytes, f.RespBytes = f.RespBytes, f.OrigBytes
	f.OrigFlags, f.RespFlags = f.RespFlags, f.OrigFlags
	f.InIf, f.OutIf = f.OutIf, f.InIf
}

// The originator of an exported session. Exports carry no handshake in
// order and no first packet, so one rule names the client wherever the
// exporter does not (RFC 5103 biflowDirection, NSEL's initiator):
//
//  1. TCP: a direction whose flags hold SYN but never ACK only ever asked
//     for a connection; its source called. (Once the handshake completes
//     both directions carry SYN and ACK, so flags tell no more.) A record
//     to a multicast or broadcast address is its sender's: a group never
//     calls.
//  2. The ports, by flows.ServerSide: Zeek's likely server ports, then the
//     lower port. A client bound to 15006 sending to a raw channel on 9001
//     is the client; so is an ephemeral port talking to 4433.
//  3. Start times, only when neither tells (equal ports, a protocol without
//     ports, ICMP, whose request and reply types key the session): the
//     earlier start. Exporters stamp milliseconds or seconds, and some stamp
//     a packet when a queue drains, so a reply can start before its request.
//
// A capture decides otherwise: there the SYN sender originates, else Zeek's
// flip of the first packet (flows.shouldFlip), as conn.log does.

// srcIsClient applies steps 1 and 2 to one direction's record: whether its
// source is the client, and whether the rule could tell. (A DHCP offer from
// 67 to 255.255.255.255:68 stays the server's, as in a capture.)
func srcIsClient(r *Record) (client, ok bool) {
	if onlyAsked(r) || r.Dst.IsMulticast() || r.Dst == broadcast4 {
		return true, true
	}
	srcServer, ev := flows.ServerSide(r.Proto, r.SrcPort, r.DstPort)
	if ev == flows.NoServerEvidence {
		return false, false
	}
	return !srcServer, true
}

var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// onlyAsked reports a TCP record whose flags hold SYN but no ACK.
func onlyAsked(r *Record) bool { return r.Proto == 6 && r.TCPFlags&(flagSYN|flagACK) == flagSYN }

// TCP flag bits as exporters carry them.
const (
	flagSYN = 0x02
	flagACK = 0x10
)

// biflowReversed reports whether a biflow record's destination is the
// originator. RFC 5103's biflowDirection says so when exported (1: the
// source initiated, 2: the destination did). A NetFlow v9 biflow is Cisco
// NSEL's (or Huawei's) initiator and responder counters: the source is the
// initiator. An IPFIX biflow without a direction is in the exporter's order
// (softflowd -b puts the lower address first; RFC 5103 calls the order
// arbitrary then), so the rule decides, from the source's side: its flags
// are those of the forward direction alone. When the rule cannot tell, the
// record's order stands, unless only the destination sent anything: then
// the record is a lone one from the destination, and its sender stands, as
// a lone record's does.
func biflowReversed(r *Record) bool {
	switch {
	case r.BiflowDirection == 1:
		return false
	case r.BiflowDirection == 2:
		return true
	case r.Version == 9:
		return false
	}
	if r.Packets == 0 && r.RevPackets != 0 {
		rev := Record{Proto: r.Proto, Src: r.Dst, Dst: r.Src, SrcPort: r.DstPort, DstPort: r.SrcPort}
		client, ok := srcIsClient(&rev)
		return !ok || client
	}
	client, ok := srcIsClient(r)
	return ok && !client
}

// join makes one flow of two one-way records of the same session, the
// originator's first. Both directions' flags count in step 1: when one
// direction only asked (SYN without ACK) and the other did not, the asker
// called. The flow starts at the earlier of the two starts, whichever
// originated.
func join(a, b *Record) Flow {
	first, second := a, b
	aSyn, bSyn := onlyAsked(a), onlyAsked(b)
	aServer, ev := flows.ServerSide(a.Proto, a.SrcPort, a.DstPort)
	switch {
	case aSyn != bSyn:
		if bSyn {
			first, second = b, a
		}
	case ev != flows.NoServerEvidence:
		if aServer {
			first, second = b, a
		}
	case b.Start.Before(a.Start):
		first, second = b, a
	}
	f := flowFrom(first)
	f.RespPkts, f.RespBytes, f.RespFlags = second.Packets, second.Bytes, second.TCPFlags
	if second.Start.Before(f.Start) {
		f.Start = second.Start
	}
	if second.End.After(f.End) {
		f.End = second.End
	}
	if f.SamplingRate == 0 {
		f.SamplingRate = second.SamplingRate
	}
	return f
}
