package flows

import (
	"bytes"
	"strings"
)

// httpMethods start the request lines recognised as HTTP.
var httpMethods = [...]string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "PROPFIND ", "MKCOL ", "COPY ", "MOVE "}

func isHTTPStart(b []byte) bool {
	// Every method and the status line start with an upper-case letter
	// from this set; most payloads are ruled out by their first byte.
	if len(b) < 4 || !strings.ContainsRune("CDGHMOPU", rune(b[0])) {
		return false
	}
	if bytes.HasPrefix(b, []byte("HTTP/1.")) {
		return true
	}
	for _, m := range httpMethods {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

// httpHead gathers a request or status line and headers, then measures the
// body.
func (in *inspector) httpHead(s *Inspection, d int, data []byte) []byte {
	w, ds := s.work, &s.work.dir[d]
	start := len(w.acc[d])
	// Look for the end of the header in the gathered tail plus data without
	// copying data when the header ends inside it.
	if start == 0 {
		if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
			in.httpHeader(s, d, data[:i+4], ds.cons+uint64(i+4))
			ds.phase = afterHTTP(s)
			return data[i+4:]
		}
	}
	take := min(len(data), in.cfg.StreamBytes-start)
	if !in.gather(s, d, data[:take]) {
		return nil
	}
	from := max(0, start-3)
	if i := bytes.Index(w.acc[d][from:], []byte("\r\n\r\n")); i >= 0 {
		end := from + i + 4
		used := end - start
		in.httpHeader(s, d, w.acc[d][:end], ds.cons+uint64(used))
		w.acc[d] = w.acc[d][:0]
		ds.phase = afterHTTP(s)
		return data[used:]
	}
	if len(w.acc[d]) >= in.cfg.StreamBytes {
		// No header end within the bound: not HTTP after all.
		w.acc[d] = w.acc[d][:0]
		ds.phase = phPayload
		return data[take:]
	}
	return nil
}

// afterHTTP is the phase after a header: a CONNECT tunnel usually carries
// TLS next, so it is watched for; other bodies are measured.
func afterHTTP(s *Inspection) uint8 {
	if s.HTTP != nil && s.HTTP.Method == "CONNECT" {
		return phPreamble
	}
	return phPayload
}

func (in *inspector) httpHeader(s *Inspection, d int, head []byte, bodyAt uint64) {
	if d != 0 || s.HTTP != nil && s.HTTP.seen {
		return
	}
	h := s.http()
	h.seen = true
	h.headerEnd = bodyAt
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if m, _, ok := bytes.Cut(line, []byte(" ")); ok {
		h.Method = string(m)
	}
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("host")):
			h.Host = string(v)
		case bytes.EqualFold(k, []byte("content-length")):
			h.ContentLength = parseDec(v)
		}
	}
}

func parseDec(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
