package flows

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// dnsParser decodes DNS messages with gopacket's DNS layer, reused so that a
// steady stream of answers allocates only the names it keeps.
type dnsParser struct {
	msg layers.DNS
	// tap is the message handed to InspectConfig.DNSMessage, reused.
	tap DNSMessage
}

func (in *inspector) dnsMessage(r *Record, s *Inspection, d int, p *Packet, b []byte) {
	in.dnsTap(r, p)
	if err := in.dns.msg.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		in.Stats.DNSError++
		return
	}
	in.Stats.DNS++
	m := &in.dns.msg
	q := s.dns()
	if q.Query == "" && len(m.Questions) > 0 {
		q.Query = string(m.Questions[0].Name)
		q.QType = uint16(m.Questions[0].Type)
	}
	if !m.QR || q.Response {
		return
	}
	q.Response = true
	q.RCode = uint8(m.ResponseCode)
	for _, a := range m.Answers {
		if len(q.Answers) == 16 {
			break
		}
		switch a.Type {
		case layers.DNSTypeA, layers.DNSTypeAAAA:
			q.Answers = append(q.Answers, a.IP.String())
		case layers.DNSTypeCNAME:
			q.Answers = append(q.Answers, string(a.CNAME))
		}
	}
	if in.cfg.DNSAnswer != nil && len(m.Questions) > 0 {
		// The client is the receiver of the response.
		client, name := p.dstAddr(), m.Questions[0].Name
		for _, a := range m.Answers {
			switch a.Type {
			case layers.DNSTypeA:
				if ip4 := a.IP.To4(); ip4 != nil {
					in.cfg.DNSAnswer(client, ip4, name, a.TTL, p.TS)
				}
			case layers.DNSTypeAAAA:
				if len(a.IP) == 16 {
					in.cfg.DNSAnswer(client, a.IP, name, a.TTL, p.TS)
				}
			}
		}
	}
}

// DNSAnswerKind groups answer records by what they can carry: addresses,
// or names and free text that a tunnel can fill with data.
type DNSAnswerKind uint8

// Answer kinds, as DNSMessage counts them.
const (
	DNSAnswerAddr  DNSAnswerKind = iota // A and AAAA
	DNSAnswerCNAME                      // CNAME
	DNSAnswerTXT                        // TXT
	DNSAnswerNULL                       // NULL (obsolete since RFC 1035; iodine's default)
	DNSAnswerMX                         // MX
	DNSAnswerOther                      // anything else: SRV, PTR, private types, ...
	NumDNSAnswerKinds
)

// DNS record types the answer kinds are made of.
const (
	dnsTypeA     = 1
	dnsTypeCNAME = 5
	dnsTypeNULL  = 10
	dnsTypeMX    = 15
	dnsTypeTXT   = 16
	dnsTypeAAAA  = 28
)

func answerKind(t uint16) DNSAnswerKind {
	switch t {
	case dnsTypeA, dnsTypeAAAA:
		return DNSAnswerAddr
	case dnsTypeCNAME:
		return DNSAnswerCNAME
	case dnsTypeTXT:
		return DNSAnswerTXT
	case dnsTypeNULL:
		return DNSAnswerNULL
	case dnsTypeMX:
		return DNSAnswerMX
	}
	return DNSAnswerOther
}

// DNSMessage is one DNS query or response of a UDP flow, as handed to
// InspectConfig.DNSMessage for every message of every DNS flow (the
// flow's first query and answer also go to its record, DNSInfo). Name is
// borrowed: valid during the call, copy to keep.
type DNSMessage struct {
	TS int64 // packet time, Unix nanoseconds
	// Client asked, Server answers, whichever sent this message: with the
	// protocol (UDP) they are the flow's 5-tuple.
	Client, Server netip.AddrPort
	Response       bool
	RCode          uint8
	// QType is the first question's type; Name its name, dotted, without
	// the root's dot, ASCII letters in lower case (resolvers randomise
	// the case of what they forward, RFC draft "0x20"); other bytes are
	// kept as sent, so a label of binary data stays as long as it was.
	QType uint16
	Name  []byte
	// Len is the message's length as the UDP header declares it.
	Len int
	// Answers and AnswerBytes are the answer section's records and their
	// RDATA bytes, by kind.
	Answers     [NumDNSAnswerKinds]uint16
	AnswerBytes [NumDNSAnswerKinds]uint32
	// Partial says the capture cut the answer section short: the counts
	// are of the records it held.
	Partial bool

	name [dnsMaxName]byte
}

// dnsMaxName bounds a name's text: 255 bytes on the wire (RFC 1035
// 3.1) make at most 254 bytes of labels and dots.
const dnsMaxName = 255

