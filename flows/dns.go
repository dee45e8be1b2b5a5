package flows

import (
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// dnsParser decodes DNS messages with gopacket's DNS layer, reused so that a
// steady stream of answers allocates only the names it keeps.
type dnsParser struct {
	msg layers.DNS
}

func (in *inspector) dnsMessage(r *Record, s *Inspection, d int, p *Packet, b []byte) {
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
