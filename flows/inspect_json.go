package flows

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/outflow-sensor/outflow/tls"
)

// ServerName is the best name for the responder: TLS SNI, else QUIC SNI,
// else the HTTP Host, else the DNS name the client resolved (Resolved).
func (s *Inspection) ServerName() string {
	switch {
	case s.TLS != nil && s.TLS.SNI != "":
		return s.TLS.SNI
	case s.QUIC != nil && s.QUIC.SNI != "":
		return s.QUIC.SNI
	case s.HTTP != nil && s.HTTP.Host != "":
		return s.HTTP.Host
	}
	return s.Resolved
}

// RequestBodyBytes is the first HTTP request's body size: its Content-Length,
// else what the originator sent after the header. -1 when not HTTP.
func (s *Inspection) RequestBodyBytes(r *Record) int64 {
	if s.HTTP == nil || !s.HTTP.seen {
		return -1
	}
	if s.HTTP.ContentLength >= 0 {
		return s.HTTP.ContentLength
	}
	ob := r.OrigBytes()
	if ob < s.HTTP.headerEnd {
		return 0
	}
	return int64(ob - s.HTTP.headerEnd)
}

// AppendJSON appends what inspection learnt as keys of a flow record's JSON
// object, each with its leading comma: app_proto, server_name, and the tls,
// quic, http, dns and entropy objects. httpBody is the first request's
// body size (RequestBodyBytes), which needs the record's byte counts. The
// record's own keys are the encoder's (sensor/encode); these nested
// objects are written here, beside the types they render.
func (s *Inspection) AppendJSON(dst []byte, httpBody int64) []byte {
	dst = append(dst, `,"app_proto":"`...)
	dst = append(dst, s.App.String()...)
	dst = append(dst, '"')
	if name := s.ServerName(); name != "" {
		dst = append(dst, `,"server_name":`...)
		dst = AppendJSONString(dst, name)
	}
	if t := s.TLS; t != nil && (t.ClientHello || t.ServerHello) {
		dst = append(dst, `,"tls":{"client_hello":`...)
		dst = strconv.AppendBool(dst, t.ClientHello)
		dst = append(dst, `,"server_hello":`...)
		dst = strconv.AppendBool(dst, t.ServerHello)
		dst = append(dst, `,"established":`...)
		dst = strconv.AppendBool(dst, t.Established())
		if t.StartTLS {
			dst = append(dst, `,"starttls":true`...)
		}
		if t.ServerHello {
			dst = append(dst, `,"version":"`...)
			dst = append(dst, tls.VersionName(t.Version)...)
			dst = append(dst, `","cipher":"`...)
			dst = append(dst, tls.CipherName(t.Cipher)...)
			dst = append(dst, '"')
		}
		if t.SNI != "" {
			dst = append(dst, `,"sni":`...)
			dst = AppendJSONString(dst, t.SNI)
		}
		if len(t.ALPN) > 0 {
			dst = append(dst, `,"alpn":`...)
			dst = appendStrings(dst, t.ALPN)
		}
		if t.ClientHello {
			dst = append(dst, `,"ja3":"`...)
			dst = append(dst, t.JA3...)
			dst = append(dst, `","ja3_string":"`...)
			dst = append(dst, t.JA3String...)
			dst = append(dst, `","ja4":"`...)
			dst = append(dst, t.JA4...)
			dst = append(dst, '"')
		}
		if t.ServerHello {
			dst = append(dst, `,"ja3s":"`...)
			dst = append(dst, t.JA3S...)
			dst = append(dst, `","ja3s_string":"`...)
			dst = append(dst, t.JA3SStr...)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	if q := s.QUIC; q != nil && q.Version != 0 {
		dst = append(dst, `,"quic":{"version":"`...)
		dst = appendQUICVersion(dst, q.Version)
		dst = append(dst, '"')
		if q.SNI != "" {
			dst = append(dst, `,"sni":`...)
			dst = AppendJSONString(dst, q.SNI)
		}
		if len(q.ALPN) > 0 {
			dst = append(dst, `,"alpn":`...)
			dst = appendStrings(dst, q.ALPN)
		}
		if q.JA4 != "" {
			dst = append(dst, `,"ja4":"`...)
			dst = append(dst, q.JA4...)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	if h := s.HTTP; h != nil && h.seen {
		dst = append(dst, `,"http":{"method":`...)
		dst = AppendJSONString(dst, h.Method)
		if h.Host != "" {
			dst = append(dst, `,"host":`...)
			dst = AppendJSONString(dst, h.Host)
		}
		dst = append(dst, `,"request_body_bytes":`...)
		dst = strconv.AppendInt(dst, httpBody, 10)
		dst = append(dst, '}')
	}
	if q := s.DNS; q != nil && q.Query != "" {
		dst = append(dst, `,"dns":{"query":`...)
		dst = AppendJSONString(dst, q.Query)
		dst = appendUintKey(dst, "qtype", uint64(q.QType))
		if q.Response {
			dst = appendUintKey(dst, "rcode", uint64(q.RCode))
			dst = append(dst, `,"answers":`...)
			dst = appendStrings(dst, q.Answers)
		}
		dst = append(dst, '}')
	}
	if s.Entropy[0].N > 0 || s.Entropy[1].N > 0 {
		dst = append(dst, `,"entropy":{`...)
		sep := false
		for d, name := range [2]string{"orig", "resp"} {
			e := &s.Entropy[d]
			if e.N == 0 {
				continue
			}
			if sep {
				dst = append(dst, ',')
			}
			sep = true
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, `":{"bits":`...)
			dst = appendFixed(dst, e.Bits, 4)
			dst = append(dst, `,"n":`...)
			dst = strconv.AppendInt(dst, int64(e.N), 10)
			dst = append(dst, `,"chi2":`...)
			dst = appendFixed(dst, e.Chi2, 1)
			dst = append(dst, '}')
		}
		dst = append(dst, `},"payload_class":{`...)
		sep = false
		for d, name := range [2]string{"orig", "resp"} {
			e := &s.Entropy[d]
			if e.N == 0 {
				continue
			}
			if sep {
				dst = append(dst, ',')
			}
			sep = true
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, `":"`...)
			dst = append(dst, e.Class.String()...)
			dst = append(dst, '"')
		}
		dst = append(dst, `},"payload_class_reason":{`...)
		sep = false
		for d, name := range [2]string{"orig", "resp"} {
			if e := &s.Entropy[d]; e.N > 0 {
				if sep {
					dst = append(dst, ',')
				}
				sep = true
				dst = append(dst, '"')
				dst = append(dst, name...)
				dst = append(dst, `":"`...)
				dst = append(dst, e.Reason.String()...)
				dst = append(dst, '"')
			}
		}
		dst = append(dst, '}')
	}
	return dst
}

func appendQUICVersion(dst []byte, v uint32) []byte {
	switch v {
	case 1:
		return append(dst, "1"...)
	case 0x6b3343cf:
		return append(dst, "2"...)
	}
	dst = append(dst, "0x"...)
	return strconv.AppendUint(dst, uint64(v), 16)
}

func appendStrings(dst []byte, list []string) []byte {
	dst = append(dst, '[')
	for i, v := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, v)
	}
	return append(dst, ']')
}

