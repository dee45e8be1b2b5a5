package feed

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Sockaddr is a socket address as the kernel's audit SOCKADDR record
// carries it, in hex.
type Sockaddr struct {
	Family string // "ipv4", "ipv6", "unix", "netlink", or the number
	Addr   netip.Addr
	Port   uint16
	Path   string // unix sockets
}

// DecodeSockaddr reads a SOCKADDR record's saddr: the struct sockaddr the
// syscall passed, family in host (little-endian) order, port and address
// in network order.
func DecodeSockaddr(saddr string) (Sockaddr, error) {
	b, err := hex.DecodeString(saddr)
	if err != nil {
		return Sockaddr{}, fmt.Errorf("saddr: %w", err)
	}
	if len(b) < 2 {
		return Sockaddr{}, errors.New("saddr shorter than its family")
	}
	switch fam := binary.LittleEndian.Uint16(b); fam {
	case 2: // AF_INET
		if len(b) < 8 {
			return Sockaddr{}, errors.New("short sockaddr_in")
		}
		return Sockaddr{Family: "ipv4", Port: binary.BigEndian.Uint16(b[2:]), Addr: netip.AddrFrom4([4]byte(b[4:8]))}, nil
	case 10: // AF_INET6
		if len(b) < 24 {
			return Sockaddr{}, errors.New("short sockaddr_in6")
		}
		return Sockaddr{Family: "ipv6", Port: binary.BigEndian.Uint16(b[2:]), Addr: netip.AddrFrom16([16]byte(b[8:24])).Unmap()}, nil
	case 1: // AF_UNIX
		p := b[2:]
		if i := bytes.IndexByte(p, 0); i >= 0 {
			p = p[:i]
		}
		return Sockaddr{Family: "unix", Path: string(p)}, nil
	case 16:
		return Sockaddr{Family: "netlink"}, nil
	default:
		return Sockaddr{Family: strconv.Itoa(int(fam))}, nil
	}
}

// auditFields splits an audit record's key=value pairs. Values are bare,
// "quoted", or [bracketed] (AUOMS arrays); a msg='...' holds more pairs.
func auditFields(s string) map[string]string {
	m := map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		key := s[:eq]
		if sp := strings.LastIndexByte(key, ' '); sp >= 0 {
			key = key[sp+1:]
		}
		s = s[eq+1:]
		var val string
		switch {
		case strings.HasPrefix(s, `"`):
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				val, s = s[1:], ""
			} else {
				val, s = s[1:end+1], s[end+2:]
			}
		case strings.HasPrefix(s, "'"):
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				val, s = s[1:], ""
			} else {
				val, s = s[1:end+1], s[end+2:]
			}
			for k, v := range auditFields(val) {
				if _, ok := m[k]; !ok {
					m[k] = v
				}
			}
		case strings.HasPrefix(s, "["):
			end := strings.IndexByte(s, ']')
			if end < 0 {
				val, s = s, ""
			} else {
				val, s = s[:end+1], s[end+1:]
			}
		default:
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				val, s = s, ""
			} else {
				val, s = s[:end], s[end:]
			}
		}
		m[key] = val
	}
	return m
}

// auditHeader reads "type=T msg=audit(SECS.MS:SERIAL): rest".
func auditHeader(line string) (typ string, ts time.Time, serial uint64, rest string, err error) {
	i := strings.Index(line, "type=")
	if i < 0 {
		return "", ts, 0, "", errors.New("no type=")
	}
	line = line[i+5:]
	sp := strings.IndexByte(line, ' ')
	if sp < 0 {
		return "", ts, 0, "", errors.New("no msg=audit(")
	}
	typ, line = line[:sp], line[sp+1:]
	a := strings.Index(line, "audit(")
	e := strings.Index(line, "):")
	if a < 0 || e < a {
		return "", ts, 0, "", errors.New("no msg=audit(...)")
	}
	stamp := line[a+6 : e]
	rest = strings.TrimSpace(line[e+2:])
	colon := strings.IndexByte(stamp, ':')
	if colon < 0 {
		return "", ts, 0, "", fmt.Errorf("audit stamp %q", stamp)
	}
	serial, err = strconv.ParseUint(stamp[colon+1:], 10, 64)
	if err != nil {
		return "", ts, 0, "", fmt.Errorf("audit serial %q", stamp[colon+1:])
	}
	secs, err := strconv.ParseFloat(stamp[:colon], 64)
	if err != nil {
		return "", ts, 0, "", fmt.Errorf("audit time %q", stamp[:colon])
	}
	ts = time.UnixMilli(int64(secs*1000 + 0.5)).UTC()
	return typ, ts, serial, rest, nil
}

// unhexArg undoes the kernel's hex encoding of values with spaces or
// special characters (exe, EXECVE arguments, PROCTITLE).
func unhexArg(v string) string {
	if len(v) < 2 || len(v)%2 != 0 {
		return v
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return v
		}
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return v
	}
	return string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
}

// Linux x86-64 syscall numbers the join needs; aarch64 in the second set.
var (
	connectCalls = map[string]bool{"42": true, "203": true, "connect": true}
	acceptCalls  = map[string]bool{"43": true, "288": true, "202": true, "242": true, "accept": true, "accept4": true}
	execCalls    = map[string]bool{"59": true, "322": true, "221": true, "281": true, "execve": true, "execveat": true}
)

