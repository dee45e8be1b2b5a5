package flows

import (
	"bytes"

	"github.com/outflow-sensor/outflow/entropy"
	"github.com/outflow-sensor/outflow/tls"
	"github.com/outflow-sensor/outflow/tls/quic"
)

// InspectConfig turns payload inspection on and bounds what it may hold.
type InspectConfig struct {
	Enable bool
	// MaxFlows bounds the flows under inspection at once; a flow that finds
	// the pool full is counted in InspectStats.Skipped and reported without
	// inspection results.
	MaxFlows int
	// StreamBytes bounds, per direction, how far into the stream a handshake
	// or HTTP header is looked for and how much is held for reassembly.
	StreamBytes int
	// EntropyBytes is how many application payload bytes each direction's
	// entropy is measured over.
	EntropyBytes int
	// MaxHeldBytes bounds the bytes one inspector (one table, one worker)
	// holds for reassembly: gathered hellos and HTTP headers, out-of-order
	// segments, QUIC CRYPTO streams, its pooled buffers included. A flow
	// whose buffer would take it past the bound has its inspection
	// abandoned (InspectStats.Abandoned, reason budget).
	MaxHeldBytes int64
	// DNSAnswer, when set, receives each A and AAAA answer of the DNS
	// responses seen: the client that asked, the address, the name the
	// client asked for (CNAME chains lead back to it), the TTL in seconds and
	// the packet time. Slices are borrowed for the call.
	DNSAnswer func(client, addr, name []byte, ttl uint32, ts int64)
	// DNSMessage, when set, receives every DNS message of the UDP flows
	// that inspection took for DNS, not only each flow's first query and
	// answer: a tunnel sends thousands over one socket. The message is
	// reused; it is valid during the call.
	DNSMessage func(m *DNSMessage)
}

// DefaultInspectConfig returns inspection switched on with the documented
// defaults: 16 KiB per direction for handshakes, 4 KiB for entropy, and
// 64 MiB held per inspector. Real handshakes hold little for long: a
// ClientHello split over two segments, post-quantum key shares included,
// is under 4 KiB and whole within a round trip, so 64 MiB holds some
// 8,000 flows gathering one at once per worker, far more than a link's
// handshakes in flight, while one worker of a sensor under a flood of
// unfinished hellos holds 64 MiB rather than 45 KB per flow.
func DefaultInspectConfig() InspectConfig {
	return InspectConfig{Enable: true, MaxFlows: 1 << 18, StreamBytes: 16 << 10, EntropyBytes: 4096, MaxHeldBytes: 64 << 20}
}

// Direction phases.
const (
	phSniff    = iota // nothing classified yet
	phHello           // gathering a TLS hello
	phRecords         // walking TLS records after the hello
	phHTTPHead        // gathering an HTTP header block
	phPreamble        // a cleartext preamble that may turn into STARTTLS
	phPayload         // counting application bytes for entropy
	phDone
)

type dirState struct {
	next     uint32 // stream offset of the next in-order byte
	phase    uint8
	started  bool // a byte of this direction was seen (UDP, or TCP offsets known)
	counting bool // the entropy counter is running
	seen     uint32
	vpn      uint8  // the first packet opened a VPN handshake: vpnOpenVPN or vpnWireGuard
	cons     uint64 // bytes the phases consumed: the stream offset of the bytes at hand
	// TLS record walk: bytes left in the current record and its type, and
	// the partial header when a header straddles two segments.
	recLeft uint32
	recType uint8
	hdr     [tls.RecordHeaderLen]byte
	hdrN    uint8
	held    [maxHeld]heldSeg
	nHeld   uint8
	heldLen uint32
}

// inspectWork is the heavy part of an inspection, pooled and released as
// soon as both directions are done.
type inspectWork struct {
	// dir is the stream state of each direction; with the rest of the
	// work, it goes back to the pool once inspection is over, so a flow
	// that lingers until its close timeout keeps only its results.
	dir  [2]dirState
	ent  [2]entropy.Counter
	acc  [2][]byte // gathered bytes while a hello or header is incomplete
	hold [2][]byte // out-of-order segments, indexed by heldSeg.start
	quic quic.Assembler
	// quicOff: the client's Initials failed to open; stop trying.
	quicOff bool
	// quicRes is what quic holds, charged against the budget once its
	// first Initial is fed (quicHeld).
	quicRes int
}

