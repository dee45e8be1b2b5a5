package flows

import (
	"bytes"
	"strings"

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
	// DNSAnswer, when set, receives each A and AAAA answer of the DNS
	// responses seen: the client that asked, the address, the name the
	// client asked for (CNAME chains lead back to it), the TTL in seconds and
	// the packet time. Slices are borrowed for the call.
	DNSAnswer func(client, addr, name []byte, ttl uint32, ts int64)
}

// DefaultInspectConfig returns inspection switched on with the documented
// defaults: 16 KiB per direction for handshakes, 4 KiB for entropy.
func DefaultInspectConfig() InspectConfig {
	return InspectConfig{Enable: true, MaxFlows: 1 << 18, StreamBytes: 16 << 10, EntropyBytes: 4096}
}

// AppProto is the application protocol inspection recognised.
type AppProto uint8

// Application protocols.
const (
	AppUnknown AppProto = iota
	AppTLS
	AppQUIC
	AppHTTP
	AppDNS
	AppSSH
	AppOpenVPN
	AppWireGuard
)

var appNames = [...]string{"unknown", "tls", "quic", "http", "dns", "ssh", "openvpn", "wireguard"}

func (a AppProto) String() string {
	if int(a) < len(appNames) {
		return appNames[a]
	}
	return "unknown"
}

// TLSInfo is what the handshake said. Strings are built once per flow.
type TLSInfo struct {
	ClientHello, ServerHello bool
	// Encrypted records, per direction (0 originator, 1 responder), that the
	// side switched to encryption after the hellos: a change_cipher_spec
	// (TLS 1.2 and earlier, and 1.3 in middlebox-compatibility mode) or an
	// application_data record (1.3 encrypts the rest of its handshake).
	Encrypted [2]bool
	StartTLS  bool   // the handshake followed a cleartext preamble
	Version   uint16 // negotiated: the ServerHello's supported_versions, else its legacy_version
	Cipher    uint16
	SNI       string
	ALPN      []string
	JA3       string
	JA3String string
	JA3S      string
	JA3SStr   string
	JA4       string
}

// Established is Zeek's ssl.log established: both hellos, then both sides
// switched to encryption.
func (t *TLSInfo) Established() bool {
	return t.ClientHello && t.ServerHello && t.Encrypted[0] && t.Encrypted[1]
}

// HTTPInfo is the first cleartext HTTP request of a flow.
type HTTPInfo struct {
	Method string
	Host   string
	// ContentLength is the request's Content-Length, -1 when it had none.
	ContentLength int64
	// headerEnd is the originator stream offset where the body starts.
	headerEnd uint64
	seen      bool
}

// QUICInfo is what the client's Initial packets carried.
type QUICInfo struct {
	Version uint32
	SNI     string
	ALPN    []string
	JA4     string
}

// DNSInfo is the first DNS query of a flow and its answer.
type DNSInfo struct {
	Query    string
	QType    uint16
	RCode    uint8
	Response bool
	Answers  []string
}

// EntropySample is one direction's byte statistics.
type EntropySample struct {
	Bits  float64 // Shannon entropy, bits per byte
	N     int     // bytes measured
	Chi2  float64 // chi-square against uniform
	Class entropy.Class
}

// Inspection holds what payload inspection learned of one flow. A Table
// hands it out with the flow's records; it is valid during the emit call.
type Inspection struct {
	App AppProto
	// One flow speaks one of these, so each is allocated when its protocol
	// is first seen and nil otherwise: a slot stays small while the flow
	// waits out its close timeout, and a capture of a million short flows
	// does not hold a million copies of every protocol's fields.
	TLS     *TLSInfo
	HTTP    *HTTPInfo
	QUIC    *QUICInfo
	DNS     *DNSInfo
	Entropy [2]EntropySample // 0 originator, 1 responder
	// Resolved is the name the client looked up for the responder, filled
	// in from DNS answers by the sensor at export.
	Resolved string

	work    *inspectWork
	flipped bool
}

