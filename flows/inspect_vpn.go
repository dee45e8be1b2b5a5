package flows

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