// inspector owns the inspection pool of one Table.
type inspector struct {
	cfg InspectConfig
	// states grows in chunks, so that growing never copies the slots in use
	// and a table that inspects few flows holds few.
	states  [][]Inspection
	nStates int
	free    []uint32
	works   []*inspectWork // pooled works that hold no buffers
	// worksBuf are pooled works that kept their buffers: handed out first,
	// so a busy table allocates none, and dropped first when the budget
	// is short.
	worksBuf []*inspectWork
	scratch  []byte // gathers a hello split over several records
	hello    tls.ClientHello
	server   tls.ServerHello
	fp       tls.Fingerprints
	dns      dnsParser
	exam     entropy.Examiner // decoders for the payload class's container check
	Stats    InspectStats
}

func newInspector(cfg InspectConfig) *inspector {
	d := DefaultInspectConfig()
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = d.MaxFlows
	}
	if cfg.StreamBytes <= 0 {
		cfg.StreamBytes = d.StreamBytes
	}
	if cfg.EntropyBytes <= 0 {
		cfg.EntropyBytes = d.EntropyBytes
	}
	if cfg.MaxHeldBytes <= 0 {
		cfg.MaxHeldBytes = d.MaxHeldBytes
	}
	return &inspector{cfg: cfg, scratch: make([]byte, 0, cfg.StreamBytes)}
}

// alloc returns a new inspection slot plus one, or 0 when the pool is full.
func (in *inspector) alloc() uint32 {
	var idx uint32
	switch {
	case len(in.free) > 0:
		idx = in.free[len(in.free)-1]
		in.free = in.free[:len(in.free)-1]
	case in.nStates < in.cfg.MaxFlows:
		if in.nStates&(stateChunk-1) == 0 {
			in.states = append(in.states, make([]Inspection, stateChunk))
		}
		idx = uint32(in.nStates)
		in.nStates++
	default:
		in.Stats.Skipped++
		return 0
	}
	in.Stats.Flows++
	s := in.at(idx)
	// Slices are not reused across flows: a record's inspection is copied
	// to the exporter and must keep its own.
	*s = Inspection{}
	s.work = in.getWork()
	return idx + 1
}

func (in *inspector) getWork() *inspectWork {
	var w *inspectWork
	if n := len(in.worksBuf); n > 0 {
		w = in.worksBuf[n-1]
		in.worksBuf = in.worksBuf[:n-1]
	} else if n := len(in.works); n > 0 {
		w = in.works[n-1]
		in.works = in.works[:n-1]
	} else {
		w = &inspectWork{}
	}
	w.dir = [2]dirState{}
	for d := range w.ent {
		w.ent[d].Reset(in.cfg.EntropyBytes)
		w.acc[d] = w.acc[d][:0]
		w.hold[d] = w.hold[d][:0]
	}
	w.quic.Reset()
	w.quicOff = false
	return w
}

// stateChunk is how many slots are allocated at a time.
const stateChunk = 1 << 10

func (in *inspector) at(idx uint32) *Inspection {
	return &in.states[idx/stateChunk][idx%stateChunk]
}

func (in *inspector) state(slot uint32) *Inspection {
	if slot == 0 || slot == noSlot {
		return nil
	}
	return in.at(slot - 1)
}

// release frees a slot after its flow's final record was emitted.
func (in *inspector) release(slot uint32) {
	if slot != 0 && slot != noSlot {
		in.free = append(in.free, slot-1)
	}
}

// finish turns the counters into samples and returns the work to the pool.
func (in *inspector) finish(s *Inspection) {
	if s.work == nil {
		return
	}
	for d := 0; d < 2; d++ {
		in.sample(s, d)
	}
	if s.work.held() > 0 {
		in.worksBuf = append(in.worksBuf, s.work)
	} else {
		in.works = append(in.works, s.work)
	}
	s.work = nil
}

func (in *inspector) sample(s *Inspection, d int) {
	if s.work == nil || !s.work.dir[d].counting {
		return
	}
	c := &s.work.ent[d]
	if c.N() == 0 || c.N() == s.Entropy[d].N {
		return // nothing counted, or nothing new since the last sample
	}
	bits, chi2, class, reason := c.Judge(&in.exam)
	s.Entropy[d] = EntropySample{Bits: bits, N: c.N(), Chi2: chi2, Class: class, Reason: reason}
}

