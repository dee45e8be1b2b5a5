package flows

// ConnState returns Zeek's conn_state for the record.
func (r *Record) ConnState() string {
	os, rs := r.Orig.state, r.Resp.state
	switch r.Proto {
	case 6:
	case 17:
		switch {
		case os != 0 && rs != 0:
			return "SF"
		case os != 0:
			return "S0"
		case rs != 0:
			return "SHR"
		}
		return "OTH"
	default:
		return "OTH"
	}
	oInactive := os == tcpInactive || os == tcpPartial
	rInactive := rs == tcpInactive || rs == tcpPartial
	switch {
	case rs == tcpReset:
		if os == tcpSynSent || os == tcpSynAckSent || (os == tcpReset && tcpSize(&r.Orig, &r.Resp) == 0 && tcpSize(&r.Resp, &r.Orig) == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == tcpReset:
		if rInactive {
			if r.rstBeforeHandshake() {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == tcpClosed && os == tcpClosed:
		return "SF"
	case os == tcpClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == tcpClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == tcpSynSent && rs == tcpInactive:
		return "S0"
	case os == tcpEstablished && rs == tcpEstablished:
		return "S1"
	}
	return "OTH"
}

// rstBeforeHandshake matches Zeek's /^\^?S[^HAFGIQ]*R.*/ on the history.
func (r *Record) rstBeforeHandshake() bool {
	h := r.History()
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for _, c := range h[1:] {
		switch c {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
