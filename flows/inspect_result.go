package flows

import "github.com/outflow-sensor/outflow/entropy"

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
	// Reason says what decided Class: the statistics, or a container
	// checked in the first bytes (payload_class_reason).
	Reason entropy.Reason
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