// snapshot fills the entropy samples of a flow still under inspection, for
// an interim record.
func (in *inspector) snapshot(s *Inspection) {
	for d := 0; d < 2; d++ {
		in.sample(s, d)
	}
}

// packet feeds p's payload to r's inspection. isOrig is the sender's role
// after the table accounted the packet.
func (in *inspector) packet(slot uint32, r *Record, p *Packet, isOrig bool) {
	s := in.at(slot - 1)
	if s.flipped != r.Flipped() {
		s.flipped = r.Flipped()
		s.Entropy[0], s.Entropy[1] = s.Entropy[1], s.Entropy[0]
		if w := s.work; w != nil {
			w.dir[0], w.dir[1] = w.dir[1], w.dir[0]
			w.ent[0], w.ent[1] = w.ent[1], w.ent[0]
			w.acc[0], w.acc[1] = w.acc[1], w.acc[0]
			w.hold[0], w.hold[1] = w.hold[1], w.hold[0]
		}
	}
	if s.work == nil {
		if s.App == AppDNS {
			// Past the first answer, inspection is over but the flow's
			// messages still go to DNSMessage.
			in.dnsTap(r, p)
		}
		return
	}
	d := 0
	if !isOrig {
		d = 1
	}
	switch r.Proto {
	case 6:
		if len(p.Payload) > 0 {
			e, _ := r.ends(isOrig)
			// Endpoint offsets count the SYN as byte 1; the stream starts at 0.
			in.segment(r, s, d, p.Seq-e.isn-1, p.Payload)
		}
		// A side that closed sends nothing more; once both have, the
		// flow's heavy state goes back to the pool rather than waiting
		// out the close timeout.
		if p.Flags&FlagRST != 0 {
			in.stop(s, 0)
			in.stop(s, 1)
		} else if p.Flags&FlagFIN != 0 {
			in.stop(s, d)
		}
	case 17:
		if len(p.Payload) == 0 {
			return
		}
		in.datagram(r, s, d, p)
	default:
		in.consume(r, s, d, p.Payload)
	}
	if s.work != nil && s.work.dir[0].phase == phDone && s.work.dir[1].phase == phDone {
		in.finish(s)
	}
}

// consume takes the next in-order bytes of direction d.
func (in *inspector) consume(r *Record, s *Inspection, d int, data []byte) {
	ds := &s.work.dir[d]
	for len(data) > 0 && ds.phase != phDone {
		before := len(data)
		switch ds.phase {
		case phSniff:
			data = in.sniff(r, s, d, data)
		case phHello:
			data = in.helloBytes(s, d, data)
		case phRecords:
			data = in.records(s, d, data)
		case phHTTPHead:
			data = in.httpHead(s, d, data)
		case phPreamble:
			data = in.preamble(s, d, data)
		case phPayload:
			in.count(s, d, data)
			data = nil
		}
		ds.cons += uint64(before - len(data))
	}
}

// count adds application payload to the direction's entropy counter.
func (in *inspector) count(s *Inspection, d int, data []byte) {
	ds := &s.work.dir[d]
	ds.counting = true
	if s.work.ent[d].Add(data) {
		in.sample(s, d)
		if ds.phase == phPayload {
			ds.phase = phDone
		}
	}
}

func (in *inspector) sniff(r *Record, s *Inspection, d int, data []byte) []byte {
	in.classify(r, s, d, data)
	return data
}

func (in *inspector) classify(r *Record, s *Inspection, d int, b []byte) {
	ds := &s.work.dir[d]
	switch {
	case tls.LooksLikeHandshake(b, 1) || tls.LooksLikeHandshake(b, 2):
		ds.phase = phHello
		if s.App == AppUnknown {
			s.App = AppTLS
		}
	case bytes.HasPrefix(b, []byte("SSH-")):
		s.App = AppSSH
		ds.phase = phPayload
	case vpnSniff(r, s, d, b):
		ds.phase = phPayload
	case isHTTPStart(b):
		ds.phase = phHTTPHead
		if s.App == AppUnknown {
			s.App = AppHTTP
		}
	case r.Proto == 6:
		// Text or binary, the stream may yet turn into TLS: STARTTLS in
		// SMTP, IMAP, POP3, FTP, IRC and XMPP, LDAP's StartTLS, MySQL and
		// PostgreSQL SSL requests.
		ds.phase = phPreamble
	default:
		ds.phase = phPayload
	}
}
