package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/outflow-sensor/outflow/detect"
)

// The wire format of an observation, version 1 (docs/fleet.md has the
// table). A record's value is:
//
//	version  1 byte, 1
//	kind     1 byte: 1 prevalence, 2 upload total, 3 large upload
//	sensor   string: the sensor that made it
//	then by kind:
//	1  dest string, host hash 8 bytes little-endian, first varint, time varint
//	2  host string, peer group string, day varint, bytes uvarint
//	3  host string, time varint
//
// A string is a uvarint length and that many bytes of UTF-8; a varint is
// Go's encoding/binary zig-zag varint; times are Unix nanoseconds, days
// are days since 1970-01-01 UTC. Bytes after the last field are ignored:
// version 1 may grow fields at its end, a change that old readers cannot
// skip takes version 2.

// Version is the wire format's version this package writes and reads.
const Version = 1

// Bounds of what a decoded observation may hold.
const (
	maxSensorID = 128
	maxName     = 255 // a destination, a host address or a peer group name
	maxDay      = 1 << 20
)

// Errors a message is refused with; a *DecodeError wraps one of them.
var (
	// ErrTruncated: the message ends inside a field.
	ErrTruncated = errors.New("cut short")
	// ErrMalformed: a field holds what no sensor writes.
	ErrMalformed = errors.New("malformed")
	// ErrVersion: a version this sensor does not read (a newer sensor's).
	ErrVersion = errors.New("unknown version")
)

// DecodeError is why a message was refused and where.
type DecodeError struct {
	Offset int    // the byte at which the problem lies
	Field  string // the field being read
	Err    error  // ErrTruncated, ErrMalformed or ErrVersion
	Detail string // what was wrong, when malformed
}

func (e *DecodeError) Error() string {
	s := fmt.Sprintf("fleet observation: %s at offset %d (%s)", e.Err, e.Offset, e.Field)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns ErrTruncated, ErrMalformed or ErrVersion.
func (e *DecodeError) Unwrap() error { return e.Err }

// Append appends o's wire form, as made by sensor, to dst.
func Append(dst []byte, sensor string, o *detect.Observation) []byte {
	dst = append(dst, Version, byte(o.Kind))
	dst = appendStr(dst, sensor)
	switch o.Kind {
	case detect.ObsPrevalence:
		dst = appendStr(dst, o.Dest)
		dst = binary.LittleEndian.AppendUint64(dst, o.HostHash)
		dst = binary.AppendVarint(dst, unixNano(o.First))
		dst = binary.AppendVarint(dst, unixNano(o.Time))
	case detect.ObsUpload:
		dst = appendStr(dst, o.Host)
		dst = appendStr(dst, o.PeerGroup)
		dst = binary.AppendVarint(dst, o.Day)
		dst = binary.AppendUvarint(dst, o.Bytes)
	case detect.ObsFirstUpload:
		dst = appendStr(dst, o.Host)
		dst = binary.AppendVarint(dst, unixNano(o.Time))
	}
	return dst
}

// AppendKey appends o's record key to dst. The key names what the value
// is the latest of, so a compacted topic keeps one record per key: a
// sensor's host and destination (prevalence), a sensor's host and day
// (upload totals), a sensor's host (large uploads). A sensor ID holds no
// '|' (Config.check), so keys of different things never meet.
func AppendKey(dst []byte, sensor string, o *detect.Observation) []byte {
	switch o.Kind {
	case detect.ObsPrevalence:
		dst = append(dst, "p|"...)
		dst = append(dst, sensor...)
		dst = append(dst, '|')
		dst = strconv.AppendUint(dst, o.HostHash, 16)
		dst = append(dst, '|')
		dst = append(dst, o.Dest...)
	case detect.ObsUpload:
		dst = append(dst, "u|"...)
		dst = append(dst, sensor...)
		dst = append(dst, '|')
		dst = strconv.AppendInt(dst, o.Day, 10)
		dst = append(dst, '|')
		dst = append(dst, o.Host...)
	default:
		dst = append(dst, "f|"...)
		dst = append(dst, sensor...)
		dst = append(dst, '|')
		dst = append(dst, o.Host...)
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Decode reads a message into o, which it overwrites whole. A message
// that is cut short, malformed or of another version gives a
// *DecodeError and leaves o undefined.
func Decode(b []byte, o *detect.Observation) error {
	*o = detect.Observation{}
	d := decoder{b: b}
	if len(b) < 1 {
		return d.fail("version", ErrTruncated, "")
	}
	if b[0] != Version {
		return d.fail("version", ErrVersion, fmt.Sprintf("version %d; this sensor reads %d", b[0], Version))
	}
	d.off = 1
	if len(b) < 2 {
		return d.fail("kind", ErrTruncated, "")
	}
	o.Kind = detect.ObservationKind(b[1])
	d.off = 2
	o.Sensor = d.str("sensor", 1, maxSensorID)
	switch o.Kind {
	case detect.ObsPrevalence:
		o.Dest = d.str("dest", 1, maxName)
		o.HostHash = d.u64le("host hash")
		o.First = d.time("first", true)
		o.Time = d.time("time", false)
	case detect.ObsUpload:
		o.Host = d.addr("host")
		o.PeerGroup = d.str("peer group", 0, maxName)
		o.Day = d.varint("day")
		if d.err == nil && (o.Day <= 0 || o.Day > maxDay) {
			d.malformed("day", fmt.Sprintf("day %d is not a date", o.Day))
		}
		o.Bytes = d.uvarint("bytes")
	case detect.ObsFirstUpload:
		o.Host = d.addr("host")
		o.Time = d.time("time", false)
	default:
		return d.fail("kind", ErrMalformed, fmt.Sprintf("kind %d", b[1]))
	}
	return d.err
}

// decoder is a bounds-checked cursor over one message; its first error
// sticks and later reads return zero values.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(field string, err error, detail string) error {
	if d.err == nil {
		d.err = &DecodeError{Offset: d.off, Field: field, Err: err, Detail: detail}
	}
	return d.err
}

func (d *decoder) malformed(field, detail string) { d.fail(field, ErrMalformed, detail) }

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.fail(field, ErrTruncated, "")
		return 0
	case n < 0:
		d.malformed(field, "varint overflows 64 bits")
		return 0
	}
	d.off += n
	return v
}

