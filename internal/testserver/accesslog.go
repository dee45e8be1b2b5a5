package testserver

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// logged is one line of Nginx's access log: the request without its body,
// and the file nginx kept the body in ("" when none).
type logged struct {
	Request
	bodyFile string
}

// parseAccessLog reads the access log Nginx's log_format "hook" writes:
//
//	$status $request_uri $request_body_file "$content_type" "$http_content_encoding" $content_length
//
// nginx writes "-" for a value not set, and escapes a double quote inside a
// value (\x22), so a quoted value ends at the next one. A last line without
// its newline is still being written and is left out.
func parseAccessLog(b []byte) ([]logged, error) {
	var out []logged
	for n := 1; ; n++ {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return out, nil
		}
		line := string(b[:i])
		b = b[i+1:]
		f, ok := accessFields(line)
		if !ok || len(f) != 6 {
			return out, fmt.Errorf("line %d: %.120q is not what log_format hook writes", n, line)
		}
		unset := func(s string) string {
			if s == "-" {
				return ""
			}
			return s
		}
		l := logged{Request: Request{Status: f[0], URI: f[1], ContentType: unset(f[3]), Encoding: unset(f[4])}, bodyFile: unset(f[2])}
		if f[5] != "-" {
			v, err := strconv.Atoi(f[5])
			if err != nil || v < 0 {
				return out, fmt.Errorf("line %d: Content-Length %q is not a count of bytes", n, f[5])
			}
			l.Length = v
		}
		out = append(out, l)
	}
}

// accessFields splits a line at single spaces; a field that starts with a
// double quote runs to the next one, which it loses, with its content kept
// as it is.
func accessFields(line string) ([]string, bool) {
	var f []string
	for len(line) > 0 {
		if line[0] == '"' {
			end := strings.IndexByte(line[1:], '"')
			if end < 0 {
				return nil, false
			}
			f = append(f, line[1:1+end])
			line = line[1+end+1:]
		} else {
			end := strings.IndexByte(line, ' ')
			if end < 0 {
				end = len(line)
			}
			f = append(f, line[:end])
			line = line[end:]
		}
		if len(line) == 0 {
			break
		}
		if line[0] != ' ' || len(line) == 1 {
			return nil, false
		}
		line = line[1:]
	}
	return f, true
}
