package feed

import (
	"strings"
	"time"
)

// esxiLine reads one line of an ESXi service log, bare or behind a syslog
// header: hostd, vpxa and the like write
//
//	2021-07-13T14:23:45.123Z info hostd[2099582] [Originator@6876 sub=Vimsvc opID=...] message
//
// and vmkernel writes
//
//	2021-07-13T14:23:45.123Z cpu12:2097590)message
//
// It returns ok false for lines of neither shape.
func esxiLine(line string) (Event, bool) {
	line = strings.TrimSpace(line)
	host := ""
	if strings.HasPrefix(line, "<") {
		// RFC 5424/3164 syslog: <PRI>[VERSION ]TIMESTAMP HOST APP ...
		if i := strings.IndexByte(line, '>'); i > 0 {
			line = strings.TrimLeft(line[i+1:], "1 ")
		}
	}
	sp := strings.IndexByte(line, ' ')
	if sp < 0 {
		return Event{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, line[:sp])
	if err != nil || ts.Year() < 1970 {
		// Year 1 parses (fuzzing found "0001-01-01T0:00:00Z") but is the
		// zero time, which no appliance writes and no join can use.
		return Event{}, false
	}
	rest := strings.TrimSpace(line[sp+1:])
	e := Event{Kind: KindServiceLog, Feed: FeedESXi, Time: ts.UTC(), PID: -1, PPID: -1}
	// A syslog header puts the host name, then "Hostd:" or "vmkernel:".
	if f := strings.Fields(rest); len(f) > 2 && appTag(f[1]) && !strings.ContainsAny(f[0], "()[]") {
		// Fields split on any white space, a tab included: the message
		// starts after the tag wherever it stands, not after two spaces.
		host = f[0]
		after := rest[len(f[0]):]
		rest = strings.TrimSpace(after[strings.Index(after, f[1])+len(f[1]):])
	}
	e.Host = ShortHost(host)
	switch {
	case strings.HasPrefix(rest, "cpu"):
		// vmkernel: cpuN:WORLD)message
		close := strings.IndexByte(rest, ')')
		colon := strings.IndexByte(rest, ':')
		if close < 0 || colon < 0 || colon > close {
			return Event{}, false
		}
		e.Image = "vmkernel"
		e.PID = parseInt(rest[colon+1 : close])
		e.Target = strings.TrimSpace(rest[close+1:])
	default:
		// [level ]name[pid] [...] message
		f := strings.Fields(rest)
		if len(f) == 0 {
			return Event{}, false
		}
		name := f[0]
		switch name {
		case "info", "verbose", "warning", "error", "In(166)", "Wa(164)", "Er(163)", "Db(167)":
			if len(f) < 2 {
				return Event{}, false
			}
			name = f[1]
		}
		open := strings.IndexByte(name, '[')
		if open <= 0 || !strings.HasSuffix(name, "]") {
			return Event{}, false
		}
		e.Image = name[:open]
		e.PID = parseInt(name[open+1 : len(name)-1])
		i := strings.Index(rest, name) + len(name)
		msg := strings.TrimSpace(rest[i:])
		if strings.HasPrefix(msg, "[") {
			if j := strings.IndexByte(msg, ']'); j > 0 {
				msg = strings.TrimSpace(msg[j+1:])
			}
		}
		e.Target = msg
	}
	return e, true
}

// appTag reports a syslog APP-NAME followed by its colon: "Hostd:".
func appTag(s string) bool {
	if len(s) < 2 || s[len(s)-1] != ':' {
		return false
	}
	for i, c := range s[:len(s)-1] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')) {
			return false
		}
	}
	return true
}
