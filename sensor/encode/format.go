package encode

import (
	"fmt"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/record"
)

// Format is how flow records and alerts are written: Outflow's own JSON
// lines, Elastic Common Schema JSON lines, or Zeek's conn.log TSV. The zero
// value is JSON. Every Append method writes exactly one line ending in
// '\n'. ECS and Zeek flow lines allocate nothing once dst has grown;
// alerts, and the processes in Outflow's JSON, go through encoding/json.
type Format uint8

// Formats.
const (
	JSON Format = iota // Outflow's JSON, Zeek's conn.log names where one exists
	ECS                // Elastic Common Schema, nested objects (docs/ecs.md)
	Zeek               // Zeek conn.log, tab-separated; a file starts with Header; flows only
)

var formatNames = [...]string{JSON: "json", ECS: "ecs", Zeek: "zeek"}

// ParseFormat reads a format's name as String writes it: json, ecs or zeek.
func ParseFormat(s string) (Format, error) {
	for f, name := range formatNames {
		if s == name {
			return Format(f), nil
		}
	}
	return JSON, fmt.Errorf("unknown output format %q: the formats are json, ecs and zeek", s)
}

// String is the format's name: json, ecs or zeek.
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// MarshalText writes the format's name, so a Format can be a config key.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads a format's name (ParseFormat).
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// AppendFlow appends r as one line of the format. A Format other than ECS
// and Zeek writes Outflow's JSON.
func (f Format) AppendFlow(dst []byte, r *record.Flow) []byte {
	switch f {
	case ECS:
		return appendECSFlow(dst, r)
	case Zeek:
		return appendZeekConn(dst, r)
	}
	return AppendFlow(dst, r)
}

// CanAlerts reports whether the format has a form for alerts. Zeek's
// conn.log has none (an alert is not a connection), so a caller offering
// an alerts format refuses zeek.
func (f Format) CanAlerts() bool { return f != Zeek }

// AppendAlert appends a as one line of the format: ECS for ECS, Outflow's
// JSON otherwise. Zeek, which has no alert form (CanAlerts), also writes
// Outflow's JSON, so an alert given to it anyway is never lost or mangled
// into a conn.log row.
func (f Format) AppendAlert(dst []byte, a *detect.Alert) []byte {
	if f == ECS {
		return appendECSAlert(dst, a)
	}
	return a.AppendJSON(dst)
}

// Header is what a new file of the format starts with: Zeek's header
// lines, whose #open time is now to the second, in now's location (Zeek
// writes its local time); nil for the formats without one.
func (f Format) Header(now time.Time) []byte {
	if f == Zeek {
		return zeekHeader(now)
	}
	return nil
}

// Trailer is what a file of the format ends with when it is closed: Zeek's
// #close line, with now as in Header; nil for the others. A file cut short
// (a crash) lacks it, as Zeek's own do; readers such as zeek-cut do not
// need it.
func (f Format) Trailer(now time.Time) []byte {
	if f == Zeek {
		return zeekTrailer(now)
	}
	return nil
}