// varint is a zigzag-encoded signed varint, as binary.Varint reads it.
func (d *decoder) varint(field string) int64 {
	u := d.uvarint(field)
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) u64le(field string) uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail(field, ErrTruncated, "")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// str reads a string of min to max bytes of UTF-8 without control
// characters (they end up in alert titles and logs).
func (d *decoder) str(field string, min, max int) string {
	at := d.off
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n < uint64(min) || n > uint64(max) {
		d.off = at
		d.malformed(field, fmt.Sprintf("%d bytes, want %d to %d", n, min, max))
		return ""
	}
	if uint64(len(d.b)-d.off) < n {
		d.fail(field, ErrTruncated, "")
		return ""
	}
	s := d.b[d.off : d.off+int(n)]
	if !utf8.Valid(s) {
		d.malformed(field, "not UTF-8")
		return ""
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			d.malformed(field, "a control character")
			return ""
		}
	}
	d.off += int(n)
	return string(s)
}

// addr reads a host: an IP address in its usual text form.
func (d *decoder) addr(field string) string {
	at := d.off
	s := d.str(field, 1, maxName)
	if d.err != nil {
		return ""
	}
	if a, err := netip.ParseAddr(s); err != nil || a.String() != s || a.Is4In6() {
		d.off = at
		d.malformed(field, fmt.Sprintf("%q is not an IP address as sensors write it", s))
		return ""
	}
	return s
}

// time reads Unix nanoseconds; zero is "unknown" where zeroOK, and
// before 1970 is refused.
func (d *decoder) time(field string, zeroOK bool) time.Time {
	at := d.off
	ns := d.varint(field)
	if d.err != nil {
		return time.Time{}
	}
	if ns < 0 || ns == 0 && !zeroOK {
		d.off = at
		d.malformed(field, fmt.Sprintf("%d is not a time", ns))
		return time.Time{}
	}
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
