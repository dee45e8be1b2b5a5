package flows

import "github.com/outflow-sensor/outflow/tls"

// helloBytes gathers the first handshake message of a direction.
func (in *inspector) helloBytes(s *Inspection, d int, data []byte) []byte {
	w, ds := s.work, &s.work.dir[d]
	src := data
	gathered := len(w.acc[d]) > 0
	take := min(len(data), in.cfg.StreamBytes-len(w.acc[d]))
	if gathered {
		if !in.gather(s, d, data[:take]) {
			return nil
		}
		src = w.acc[d]
	}
	msg, used, st, err := tls.FirstHandshake(src, in.scratch[:0])
	switch st {
	case tls.NeedMore:
		if !gathered && !in.gather(s, d, data[:take]) {
			return nil
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

// parseHello parses one handshake message and records what it says.
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