// Snapshot returns a copy that no later packet of the flow changes: the
// protocol details are copied too. An interim record's inspection goes to
// the exporter this way while the flow carries on.
func (s *Inspection) Snapshot() Inspection {
	c := *s
	if s.TLS != nil {
		t := *s.TLS
		c.TLS = &t
	}
	if s.HTTP != nil {
		h := *s.HTTP
		c.HTTP = &h
	}
	if s.QUIC != nil {
		q := *s.QUIC
		c.QUIC = &q
	}
	if s.DNS != nil {
		d := *s.DNS
		c.DNS = &d
	}
	c.work = nil
	return c
}

func (s *Inspection) tls() *TLSInfo {
	if s.TLS == nil {
		s.TLS = new(TLSInfo)
	}
	return s.TLS
}

func (s *Inspection) http() *HTTPInfo {
	if s.HTTP == nil {
		s.HTTP = &HTTPInfo{ContentLength: -1}
	}
	return s.HTTP
}

func (s *Inspection) quic() *QUICInfo {
	if s.QUIC == nil {
		s.QUIC = new(QUICInfo)
	}
	return s.QUIC
}

func (s *Inspection) dns() *DNSInfo {
	if s.DNS == nil {
		s.DNS = new(DNSInfo)
	}
	return s.DNS
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

// maxHeld is how many out-of-order segments a direction holds at once.
const maxHeld = 8

type heldSeg struct{ off, start, n uint32 }

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
}