// DNS message parse errors: a message cut short before the end of its
// question, and one that breaks the format.
var (
	ErrDNSTruncated = errors.New("DNS message truncated before the end of its question")
	ErrDNSMalformed = errors.New("DNS message malformed")
)

// ParseDNSMessage reads the header, the first question and the answer
// section's record types and sizes of the DNS message b into m (Name
// points into m). It allocates nothing and holds nothing of b. A message
// with no question is malformed for this purpose: there is no name to
// judge.
func ParseDNSMessage(m *DNSMessage, b []byte) error {
	m.Name, m.Partial = nil, false
	m.Answers, m.AnswerBytes = [NumDNSAnswerKinds]uint16{}, [NumDNSAnswerKinds]uint32{}
	if len(b) < 12 {
		return ErrDNSTruncated
	}
	m.Response = b[2]&0x80 != 0
	m.RCode = b[3] & 0x0f
	qd, an := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	if qd == 0 {
		return ErrDNSMalformed
	}
	n, off, err := readDNSName(m.name[:0], b, 12)
	if err != nil {
		return err
	}
	if off+4 > len(b) {
		return ErrDNSTruncated
	}
	m.Name = n
	m.QType = binary.BigEndian.Uint16(b[off:])
	off += 4
	// Further questions (none in practice) are skipped to reach the answers.
	for i := uint16(1); i < qd; i++ {
		if off, err = skipDNSName(b, off); err == nil && off+4 > len(b) {
			err = ErrDNSTruncated
		}
		if err != nil {
			m.Partial = err == ErrDNSTruncated
			return dnsPartial(err)
		}
		off += 4
	}
	for i := uint16(0); i < an; i++ {
		if off, err = skipDNSName(b, off); err == nil && off+10 > len(b) {
			err = ErrDNSTruncated
		}
		if err != nil {
			m.Partial = err == ErrDNSTruncated
			return dnsPartial(err)
		}
		t := binary.BigEndian.Uint16(b[off:])
		rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			m.Partial = true
			return nil
		}
		off += rdlen
		k := answerKind(t)
		m.Answers[k]++
		m.AnswerBytes[k] += uint32(rdlen)
	}
	return nil
}

// dnsPartial keeps what was read when the capture cut the answers short,
// and reports a malformed one.
func dnsPartial(err error) error {
	if err == ErrDNSTruncated {
		return nil
	}
	return err
}

// readDNSName appends the dotted text of the name at off to dst and
// returns the offset after it. Compression pointers must point backwards
// (as every encoder writes them), which bounds the walk.
func readDNSName(dst, b []byte, off int) ([]byte, int, error) {
	end := -1 // the offset after the name where it started, once a pointer was followed
	limit := off
	wire := 0
	for {
		if off >= len(b) {
			return dst, 0, ErrDNSTruncated
		}
		l := int(b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return dst, end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return dst, 0, ErrDNSTruncated
			}
			p := int(binary.BigEndian.Uint16(b[off:]) & 0x3fff)
			if p >= limit {
				return dst, 0, ErrDNSMalformed
			}
			if end < 0 {
				end = off + 2
			}
			off, limit = p, p
		case l&0xc0 != 0:
			return dst, 0, ErrDNSMalformed // extended label types (RFC 6891 retired them)
		default:
			if wire += l + 1; wire > dnsMaxName-1 {
				return dst, 0, ErrDNSMalformed
			}
			if off+1+l > len(b) {
				return dst, 0, ErrDNSTruncated
			}
			if len(dst) > 0 {
				dst = append(dst, '.')
			}
			for _, c := range b[off+1 : off+1+l] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				dst = append(dst, c)
			}
			off += 1 + l
		}
	}
}

// skipDNSName returns the offset after the name at off.
func skipDNSName(b []byte, off int) (int, error) {
	for {
		if off >= len(b) {
			return 0, ErrDNSTruncated
		}
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return 0, ErrDNSTruncated
			}
			return off + 2, nil
		case l&0xc0 != 0:
			return 0, ErrDNSMalformed
		}
		off += 1 + l
	}
}

// dnsTap hands one DNS message of a UDP flow to InspectConfig.DNSMessage.
func (in *inspector) dnsTap(r *Record, p *Packet) {
	if in.cfg.DNSMessage == nil || r.Proto != 17 || len(p.Payload) == 0 {
		return
	}
	m := &in.dns.tap
	if err := ParseDNSMessage(m, p.Payload); err != nil {
		return
	}
	m.TS, m.Len = p.TS, int(p.L4Len)
	src, dst := p.SrcAddrPort(), p.DstAddrPort()
	if m.Response {
		m.Client, m.Server = dst, src
	} else {
		m.Client, m.Server = src, dst
	}
	in.cfg.DNSMessage(m)
}