// auditAssembler gathers the records of one audit event (same serial:
// SYSCALL, SOCKADDR, EXECVE, PROCTITLE, ...) and turns them into an Event.
type auditAssembler struct {
	serial uint64
	off    int64
	ts     time.Time
	recs   map[string]string // record type -> its text after the header
	open   bool
}

func (a *auditAssembler) line(r *Reader, line []byte, off int64, emit func(*Event)) {
	typ, ts, serial, rest, err := auditHeader(string(line))
	if err != nil {
		r.fail(off, ReasonAudit, err)
		return
	}
	if a.open && serial != a.serial {
		a.flush(r, emit)
	}
	if typ == "EOE" {
		a.flush(r, emit)
		return
	}
	if !a.open {
		*a = auditAssembler{serial: serial, off: off, ts: ts, recs: map[string]string{}, open: true}
	}
	if _, dup := a.recs[typ]; !dup {
		a.recs[typ] = rest
	}
}

func (a *auditAssembler) flush(r *Reader, emit func(*Event)) {
	if !a.open {
		return
	}
	a.open = false
	sc, ok := a.recs["SYSCALL"]
	if !ok {
		r.Stats.Ignored++
		return
	}
	f := auditFields(sc)
	e := Event{Feed: FeedAuditd, Time: a.ts, PID: parseInt(f["pid"]), PPID: parseInt(f["ppid"]),
		Image: unhexArg(f["exe"]), User: f["uid"], Host: ShortHost(f["node"])}
	success := f["success"] == "yes" || f["exit"] == "-115" // EINPROGRESS: a non-blocking connect under way
	switch call := f["syscall"]; {
	case connectCalls[call] || acceptCalls[call]:
		sa, ok := a.recs["SOCKADDR"]
		if !ok || !success {
			r.Stats.Ignored++
			return
		}
		s, err := DecodeSockaddr(auditFields(sa)["saddr"])
		if err != nil {
			r.fail(a.off, ReasonAudit, err)
			return
		}
		if s.Family != "ipv4" && s.Family != "ipv6" {
			r.Stats.Ignored++ // unix and netlink sockets carry no flow
			return
		}
		e.Kind = KindConnect
		e.Proto = 6 // auditd does not say; connect and accept are TCP's in practice
		e.Initiated = connectCalls[call]
		if e.Initiated {
			e.Dst, e.DstPort = s.Addr, s.Port
		} else {
			e.Src, e.SrcPort = s.Addr, s.Port
		}
	case execCalls[call]:
		if !success {
			r.Stats.Ignored++
			return
		}
		e.Kind = KindProcessStart
		e.Command = execveCommand(a.recs["EXECVE"])
		if e.Command == "" {
			e.Command = unhexArg(auditFields(a.recs["PROCTITLE"])["proctitle"])
		}
	default:
		r.Stats.Ignored++
		return
	}
	r.out(&e, a.off, emit)
}

// execveCommand joins an EXECVE record's a0, a1, ... arguments.
func execveCommand(rec string) string {
	if rec == "" {
		return ""
	}
	f := auditFields(rec)
	n := int(parseInt(f["argc"]))
	var args []string
	for i := 0; i < n && i < 256; i++ {
		v, ok := f["a"+strconv.Itoa(i)]
		if !ok {
			break
		}
		args = append(args, unhexArg(v))
	}
	return strings.Join(args, " ")
}

// parseAUOMS reads one AUOMS record (Microsoft's audit multiplexer, as
// Azure ships it over syslog): an audit header and the event's fields on
// one line, the command line already joined.
func parseAUOMS(msg string) (Event, bool, error) {
	typ, ts, _, rest, err := auditHeader(msg)
	if err != nil {
		return Event{}, false, err
	}
	f := auditFields(rest)
	e := Event{Feed: FeedAUOMS, Time: ts, PID: parseInt(f["pid"]), PPID: parseInt(f["ppid"]), Image: f["exe"],
		User: f["user"], Host: ShortHost(f["node"]), Command: f["cmdline"]}
	switch typ {
	case "AUOMS_EXECVE":
		if f["success"] != "yes" {
			return e, false, nil
		}
		e.Kind = KindProcessStart
		if e.Command == "" {
			e.Command = f["proctitle"]
		}
		return e, true, nil
	case "AUOMS_SYSCALL", "AUOMS_CONNECT":
		call := f["syscall"]
		if !connectCalls[call] && !acceptCalls[call] {
			return e, false, nil
		}
		addr, port := parseAddr(f["addr"]), uint16(parseInt(f["port"]))
		if sa := f["saddr"]; sa != "" {
			if s, err := DecodeSockaddr(sa); err == nil {
				addr, port = s.Addr, s.Port
			}
		}
		if !addr.IsValid() {
			return e, false, nil
		}
		e.Kind, e.Proto, e.Initiated = KindConnect, 6, connectCalls[call]
		if e.Initiated {
			e.Dst, e.DstPort = addr, port
		} else {
			e.Src, e.SrcPort = addr, port
		}
		return e, true, nil
	}
	return e, false, nil
}
