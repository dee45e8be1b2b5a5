package feed

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// readFramedAlloc reads b as a syslog TCP stream, the way the listener
// reads a connection, and returns the bytes allocated meanwhile.
func readFramedAlloc(t *testing.T, b []byte) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := NewReader("fuzz")
	r.OnError = func(e *Error) {
		checkError(t, e, nil)
		if e.Offset < 0 || e.Offset > int64(len(b)) {
			t.Fatalf("error at offset %d of a %d-byte stream: %v", e.Offset, len(b), e)
		}
	}
	readFramed(bufio.NewReaderSize(bytes.NewReader(b), 1<<16), r, func(e *Event) { checkEvent(t, e, len(b)) })
	r.Flush(func(e *Event) { checkEvent(t, e, len(b)) })
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// frameBudget is what reading a stream of n bytes may allocate: the
// connection's 64 KiB buffer and the parsers' state, then a multiple of
// the bytes received. A frame's announced length is not a reason to
// allocate it before its bytes come.
func frameBudget(n int) uint64 { return 1<<20 + 64*uint64(n) }

// FuzzSyslogFrames: any bytes as a syslog TCP connection (RFC 6587 octet
// counting and LF framing): no panic, allocation bounded by the bytes
// sent, not by the lengths they announce; and frames built from the
// input, octet-counted or LF-terminated at the input's choice, come out
// of the stream as the records they framed, one for one.
func FuzzSyslogFrames(f *testing.F) {
	f.Add([]byte("75 <166>1 2021-07-13T14:23:47.500Z esxi01 Vpxa: verbose vpxa[2100101] [x] -- BEGIN\n12 <13>hello\n"))
	f.Add([]byte("4194304 <13>1 - - - - - - x"))
	f.Add([]byte("4194305 x"))
	f.Add([]byte("<13>Nov 22 10:00:00 host app[99]: {\"a\":1}\n3 <1>\n"))
	f.Add([]byte("one\nthree\x00octets\n\nfour"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := readFramedAlloc(t, b); n > frameBudget(len(b)) {
			t.Fatalf("%d bytes allocated reading a %d-byte stream", n, len(b))
		}

		// Round trip: each piece of the input between newlines becomes
		// the target of one Outflow record, sent as one syslog frame.
		var stream []byte
		var want []string
		for i, piece := range bytes.Split(b, []byte("\n")) {
			e := Event{Kind: KindServiceLog, Feed: "fuzz", Host: "h", Time: time.Unix(int64(i), 0), Target: string(piece)}
			msg := append([]byte("<13>1 2026-11-23T10:00:00Z h app - - - "), bytes.TrimSuffix(AppendRecord(nil, &e), []byte("\n"))...)
			// The record as the Reader reads it unframed.
			r := NewReader("fuzz")
			n := 0
			r.Line(bytes.TrimSuffix(AppendRecord(nil, &e), []byte("\n")), 0, func(e *Event) { want = append(want, e.Target); n++ })
			if n != 1 {
				t.Fatalf("record %q read as %d events: %v", AppendRecord(nil, &e), n, r.Stats)
			}
			if len(piece) > 0 && piece[0]&1 == 1 {
				stream = append(strconv.AppendInt(stream, int64(len(msg)), 10), ' ')
				stream = append(stream, msg...)
			} else {
				stream = append(append(stream, msg...), '\n')
			}
		}
		var got []string
		r := NewReader("fuzz")
		r.OnError = func(e *Error) { t.Fatalf("valid frames: %v", e) }
		readFramed(bufio.NewReaderSize(bytes.NewReader(stream), 1<<16), r, func(e *Event) { got = append(got, e.Target) })
		if len(got) != len(want) {
			t.Fatalf("%d records framed, %d read back from %q", len(want), len(got), stream)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("record %d: %q, framed %q", i, got[i], want[i])
			}
		}
	})
}

// FuzzHTTPBody: any bytes as a POSTed body, read as the HTTP listener
// reads it (Reader.Read behind http.MaxBytesReader) with a limit the input
// chooses: a body past the limit is an *http.MaxBytesError, never more
// than the limit is read, and the events are those of the body's first
// limit bytes.
func FuzzHTTPBody(f *testing.F) {
	f.Add([]byte(outflowLines), uint16(600))
	f.Add([]byte(esxiLines+m365Lines), uint16(0xffff))
	f.Add([]byte("type=SYSCALL msg=audit(1.5:7): syscall=59 success=yes exe=2F62696E\n"), uint16(20))
	f.Fuzz(func(t *testing.T, b []byte, limit uint16) {
		read := func(in io.Reader, inLen int) ([]string, error) {
			var evs []string
			r := NewReader("fuzz")
			r.OnError = func(e *Error) { checkError(t, e, lineStarts(b)) }
			err := r.Read(in, func(e *Event) {
				checkEvent(t, e, inLen)
				evs = append(evs, string(AppendRecord(nil, e)))
			})
			return evs, err
		}
		l := int(limit)
		body := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(b)), int64(l))
		got, err := read(body, len(b))
		var tooBig *http.MaxBytesError
		if len(b) > l && !errors.As(err, &tooBig) || len(b) <= l && err != nil {
			t.Fatalf("%d-byte body, limit %d: %v", len(b), l, err)
		}
		want, err := read(bytes.NewReader(b[:min(l, len(b))]), min(l, len(b)))
		if err != nil {
			t.Fatal(err)
		}
		// A body cut at the limit ends without the flush of an audit
		// event still open: its events are a prefix of the cut body's.
		if len(got) > len(want) || len(b) <= l && len(got) != len(want) {
			t.Fatalf("%d events through the limit, %d from the cut body", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("event %d: %s, cut body %s", i, got[i], want[i])
			}
		}
	})
}

// TestSyslogFrameLengthNotAllocatedAhead: FuzzSyslogFrames's first
// crasher (testdata/fuzz/FuzzSyslogFrames/frame-length-announced-not-sent):
// a 27-byte connection announcing a 4 MiB frame made the listener allocate
// the 4 MiB before any of it came. Now what it allocates follows the bytes
// sent.
func TestSyslogFrameLengthNotAllocatedAhead(t *testing.T) {
	stream := []byte("4194304 <13>1 - - - - - - x")
	if n := readFramedAlloc(t, stream); n >= 1<<20 {
		t.Errorf("%d bytes allocated reading a %d-byte stream announcing a 4 MiB frame", n, len(stream))
	}
}
