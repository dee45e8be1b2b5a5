package flows

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
