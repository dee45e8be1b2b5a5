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
		if r.BiflowDirection == 2 {
			// RFC 5103: the record's destination initiated the session.
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
	if serverPort(f.OrigP) && !serverPort(f.RespP) {
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

// join makes one flow of two one-way records, choosing the originator as
// Zeek would without a handshake in view. Both directions of an exported
// TCP session carry SYN, so flags do not tell. Start times do when they are
// far apart; when they are close, exporters' clocks (millisecond or second
// resolution, packets timestamped by a queue-draining thread) can order a
// reply before its request, and the ports decide where they can: the
// client's port is the ephemeral one.
func join(a, b *Record) Flow {
	first, second := a, b
	if b.Start.Before(a.Start) {
		first, second = b, a
	}
	if second.Start.Sub(first.Start) <= closeStarts && serverPort(first.SrcPort) && !serverPort(second.SrcPort) {
		first, second = second, first
	}
	f := flowFrom(first)
	f.RespPkts, f.RespBytes, f.RespFlags = second.Packets, second.Bytes, second.TCPFlags
	if second.End.After(f.End) {
		f.End = second.End
	}
	if f.SamplingRate == 0 {
		f.SamplingRate = second.SamplingRate
	}
	return f
}

// closeStarts is how near two directions' start times must be for the
// ports to outweigh them.
const closeStarts = time.Second

// serverPort reports ports below 1024 and the registered ones services
// commonly listen on; a port above them reads as a client's ephemeral one.
func serverPort(p uint16) bool {
	switch p {
	case 1433, 1521, 2049, 3306, 3389, 5060, 5432, 5900, 6379, 8080, 8443, 9200, 9443, 27017:
		return true
	}
	return p != 0 && p < 1024
}
