package encode

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
)

// Zeek's conn.log as its ASCII writer writes it with the default settings
// (LogAscii::separator \t, set_separator ",", empty_field "(empty)",
// unset_field "-", enable_utf_8 T) and the columns of Conn::Info in Zeek
// 7.1 and later (ip_proto last), as in the baselines under
// shared/testdata/zeek. docs/zeek-accounting.md says how each number is
// counted; this file only writes them.

// zeekFields and zeekTypes are the #fields and #types lines' columns.
var (
	zeekFields = []string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
		"duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
		"orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents", "ip_proto"}
	zeekTypes = []string{"time", "string", "addr", "port", "addr", "port", "enum", "string",
		"interval", "count", "count", "string", "bool", "bool", "count", "string",
		"count", "count", "count", "count", "set[string]", "count"}
)

const (
	zeekUnset = "-"
	zeekEmpty = "(empty)"
	// zeekOpenLayout is Zeek's #open and #close time (strftime
	// "%Y-%m-%d-%H-%M-%S" of the local time).
	zeekOpenLayout = "2006-01-02-15-04-05"
)

func zeekHeader(now time.Time) []byte {
	b := make([]byte, 0, 512)
	// The separator line alone uses a space: its value is the separator.
	b = append(b, "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t"...)
	b = now.AppendFormat(b, zeekOpenLayout)
	b = append(b, "\n#fields"...)
	for _, f := range zeekFields {
		b = append(b, '\t')
		b = append(b, f...)
	}
	b = append(b, "\n#types"...)
	for _, t := range zeekTypes {
		b = append(b, '\t')
		b = append(b, t...)
	}
	return append(b, '\n')
}

func zeekTrailer(now time.Time) []byte {
	b := append([]byte("#close\t"), now.AppendFormat(nil, zeekOpenLayout)...)
	return append(b, '\n')
}

// appendZeekConn appends f as one conn.log row. Zeek logs a connection
// once, when it ends; an interim record (Final false) is written all the
// same, with the counts so far, and the next record of the flow repeats its
// uid. Where Outflow does not know a column, it is unset ("-"), never a
// guess: see each column below.
func appendZeekConn(dst []byte, f *record.Flow) []byte {
	// Zeek holds times as doubles of pcap's microseconds, and sets
	// duration and the byte counts only when duration > 0.
	startUS, endUS := roundMicros(f.Start), roundMicros(f.End)
	dur := endUS - startUS

	dst = appendMicros(dst, startUS)
	dst = append(dst, '\t')
	dst = appendZeekUID(dst, f)
	dst = append(dst, '\t')
	// Zeek holds every IPv4 address as IPv4-mapped and prints it as IPv4.
	dst = f.Orig.Addr().Unmap().AppendTo(dst)
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, uint64(f.Orig.Port()), 10)
	dst = append(dst, '\t')
	dst = f.Resp.Addr().Unmap().AppendTo(dst)
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, uint64(f.Resp.Port()), 10)
	dst = append(dst, '\t')
	dst = append(dst, zeekProto(f.Proto)...)
	dst = append(dst, '\t')
	if s := zeekService(f); s != "" {
		dst = append(dst, s...)
	} else {
		dst = append(dst, zeekUnset...)
	}
	dst = append(dst, '\t')
	if dur > 0 {
		dst = appendMicros(dst, dur)
	} else {
		dst = append(dst, zeekUnset...)
	}
	// Payload bytes need the packets: records from router exports have
	// none, so theirs are unset.
	if dur > 0 && f.Observed {
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, f.OrigBytes, 10)
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, f.RespBytes, 10)
	} else {
		dst = append(dst, "\t-\t-"...)
	}
	dst = append(dst, '\t')
	dst = appendZeekConnState(dst, f)
	// Zeek fills local_orig and local_resp from Site::local_nets (the
	// private ranges by default); Outflow's home networks play that part,
	// and its direction says which ends lie in them.
	dst = append(dst, '\t')
	dst = appendZeekBool(dst, f.Direction == record.Outbound || f.Direction == record.Internal)
	dst = append(dst, '\t')
	dst = appendZeekBool(dst, f.Direction == record.Inbound || f.Direction == record.Internal)
	dst = append(dst, '\t')
	if f.Observed {
		dst = strconv.AppendUint(dst, f.MissedBytes, 10)
	} else {
		dst = append(dst, zeekUnset...)
	}
	dst = append(dst, '\t')
	if h := f.History.Bytes(); f.Observed && len(h) > 0 {
		dst = appendZeekString(dst, h)
	} else {
		dst = append(dst, zeekUnset...) // Zeek leaves an empty history unset
	}
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, f.OrigPkts, 10)
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, f.OrigIPBytes, 10)
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, f.RespPkts, 10)
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, f.RespIPBytes, 10)
	// tunnel_parents holds the uids of the encapsulating connections. The
	// record says which kind of tunnel carried it (f.Tunnel) but not the
	// outer endpoints, so the outer row's uid cannot be named: unset, as
	// for a flow that came in no tunnel.
	dst = append(dst, "\t-\t"...)
	dst = strconv.AppendUint(dst, uint64(f.Proto), 10)
	return append(dst, '\n')
}

// roundMicros is ns rounded to the nearest microsecond (floor for the
// negative), what a pcap timestamp Zeek reads holds.
func roundMicros(ns int64) int64 {
	us := ns / 1000
	r := ns % 1000
	if r < 0 {
		r += 1000
		us--
	}
	if r >= 500 {
		us++
	}
	return us
}