// inspector owns the inspection pool of one Table.
type inspector struct {
	cfg InspectConfig
	// states grows in chunks, so that growing never copies the slots in use
	// and a table that inspects few flows holds few.
	states  [][]Inspection
	nStates int
	free    []uint32
	works   []*inspectWork
	scratch []byte // gathers a hello split over several records
	hello   tls.ClientHello
	server  tls.ServerHello
	fp      tls.Fingerprints
	dns     dnsParser
	Stats   InspectStats
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
	if n := len(in.works); n > 0 {
		w = in.works[n-1]
		in.works = in.works[:n-1]
	} else {
		w = &inspectWork{}
	}
	w.dir = [2]dirState{}
	for d := range w.ent {
		w.ent[d].Reset(in.cfg.EntropyBytes)
		w.acc[d] = w.acc[d][:0]
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
	in.works = append(in.works, s.work)
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
	bits, chi2, class := c.Summary()
	s.Entropy[d] = EntropySample{Bits: bits, N: c.N(), Chi2: chi2, Class: class}
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

// segment places a TCP segment at stream offset off: in-order bytes are
// consumed at once, without a copy; segments past a hole wait in a bounded
// buffer until it fills.
func (in *inspector) segment(r *Record, s *Inspection, d int, off uint32, data []byte) {
	ds := &s.work.dir[d]
	if ds.phase == phDone {
		return
	}
	if !ds.started {
		ds.started = true
		ds.next = off
	}
	rel := int32(off - ds.next)
	if rel < 0 {
		if int(-rel) >= len(data) {
			return // a retransmission of what was consumed
		}
		data = data[-rel:]
		rel = 0
	}
	if rel > 0 {
		in.hold(s, d, off, data)
		return
	}
	in.consume(r, s, d, data)
	ds.next += uint32(len(data))
	for ds.nHeld > 0 && ds.phase != phDone {
		if !in.drainHeld(r, s, d) {
			break
		}
	}
}

func (in *inspector) hold(s *Inspection, d int, off uint32, data []byte) {
	ds, w := &s.work.dir[d], s.work
	ahead := off - ds.next
	if ds.nHeld == maxHeld || int(ahead)+len(data) > in.cfg.StreamBytes ||
		int(ds.heldLen)+len(data) > in.cfg.StreamBytes {
		// The hole is too wide to wait for: inspection of this side ends
		// here, as a content gap ends Zeek's analyzers.
		in.Stats.Gaps++
		in.stop(s, d)
		return
	}
	if w.hold[d] == nil {
		w.hold[d] = make([]byte, 0, in.cfg.StreamBytes)
	}
	start := uint32(len(w.hold[d]))
	w.hold[d] = append(w.hold[d], data...)
	ds.held[ds.nHeld] = heldSeg{off: off, start: start, n: uint32(len(data))}
	ds.nHeld++
	ds.heldLen += uint32(len(data))
}

// drainHeld consumes one held segment that now touches the in-order edge,
// and reports whether one did.
func (in *inspector) drainHeld(r *Record, s *Inspection, d int) bool {
	ds, w := &s.work.dir[d], s.work
	for i := 0; i < int(ds.nHeld); i++ {
		h := ds.held[i]
		rel := int32(h.off - ds.next)
		if rel > 0 {
			continue
		}
		ds.held[i] = ds.held[ds.nHeld-1]
		ds.nHeld--
		if int(-rel) < int(h.n) {
			data := w.hold[d][h.start+uint32(-rel) : h.start+h.n]
			in.consume(r, s, d, data)
			ds.next += uint32(len(data))
		}
		if ds.nHeld == 0 {
			w.hold[d] = w.hold[d][:0]
			ds.heldLen = 0
		}
		return true
	}
	return false
}

func (in *inspector) stop(s *Inspection, d int) {
	if s.work == nil {
		return
	}
	ds := &s.work.dir[d]
	in.sample(s, d)
	ds.phase = phDone
	ds.nHeld, ds.heldLen = 0, 0
	s.work.hold[d] = s.work.hold[d][:0]
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

// httpMethods start the request lines recognised as HTTP.
var httpMethods = [...]string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "PROPFIND ", "MKCOL ", "COPY ", "MOVE "}

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

// VPN handshakes recognised.
const (
	vpnOpenVPN   = 1
	vpnWireGuard = 2
)

// vpnSniff reads a direction's first payload for a VPN's handshake:
// opaque to entropy, but a protocol with a handshake of its own. The
// originator's first packet is noted; the session is known when the
// responder's answers in kind. It reports whether b was such a packet.
func vpnSniff(r *Record, s *Inspection, d int, b []byte) bool {
	orig := &s.work.dir[0]
	if d == 0 {
		orig.vpn = vpnOpen(r.Proto, b)
		return orig.vpn != 0
	}
	if orig.vpn == 0 || vpnAnswer(r.Proto, b) != orig.vpn {
		return false
	}
	s.App = AppOpenVPN
	if orig.vpn == vpnWireGuard {
		s.App = AppWireGuard
	}
	return true
}

// openVPNOpcode returns the opcode and key id of an OpenVPN packet: over
// TCP each packet has a two-byte length before it.
func openVPNOpcode(proto uint8, b []byte) (op, key byte, ok bool) {
	if proto == 6 {
		if len(b) < 2 || int(b[0])<<8|int(b[1]) != len(b)-2 {
			return 0, 0, false
		}
		b = b[2:]
	}
	if len(b) < 9 {
		return 0, 0, false
	}
	return b[0] >> 3, b[0] & 7, true
}

// vpnOpen recognises the first packet of an OpenVPN session (a hard
// reset from the client, v2 or v3, key 0, with its session id) or of a
// WireGuard handshake (an initiation: type 1, three zero bytes, 148
// bytes) or session.
func vpnOpen(proto uint8, b []byte) uint8 {
	if proto == 17 && (len(b) == 148 && b[0] == 1 || wireGuardData(b)) && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		return vpnWireGuard
	}
	if op, key, ok := openVPNOpcode(proto, b); ok && key == 0 && (op == 7 || op == 10) {
		return vpnOpenVPN
	}
	return 0
}

// wireGuardData recognises a WireGuard transport message, met when the
// capture starts mid-session: type 4, a receiver index, a counter, and
// the sealed packet padded to 16 bytes with its 16-byte tag.
func wireGuardData(b []byte) bool {
	return len(b) >= 32 && b[0] == 4 && (len(b)-16)%16 == 0
}

// vpnAnswer recognises the responder's first packet: OpenVPN's server
// hard reset (v2), WireGuard's handshake response (type 2, 92 bytes).
func vpnAnswer(proto uint8, b []byte) uint8 {
	if proto == 17 && (len(b) == 92 && b[0] == 2 || wireGuardData(b)) && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		return vpnWireGuard
	}
	if op, key, ok := openVPNOpcode(proto, b); ok && key == 0 && op == 8 {
		return vpnOpenVPN
	}
	return 0
}

