package syslog

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The longest header fields RFC 5424 (section 6) allows, in bytes.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
)

// Message is one RFC 5424 message. Its header fields are free text here:
// AppendMessage makes them what the RFC allows.
type Message struct {
	Facility Facility
	Severity Severity
	Time     time.Time
	Hostname string
	AppName  string
	ProcID   string
	MsgID    string
	// Msg is the message itself, sent as it is: RFC 5424 lets MSG be any
	// octets (MSG-ANY), so a JSON line goes without the BOM that would
	// mark it as UTF-8 and without any escaping.
	Msg []byte
}

// AppendMessage appends m as an RFC 5424 message to dst:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG
//
// with no structured data. A header field keeps only printable US-ASCII
// (a space or any other character becomes '_', one per character) and is
// cut at the RFC's length; an empty one is the NILVALUE "-". The time is
// UTC with microseconds, the precision RFC 5424 allows at most; a time
// outside years 0-9999 is "-". A facility or severity out of range is
// local0 or info, so whatever m holds, the result is a valid message.
func AppendMessage(dst []byte, m Message) []byte {
	dst = appendPrefix(dst, m.Facility, m.Severity, m.Time)
	dst = appendHeaderTail(dst, m.Hostname, m.AppName, m.ProcID, m.MsgID)
	return append(dst, m.Msg...)
}

// AppendFrame appends msg framed by octet counting (RFC 6587 section
// 3.4.1, which RFC 5425 uses over TLS too): its length in decimal, a
// space, and msg. The receiver reads exactly that many bytes, so the
// message may hold any byte, newlines included.
func AppendFrame(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

// appendPrefix appends "<PRI>1 TIMESTAMP", the part of a header that
// changes from message to message.
func appendPrefix(dst []byte, f Facility, s Severity, t time.Time) []byte {
	if f < Kern || f > Local7 {
		f = Local0
	}
	if s < Emergency || s > Debug {
		s = Info
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(f)*8+int64(s), 10)
	dst = append(dst, ">1 "...)
	return appendTimestamp(dst, t)
}

// appendTimestamp appends t as RFC 5424's TIMESTAMP: RFC 3339 in UTC with
// six fractional digits, or "-" when the year has no four digits.
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if t.IsZero() || t.Year() < 0 || t.Year() > 9999 {
		return append(dst, '-')
	}
	return t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
}

// appendHeaderTail appends " HOSTNAME APP-NAME PROCID MSGID - ", the part
// of a header a transport computes once.
func appendHeaderTail(dst []byte, hostname, appName, procID, msgID string) []byte {
	dst = append(dst, ' ')
	dst = appendField(dst, hostname, maxHostname)
	dst = append(dst, ' ')
	dst = appendField(dst, appName, maxAppName)
	dst = append(dst, ' ')
	dst = appendField(dst, procID, maxProcID)
	dst = append(dst, ' ')
	dst = appendField(dst, msgID, maxMsgID)
	return append(dst, " - "...)
}

// appendField appends s as a header field of at most max printable
// US-ASCII bytes (33-126): each other character, or each byte of invalid
// UTF-8, becomes one '_'. Empty is "-".
func appendField(dst []byte, s string, max int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	n := 0
	for i := 0; i < len(s) && n < max; n++ {
		c := s[i]
		if c >= 33 && c <= 126 {
			dst = append(dst, c)
			i++
			continue
		}
		dst = append(dst, '_')
		if c < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return dst
}