// appendMicros writes microseconds as seconds with six decimals, Zeek's
// rendering of time and interval (trailing zeros kept).
func appendMicros(dst []byte, us int64) []byte {
	if us < 0 {
		dst = append(dst, '-')
		us = -us
	}
	dst = strconv.AppendUint(dst, uint64(us/1e6), 10)
	dst = append(dst, '.')
	return appendDigits(dst, uint64(us%1e6), 6)
}

// zeekProto is Zeek's transport_proto name: ICMPv6 is icmp too, and since
// Zeek 7.1 a connection of another IP protocol is unknown_transport (with
// ip_proto saying which).
func zeekProto(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1, 58:
		return "icmp"
	}
	return "unknown_transport"
}

// zeekService is the service column as Zeek's analyzers name what
// inspection recognised: TLS is ssl, and Zeek's QUIC analyzer runs its SSL
// analyzer on the handshake, so QUIC is "quic,ssl". OpenVPN and WireGuard
// are the names of the Zeek packages that detect them. "" when inspection
// recognised nothing, or did not run: a STARTTLS flow's cleartext protocol
// (Zeek's "imap,ssl") is not known, only its ssl.
func zeekService(f *record.Flow) string {
	if f.Inspection == nil {
		return ""
	}
	switch f.Inspection.App {
	case flows.AppTLS:
		return "ssl"
	case flows.AppQUIC:
		return "quic,ssl"
	case flows.AppHTTP:
		return "http"
	case flows.AppDNS:
		return "dns"
	case flows.AppSSH:
		return "ssh"
	case flows.AppOpenVPN:
		return "openvpn"
	case flows.AppWireGuard:
		return "wireguard"
	}
	return ""
}

// appendZeekConnState writes Zeek's conn_state (Conn::conn_state). For a
// captured flow the flow table has already derived it from each
// endpoint's TCP state, as Zeek does (f.State); that needs more than the
// history letters (S1 and SF differ in state, not always in letters), so
// it is not derived again here. A record from router exports carries no
// endpoint state; what Zeek's definition still allows:
//   - UDP: Zeek's endpoint is active once it sent a packet, so SF (both
//     sent), S0 (only the originator), SHR (only the responder), else OTH;
//   - neither TCP nor UDP: always OTH;
//   - TCP: unset, as the exports' cumulative flags (which the record does
//     not keep) could not say in which order SYN, FIN and RST came.
func appendZeekConnState(dst []byte, f *record.Flow) []byte {
	if f.Observed && f.State != "" {
		return appendZeekString(dst, f.State)
	}
	switch f.Proto {
	case 6:
		return append(dst, zeekUnset...)
	case 17:
		switch {
		case f.OrigPkts > 0 && f.RespPkts > 0:
			return append(dst, "SF"...)
		case f.OrigPkts > 0:
			return append(dst, "S0"...)
		case f.RespPkts > 0:
			return append(dst, "SHR"...)
		}
	}
	return append(dst, "OTH"...)
}

func appendZeekBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 'T')
	}
	return append(dst, 'F')
}

// appendZeekString writes a string value as Zeek's ASCII writer does with
// UTF-8 enabled: "" is the empty marker; a value equal to the unset or the
// empty marker has its first byte escaped, so a reader tells them apart;
// the backslash, the separator and every byte that is neither printable
// ASCII nor part of a valid UTF-8 sequence becomes \xNN (lower-case hex).
func appendZeekString[S string | []byte](dst []byte, s S) []byte {
	if len(s) == 0 {
		return append(dst, zeekEmpty...)
	}
	if string(s) == zeekUnset || string(s) == zeekEmpty {
		dst = appendHexEscape(dst, s[0])
		return append(dst, s[1:]...)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			var b [utf8.UTFMax]byte
			r, n := utf8.DecodeRune(b[:copy(b[:], s[i:])])
			if r != utf8.RuneError || n > 1 {
				dst = append(dst, s[i:i+n]...)
				i += n
				continue
			}
		}
		dst = appendHexEscape(dst, c)
		i++
	}
	return dst
}

func appendHexEscape(dst []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
}

// base62 holds the digits of the uid: letters and numbers, as in Zeek's.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// appendZeekUID writes a uid shaped like Zeek's connection uids: "C" and
// 96 bits in base 62, a 32-bit then a 64-bit word, as Zeek's UID::Base62
// writes them (up to 18 characters). Zeek draws its bits at random; these
// are the first 96 bits of SHA-256 over the protocol, both endpoints
// (16-byte addresses, big-endian ports) and the start in nanoseconds, so
// a flow keeps its uid across interim records, replays and sensors, and
// two connections on one 5-tuple at different times get different uids.
// The Community ID alone would not tell those two apart.
func appendZeekUID(dst []byte, f *record.Flow) []byte {
	var in [16 + 2 + 16 + 2 + 1 + 8]byte
	o, r := f.Orig.Addr().As16(), f.Resp.Addr().As16()
	copy(in[0:16], o[:])
	binary.BigEndian.PutUint16(in[16:], f.Orig.Port())
	copy(in[18:34], r[:])
	binary.BigEndian.PutUint16(in[34:], f.Resp.Port())
	in[36] = f.Proto
	binary.BigEndian.PutUint64(in[37:], uint64(f.Start))
	sum := sha256.Sum256(in[:])
	dst = append(dst, 'C')
	dst = appendBase62(dst, uint64(binary.BigEndian.Uint32(sum[0:4])))
	return appendBase62(dst, binary.BigEndian.Uint64(sum[4:12]))
}

func appendBase62(dst []byte, v uint64) []byte {
	for {
		dst = append(dst, base62[v%62])
		v /= 62
		if v == 0 {
			return dst
		}
	}
}