func isHTTPStart(b []byte) bool {
	// Every method and the status line start with an upper-case letter
	// from this set; most payloads are ruled out by their first byte.
	if len(b) < 4 || !strings.ContainsRune("CDGHMOPU", rune(b[0])) {
		return false
	}
	if bytes.HasPrefix(b, []byte("HTTP/1.")) {
		return true
	}
	for _, m := range httpMethods {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

// helloBytes gathers the first handshake message of a direction.
func (in *inspector) helloBytes(s *Inspection, d int, data []byte) []byte {
	w, ds := s.work, &s.work.dir[d]
	src := data
	gathered := len(w.acc[d]) > 0
	take := min(len(data), in.cfg.StreamBytes-len(w.acc[d]))
	if gathered {
		w.acc[d] = append(w.acc[d], data[:take]...)
		src = w.acc[d]
	}
	msg, used, st, err := tls.FirstHandshake(src, in.scratch[:0])
	switch st {
	case tls.NeedMore:
		if !gathered {
			if w.acc[d] == nil {
				w.acc[d] = make([]byte, 0, in.cfg.StreamBytes)
			}
			w.acc[d] = append(w.acc[d], data[:take]...)
		}
		if len(w.acc[d]) >= in.cfg.StreamBytes {
			in.Stats.TLSErrors[tls.ReasonTooLarge]++
			w.acc[d] = w.acc[d][:0]
			ds.phase = phPayload
		}
		return nil
	case tls.Complete:
		in.parseHello(s, d, msg)
		ds.phase = phRecords
		if gathered {
			// The records walk continues from where the hello's records
			// ended, in the part of data past the gathered prefix.
			before := len(w.acc[d]) - take
			w.acc[d] = w.acc[d][:0]
			if used-before >= 0 && used-before <= len(data) {
				return data[used-before:]
			}
			return nil
		}
		return data[used:]
	default:
		if e, ok := err.(*tls.Error); ok {
			in.Stats.TLSErrors[e.Reason]++
		} else {
			in.Stats.TLSErrors[tls.ReasonMalformed]++
		}
		w.acc[d] = w.acc[d][:0]
		ds.phase = phPayload
		return nil
	}
}

// hello parses one handshake message and records what it says.
func (in *inspector) parseHello(s *Inspection, d int, msg []byte) {
	t := s.tls()
	switch msg[0] {
	case 1:
		if t.ClientHello {
			return
		}
		if err := tls.ParseClientHello(msg, &in.hello); err != nil {
			in.countTLSError(err)
			return
		}
		in.Stats.ClientHellos++
		t.ClientHello = true
		t.SNI = string(in.hello.SNI)
		for _, p := range in.hello.ALPN {
			t.ALPN = append(t.ALPN, string(p))
		}
		t.JA3String, t.JA3 = in.fp.JA3(&in.hello)
		t.JA4 = in.fp.JA4(&in.hello, tls.TCP)
	case 2:
		if t.ServerHello {
			return
		}
		if err := tls.ParseServerHello(msg, &in.server); err != nil {
			in.countTLSError(err)
			return
		}
		in.Stats.ServerHellos++
		t.ServerHello = true
		t.Version = in.server.NegotiatedVersion()
		t.Cipher = in.server.Cipher
		t.JA3SStr, t.JA3S = in.fp.JA3S(&in.server)
	default:
		in.Stats.TLSErrors[tls.ReasonNotHello]++
	}
}

func (in *inspector) countTLSError(err error) {
	if e, ok := err.(*tls.Error); ok {
		in.Stats.TLSErrors[e.Reason]++
		return
	}
	in.Stats.TLSErrors[tls.ReasonMalformed]++
}

// records walks the TLS records after the hello: application data marks the
// direction established and its bytes are what entropy measures.
func (in *inspector) records(s *Inspection, d int, data []byte) []byte {
	ds := &s.work.dir[d]
	for len(data) > 0 {
		if ds.recLeft == 0 {
			n := copy(ds.hdr[ds.hdrN:], data)
			ds.hdrN += uint8(n)
			data = data[n:]
			if ds.hdrN < tls.RecordHeaderLen {
				return nil
			}
			ds.hdrN = 0
			h := ds.hdr
			if h[1] != 3 || h[0] < tls.ContentChangeCipherSpec || h[0] > tls.ContentHeartbeat {
				// Not records any more (a protocol switched back to clear
				// text, or a desynchronised stream): measure what is there.
				ds.phase = phPayload
				return data
			}
			ds.recType = h[0]
			ds.recLeft = uint32(h[3])<<8 | uint32(h[4])
			if ds.recType == tls.ContentApplicationData || ds.recType == tls.ContentChangeCipherSpec {
				s.tls().Encrypted[d] = true
			}
			if ds.recLeft == 0 {
				continue
			}
		}
		n := min(uint32(len(data)), ds.recLeft)
		if ds.recType == tls.ContentApplicationData && !s.work.ent[d].Full() {
			in.count(s, d, data[:n])
		}
		ds.recLeft -= n
		data = data[n:]
		if s.work.ent[d].Full() && s.TLS != nil && s.TLS.Encrypted[d] {
			in.sample(s, d)
			ds.phase = phDone
			return nil
		}
	}
	return nil
}

// httpHead gathers a request or status line and headers, then measures the
// body.
func (in *inspector) httpHead(s *Inspection, d int, data []byte) []byte {
	w, ds := s.work, &s.work.dir[d]
	start := len(w.acc[d])
	// Look for the end of the header in the gathered tail plus data without
	// copying data when the header ends inside it.
	if start == 0 {
		if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
			in.httpHeader(s, d, data[:i+4], ds.cons+uint64(i+4))
			ds.phase = afterHTTP(s)
			return data[i+4:]
		}
		if w.acc[d] == nil {
			w.acc[d] = make([]byte, 0, in.cfg.StreamBytes)
		}
	}
	take := min(len(data), in.cfg.StreamBytes-start)
	w.acc[d] = append(w.acc[d], data[:take]...)
	from := max(0, start-3)
	if i := bytes.Index(w.acc[d][from:], []byte("\r\n\r\n")); i >= 0 {
		end := from + i + 4
		used := end - start
		in.httpHeader(s, d, w.acc[d][:end], ds.cons+uint64(used))
		w.acc[d] = w.acc[d][:0]
		ds.phase = afterHTTP(s)
		return data[used:]
	}
	if len(w.acc[d]) >= in.cfg.StreamBytes {
		// No header end within the bound: not HTTP after all.
		w.acc[d] = w.acc[d][:0]
		ds.phase = phPayload
		return data[take:]
	}
	return nil
}

// afterHTTP is the phase after a header: a CONNECT tunnel usually carries
// TLS next, so it is watched for; other bodies are measured.
func afterHTTP(s *Inspection) uint8 {
	if s.HTTP != nil && s.HTTP.Method == "CONNECT" {
		return phPreamble
	}
	return phPayload
}

func (in *inspector) httpHeader(s *Inspection, d int, head []byte, bodyAt uint64) {
	if d != 0 || s.HTTP != nil && s.HTTP.seen {
		return
	}
	h := s.http()
	h.seen = true
	h.headerEnd = bodyAt
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if m, _, ok := bytes.Cut(line, []byte(" ")); ok {
		h.Method = string(m)
	}
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("host")):
			h.Host = string(v)
		case bytes.EqualFold(k, []byte("content-length")):
			h.ContentLength = parseDec(v)
		}
	}
}

