// Framing: syslog messages, and records cut from a byte stream (RFC 6587
// octet counting or newlines, HTTP body lines) within MaxLine and a
// listener's Pending budget.

package feed

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
)

// SyslogMessage returns the MSG part of an RFC 5424 or RFC 3164 message,
// and ok false when the line has no <PRI> header.
func SyslogMessage(line []byte) (msg []byte, ok bool) {
	line = bytes.TrimRight(line, "\r\n\x00")
	if len(line) < 3 || line[0] != '<' {
		return line, false
	}
	end := bytes.IndexByte(line[:min(len(line), 6)], '>')
	if end < 0 {
		return line, false
	}
	rest := line[end+1:]
	if len(rest) > 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
		// RFC 5424: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
		f := rest[2:]
		for i := 0; i < 5; i++ {
			sp := bytes.IndexByte(f, ' ')
			if sp < 0 {
				return nil, true
			}
			f = f[sp+1:]
		}
		if bytes.HasPrefix(f, []byte("-")) {
			f = f[1:]
		} else if bytes.HasPrefix(f, []byte("[")) {
			// Structured data: [id k="v" ...]... with escaped ] inside.
			for len(f) > 0 && f[0] == '[' {
				i := 1
				for i < len(f) && f[i] != ']' {
					if f[i] == '\\' {
						i++
					}
					i++
				}
				f = f[min(i+1, len(f)):]
			}
		}
		f = bytes.TrimPrefix(f, []byte(" "))
		return bytes.TrimPrefix(f, []byte("\xef\xbb\xbf")), true // BOM
	}
	// RFC 3164: Mmm dd hh:mm:ss HOSTNAME TAG: MSG
	if len(rest) >= 16 && rest[3] == ' ' && rest[6] == ' ' && rest[9] == ':' {
		f := rest[16:]
		if sp := bytes.IndexByte(f, ' '); sp >= 0 {
			f = f[sp+1:] // host
		}
		if c := bytes.Index(f, []byte(": ")); c >= 0 && c < 64 && !bytes.ContainsAny(f[:c], " ") {
			f = f[c+2:] // TAG[pid]:
		}
		return f, true
	}
	return rest, true
}

// syslogLine hands one syslog message's content to the reader; ESXi lines
// keep their header, which carries their host.
func syslogLine(r *Reader, line []byte, off int64, emit func(*Event)) {
	msg, ok := SyslogMessage(line)
	m := bytes.TrimSpace(msg)
	if ok && len(m) > 0 && (m[0] == '{' || bytes.HasPrefix(m, []byte("<Event")) || bytes.Contains(m[:min(len(m), 64)], []byte("type="))) {
		r.Line(m, off, emit)
		return
	}
	r.Line(line, off, emit)
}

// readFramed reads RFC 6587 syslog over TCP: octet-counted frames ("123
// <PRI>...") or, when a frame starts with '<', newline-delimited ones.
// Either kind is kept only up to MaxLine and as the reader's Pending
// budget allows; past that it is read to its end and dropped, counted.
func readFramed(br *bufio.Reader, r *Reader, emit func(*Event)) {
	var off int64
	var frame []byte
	for {
		b, err := br.Peek(1)
		if err != nil {
			return
		}
		if cap(frame) > 1<<16 {
			frame = nil // a large frame's buffer is not kept for the next
		}
		if b[0] >= '1' && b[0] <= '9' {
			// RFC 6587 octet counting: MSG-LEN SP MSG. The length has at
			// most as many digits as MaxLine; a sender that never ends it
			// is cut off there, not buffered.
			head, _ := br.Peek(len(strconv.Itoa(MaxLine)) + 1)
			sp := bytes.IndexByte(head, ' ')
			if sp < 0 {
				r.fail(off, ReasonUnknown, fmt.Errorf("syslog frame length %q: no space after it", head))
				return
			}
			lenStr := string(head[:sp+1])
			n, err := strconv.Atoi(lenStr[:sp])
			if err != nil || n <= 0 || n > MaxLine {
				r.fail(off, ReasonUnknown, fmt.Errorf("syslog frame length %q", lenStr))
				return
			}
			br.Discard(sp + 1)
			var whole bool
			var held int64
			frame, held, whole = readFrame(br, frame[:0], n, r.Pending)
			switch {
			case !whole:
			case len(frame) == 0:
				r.skipped(off, ReasonBudget)
			default:
				syslogLine(r, frame, off, emit)
			}
			r.Pending.give(held)
			if !whole {
				return
			}
			off += int64(len(lenStr) + n)
			continue
		}
		var n int64
		var skip string
		var held int64
		frame, n, held, skip, err = readLine(br, frame[:0], r.Pending)
		switch {
		case skip != "":
			r.skipped(off, skip)
		case len(bytes.TrimSpace(frame)) > 0:
			syslogLine(r, frame, off, emit)
		}
		r.Pending.give(held)
		off += n
		if err != nil {
			return
		}
	}
}

// readFrame reads an n-byte frame into buf, taking its bytes from the
// budget as they come: a frame announced and never sent costs nothing
// (fuzzing found 4 MiB allocated for a 27-byte stream), and one the budget
// has no room for is read to its end and dropped (frame empty). whole is
// false when the stream ended first. The caller gives held back.
func readFrame(br *bufio.Reader, buf []byte, n int, p *Pending) (frame []byte, held int64, whole bool) {
	kept := true
	for n > 0 {
		chunk, err := br.Peek(min(n, br.Size()))
		if len(chunk) == 0 {
			return buf, held, false
		}
		if kept {
			if took, ok := p.grow(len(buf), len(chunk)); ok {
				held += took
				buf = append(buf, chunk...)
			} else {
				kept = false
				p.give(held)
				buf, held = buf[:0], 0
			}
		}
		br.Discard(len(chunk))
		n -= len(chunk)
		if err != nil && n > 0 {
			return buf, held, false
		}
	}
	return buf, held, true
}

// readLine reads a line ending in '\n' (or the stream's end) into buf, up
// to MaxLine and as the budget allows; past either it reads on to the
// line's end without keeping it and says why in skip. n is the bytes the
// line took from the stream; the caller gives held back.
func readLine(br *bufio.Reader, buf []byte, p *Pending) (line []byte, n, held int64, skip string, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		n += int64(len(chunk))
		switch {
		case skip != "":
		case len(buf)+len(chunk) > MaxLine:
			skip = ReasonTooLong
		default:
			took, ok := p.grow(len(buf), len(chunk))
			if !ok {
				skip = ReasonBudget
				break
			}
			held += took
			buf = append(buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if skip != "" {
			p.give(held)
			buf, held = buf[:0], 0
		}
		return buf, n, held, skip, err
	}
}