// AppendJSONString quotes s for JSON. Names come off the wire and out of
// host logs, so control characters are escaped and invalid UTF-8 becomes
// U+FFFD rather than breaking the line for the reader. The sinks' encoders
// (sensor/encode) write their strings with it too.
func AppendJSONString[S string | []byte](dst []byte, s S) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		var b [utf8.UTFMax]byte
		r, n := utf8.DecodeRune(b[:copy(b[:], s[i:])])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

var pow10 = [...]float64{1, 10, 100, 1000, 10000}

// appendFixed writes v with the given decimals (at most 4), as
// strconv.AppendFloat(dst, v, 'f', decimals, 64) would but for the last digit
// of a value halfway between two: shortest-path formatting of two floats a
// record was a third of the exporter's time on short flows.
func appendFixed(dst []byte, v float64, decimals int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= 1e14 {
		return strconv.AppendFloat(dst, v, 'f', decimals, 64)
	}
	n := int64(math.Round(v * pow10[decimals]))
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	scale := int64(pow10[decimals])
	dst = strconv.AppendInt(dst, n/scale, 10)
	if decimals == 0 {
		return dst
	}
	dst = append(dst, '.')
	frac := n % scale
	for d := scale / 10; d > 0; d /= 10 {
		dst = append(dst, byte('0'+frac/d))
		frac %= d
	}
	return dst
}

func appendUintKey(dst []byte, key string, v uint64) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return strconv.AppendUint(dst, v, 10)
}