func parseDec(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// preamble measures the first bytes of a stream not yet recognised and
// watches each new chunk, up to StreamBytes, for the TLS handshake that a
// STARTTLS-style upgrade leads to.
func (in *inspector) preamble(s *Inspection, d int, data []byte) []byte {
	ds := &s.work.dir[d]
	if tls.LooksLikeHandshake(data, 1) || tls.LooksLikeHandshake(data, 2) {
		s.App = AppTLS
		s.tls().StartTLS = true
		// The preamble is not application payload of the TLS session.
		s.work.ent[d].Reset(in.cfg.EntropyBytes)
		ds.counting = false
		ds.phase = phHello
		return data
	}
	ds.seen += uint32(len(data))
	in.count(s, d, data)
	if int(ds.seen) >= in.cfg.StreamBytes {
		ds.phase = phPayload
		if s.work.ent[d].Full() {
			ds.phase = phDone
		}
	}
	return nil
}

// datagram inspects one UDP payload.
func (in *inspector) datagram(r *Record, s *Inspection, d int, p *Packet) {
	ds := &s.work.dir[d]
	b := p.Payload
	if !ds.started {
		ds.started = true
		switch {
		case r.OrigP == 53 || r.RespP == 53 || r.OrigP == 5353 || r.RespP == 5353:
			s.App = AppDNS
		case quicLongHeader(b) && s.App == AppUnknown:
			s.App = AppQUIC
			in.Stats.QUIC++
		case s.App == AppUnknown:
			vpnSniff(r, s, d, b)
		}
	}
	switch s.App {
	case AppDNS:
		in.dnsMessage(r, s, d, p, b)
		if s.DNS != nil && s.DNS.Response {
			ds.phase = phDone
			s.work.dir[1-d].phase = phDone
		}
		return
	case AppQUIC:
		if b[0]&0x80 != 0 {
			// Long-header packets are the handshake, not application
			// payload; the client's Initials carry its ClientHello.
			if d == 0 {
				in.quicInitial(s, b)
			}
			return
		}
	}
	in.count(s, d, b)
	if s.work.ent[d].Full() {
		ds.phase = phDone
	}
}

// quicLongHeader recognises a QUIC v1, v2 or draft long-header packet.
func quicLongHeader(b []byte) bool {
	if len(b) < 7 || b[0]&0xc0 != 0xc0 {
		return false
	}
	v := be32(b[1:5])
	return v == 1 || v == 0x6b3343cf || v>>8 == 0xff0000
}

// quicInitial feeds a client datagram to the flow's QUIC assembler and
// records the ClientHello once it is whole.
func (in *inspector) quicInitial(s *Inspection, b []byte) {
	w, q := s.work, s.quic()
	if w.quicOff || w.quic.Done() {
		return
	}
	if v, ok := quic.IsLongHeaderInitial(b); ok && q.Version == 0 {
		q.Version = v
	}
	done, err := w.quic.Feed(b)
	if err != nil {
		in.Stats.QUICErrors[err.(*quic.Error).Reason]++
		w.quicOff = true
		return
	}
	if !done {
		return
	}
	if err := tls.ParseClientHello(w.quic.Hello(), &in.hello); err != nil {
		in.countTLSError(err)
		return
	}
	in.Stats.QUICHellos++
	q.Version = w.quic.Version()
	q.SNI = string(in.hello.SNI)
	for _, p := range in.hello.ALPN {
		q.ALPN = append(q.ALPN, string(p))
	}
	q.JA4 = in.fp.JA4(&in.hello, tls.QUIC)
}
