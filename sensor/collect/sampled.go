package collect

import (
	"net/netip"
	"time"

	"github.com/outflow-sensor/outflow/flows"
)

// StitchSampled marks a flow summed from sFlow packet samples.
const StitchSampled = "sampled"

// sFlow sampled-header protocols (sFlow v5, header_protocol).
const (
	sflowEthernet = 1
	sflowIPv4     = 11
	sflowIPv6     = 12
)

// Sampled turns sFlow packet samples into flows. Each sampled header goes
// through the sensor's own packet decoder, so tunnels, VLANs and IPv6
// extension headers are read as in a capture; a sample stands for
// SamplingRate packets of its IP length. sFlow has no flow end, so the
// samples of one session, both directions, are summed for Window from the
// first and the flow is then emitted, as an exporter's active timeout would.
// Not safe for concurrent use.
type Sampled struct {
	Window time.Duration
	// MaxOpen bounds the flows being summed; past it the oldest goes out.
	MaxOpen int
	Stats   SampledStats
	dec     *flows.Decoder
	emit    func(*Flow)
	open    map[stitchKey]*sampledFlow
	head    *sampledFlow
	tail    *sampledFlow
}

// SampledStats counts what became of the samples.
type SampledStats struct {
	Samples     uint64
	Packets     uint64 // packets decoded from samples (a tunnelled one gives two)
	Unsupported uint64 // header protocols other than Ethernet, IPv4, IPv6
	Undecodable uint64 // headers the packet decoder refused
	Flows       uint64
	Forced      uint64 // flows emitted early because MaxOpen was reached
}

type sampledFlow struct {
	key  stitchKey
	flow Flow
	next *sampledFlow
}

// NewSampled returns a Sampled calling emit for every flow; the *Flow is
// valid during the call.
func NewSampled(window time.Duration, emit func(*Flow)) *Sampled {
	return &Sampled{Window: window, MaxOpen: 1 << 20, dec: flows.NewDecoder(), emit: emit, open: map[stitchKey]*sampledFlow{}}
}

// DecodeStats returns the packet decoder's counters for the sampled headers.
func (s *Sampled) DecodeStats() flows.DecodeStats { return s.dec.Stats }

// Add takes one sample, received at now.
func (s *Sampled) Add(smp *RawSample, now time.Time) {
	s.Stats.Samples++
	var lt flows.LinkType
	switch smp.Protocol {
	case sflowEthernet:
		lt = flows.LinkEthernet
	case sflowIPv4:
		lt = flows.LinkIPv4
	case sflowIPv6:
		lt = flows.LinkIPv6
	default:
		s.Stats.Unsupported++
		return
	}
	wire := int(smp.FrameLength)
	if wire < len(smp.Header) {
		wire = len(smp.Header)
	}
	pkts, err := s.dec.DecodeWire(smp.Header, wire, lt, now.UnixNano())
	if err != nil {
		s.Stats.Undecodable++
	}
	rate := uint64(max(smp.SamplingRate, 1))
	for i := range pkts {
		s.Stats.Packets++
		s.add(smp, &pkts[i], rate, now)
	}
}

func addrOfPacket(b *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

func (s *Sampled) add(smp *RawSample, p *flows.Packet, rate uint64, now time.Time) {
	r := Record{
		Exporter: smp.Exporter, Version: 5000, Proto: p.Proto, TCPFlags: p.Flags,
		Src: addrOfPacket(&p.Src, p.V6), Dst: addrOfPacket(&p.Dst, p.V6),
		SrcPort: p.SrcPort, DstPort: p.DstPort,
	}
	if p.Proto == 1 || p.Proto == 58 {
		// As exporters encode ICMP, so that the encoder reads both alike.
		r.SrcPort, r.DstPort = 0, p.SrcPort<<8|p.DstPort&0xff
	}
	k, _ := keyOf(&r)
	pkts, bytes := rate, uint64(p.IPLen)*rate
	if f := s.open[k]; f != nil {
		fl := &f.flow
		if fl.Orig == r.Src && fl.OrigP == r.SrcPort {
			fl.OrigPkts += pkts
			fl.OrigBytes += bytes
			fl.OrigFlags |= r.TCPFlags
		} else {
			fl.RespPkts += pkts
			fl.RespBytes += bytes
			fl.RespFlags |= r.TCPFlags
		}
		fl.End = now
		return
	}
	f := &sampledFlow{key: k, flow: Flow{
		Exporter: r.Exporter, Orig: r.Src, Resp: r.Dst, OrigP: r.SrcPort, RespP: r.DstPort, Proto: r.Proto,
		OrigPkts: pkts, OrigBytes: bytes, OrigFlags: r.TCPFlags, Start: now, End: now,
		SamplingRate: uint32(rate), Stitch: StitchSampled, Version: 5000, InIf: smp.InIf, OutIf: smp.OutIf,
	}}
	// The first sample may be any packet of the session: a SYN tells the
	// client, else the originator rule every export follows does.
	syn, ack := r.TCPFlags&flows.FlagSYN != 0, r.TCPFlags&flows.FlagACK != 0
	srcServer, ev := flows.ServerSide(p.Proto, r.SrcPort, r.DstPort)
	if p.Proto == 6 && syn && ack || !(p.Proto == 6 && syn) && ev != flows.NoServerEvidence && srcServer {
		swapDirections(&f.flow)
	}
	s.open[k] = f
	if s.tail == nil {
		s.head = f
	} else {
		s.tail.next = f
	}
	s.tail = f
	for len(s.open) > s.MaxOpen {
		s.Stats.Forced++
		s.emitOldest()
	}
}

// Expire emits every flow whose first sample is older than Window.
func (s *Sampled) Expire(now time.Time) {
	for s.head != nil && now.Sub(s.head.flow.Start) >= s.Window {
		s.emitOldest()
	}
}

// Flush emits every open flow.
func (s *Sampled) Flush() {
	for s.head != nil {
		s.emitOldest()
	}
}

func (s *Sampled) emitOldest() {
	f := s.head
	s.head = f.next
	if s.head == nil {
		s.tail = nil
	}
	delete(s.open, f.key)
	s.Stats.Flows++
	s.emit(&f.flow)
}
