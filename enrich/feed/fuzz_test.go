package feed

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// The per-parser fuzz targets below feed their bytes to Reader.Read, the
// entry files, stdin and HTTP bodies use, seeded with records of the
// parser they are named for (a few lines of the shared fixtures in
// testdata/fuzz/FuzzX, and the unit tests' records). Mutations wander into
// other formats, so every target checks every event by its feed's rules.

// checkRead reads b as a log and fails on anything a parser must never do:
// panic, emit an event lacking what its kind needs or larger than the
// input could make, or report an error that is not a *Error naming the
// offset of a line of b.
func checkRead(t *testing.T, b []byte) {
	t.Helper()
	starts := lineStarts(b)
	r := NewReader("fuzz")
	r.OnError = func(e *Error) { checkError(t, e, starts) }
	n := 0
	if err := r.Read(bytes.NewReader(b), func(e *Event) {
		n++
		checkEvent(t, e, len(b))
	}); err != nil {
		t.Fatalf("Read of a bytes.Reader: %v", err)
	}
	if n > len(b) {
		t.Fatalf("%d events from %d bytes", n, len(b))
	}
}

// lineStarts returns the offsets at which Read starts a line of b.
func lineStarts(b []byte) map[int64]bool {
	m := map[int64]bool{0: true}
	for i, c := range b {
		if c == '\n' {
			m[int64(i+1)] = true
		}
	}
	return m
}

var reasons = map[string]bool{ReasonJSON: true, ReasonXML: true, ReasonAudit: true, ReasonUnknown: true,
	ReasonNoEventID: true, ReasonTooLong: true, ReasonIncomplete: true}

// checkError: a skipped record is a *Error of a known reason whose offset
// is where one of the input's lines starts (nil starts: anywhere in it),
// and whose message names that offset. A parser's panic is a failure:
// the Reader survives it, the fuzzer must still see it.
func checkError(t *testing.T, e *Error, starts map[int64]bool) {
	t.Helper()
	if e.Reason == ReasonPanic {
		t.Fatalf("parser bug: %v", e)
	}
	if !reasons[e.Reason] || e.Err == nil || e.Source != "fuzz" {
		t.Fatalf("error of no known reason: %#v", e)
	}
	if starts != nil && !starts[e.Offset] {
		t.Fatalf("error at offset %d, where no line starts: %v", e.Offset, e)
	}
	if !strings.Contains(e.Error(), fmt.Sprintf("offset %d:", e.Offset)) {
		t.Fatalf("error message without its offset: %v", e)
	}
}

// checkEvent: an event has a kind and a feed, what its kind needs, and
// strings no larger than the input can make (ToLower may turn an invalid
// byte into a 3-byte U+FFFD; a Security 4688 user is DOMAIN\user).
func checkEvent(t *testing.T, e *Event, inLen int) {
	t.Helper()
	if e.Kind == KindOther || int(e.Kind) >= len(kindNames) || e.Feed == "" {
		t.Fatalf("event without a kind or a feed: %+v", e)
	}
	size := len(e.Host) + len(e.GUID) + len(e.ParentGUID) + len(e.Image) + len(e.Command) + len(e.User) +
		len(e.ParentImg) + len(e.ParentCmd) + len(e.Target) + len(e.Results) + len(e.Action)
	if size > 3*inLen+16 {
		t.Fatalf("event of %d bytes of text from %d bytes: %+v", size, inLen, e)
	}
	if e.Kind == KindConnect {
		if a, _ := e.Remote(); !a.IsValid() {
			t.Fatalf("connect without its remote end: %+v", e)
		}
		if e.HasSrcPort && (!e.Src.IsValid() || !e.Dst.IsValid()) {
			t.Fatalf("connect with ports but not both addresses: %+v", e)
		}
	}
	switch e.Feed {
	case FeedESXi:
		if e.Kind != KindServiceLog || e.Image == "" || e.Time.IsZero() {
			t.Fatalf("ESXi line without its process or time: %+v", e)
		}
	case FeedOsquery:
		if a, _ := e.Remote(); e.Kind != KindConnect || e.Proto == 0 || a.IsUnspecified() {
			t.Fatalf("osquery row: %+v", e)
		}
	case FeedM365:
		if e.Kind != KindSaaSFile || !m365Ops[e.Action] || e.PID != -1 {
			t.Fatalf("M365 record: %+v", e)
		}
	case FeedAuditd, FeedAUOMS:
		if e.Kind != KindConnect && e.Kind != KindProcessStart || e.Kind == KindConnect && e.Proto != 6 {
			t.Fatalf("%s event: %+v", e.Feed, e)
		}
	case FeedVMConnection:
		if e.Kind != KindConnect {
			t.Fatalf("VMConnection row: %+v", e)
		}
	case FeedSysmon, FeedSecurity:
		if e.EventID <= 0 {
			t.Fatalf("Windows event without its id: %+v", e)
		}
	}
}

func addLines(f *testing.F, lines string) {
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		f.Add([]byte(l + "\n"))
	}
	f.Add([]byte(lines))
}

// FuzzESXi: ESXi service-log lines, bare and behind a syslog header.
// There is no real ESXi log among the shared fixtures (hostlogs MANIFEST),
// so the seeds are the unit tests' lines in the layouts ESXi 7 writes.
func FuzzESXi(f *testing.F) {
	addLines(f, esxiLines)
	f.Add([]byte("2026-12-01T10:00:00Z esx1 Hostd:\tstarted"))
	f.Add([]byte("2021-07-13T14:23:46.001Z cpu12:)x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkRead(t, b)
		// The line parser on its own, as syslog hands it a message.
		if e, ok := esxiLine(string(b)); ok {
			checkEvent(t, &e, len(b))
		}
	})
}

// FuzzOsquery: osquery result-log lines in its three shapes.
func FuzzOsquery(f *testing.F) {
	addLines(f, osqueryLines)
	f.Add([]byte(`{"snapshot":[{"pid":"1","remote_address":"::","local_port":"80","remote_port":"1"}],"unixTime":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkRead(t, b) })
}

// FuzzM365: Microsoft 365 unified audit log records.
func FuzzM365(f *testing.F) {
	addLines(f, m365Lines)
	f.Add([]byte(`{"CreationTime":"","Operation":"FileUploaded","Workload":1,"ClientIP":"[::1]:","FileSizeBytes":null}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkRead(t, b) })
}

// FuzzAuditd: raw auditd logs, records of one event on consecutive lines;
// seeds are go-libaudit's test logs (testdata/fuzz/FuzzAuditd).
func FuzzAuditd(f *testing.F) {
	f.Add([]byte("type=SYSCALL msg=audit(1492753107.096:9004): arch=c000003e syscall=42 success=no exit=-115 pid=1648 exe=\"/usr/bin/python3.5\"\n" +
		"type=SOCKADDR msg=audit(1492753107.096:9004): saddr=02000050A9FEA9FE0000000000000000\n"))
	f.Add([]byte("type=SYSCALL msg=audit(1.5:7): syscall=59 success=yes exe=2F62696E\ntype=EXECVE msg=audit(1.5:7): argc=2 a0=\"ls\" a1=2D6C\ntype=EOE msg=audit(1.5:7): \n"))
	f.Add([]byte("type=SYSCALL msg=audit(1.5:8): syscall=43 success=yes msg='node=h'\ntype=SOCKADDR msg=audit(1.5:8): saddr=0A000050000000002001"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkRead(t, b)
		// The sockaddr decoder on its own, on the input as hex.
		if s, err := DecodeSockaddr(string(b)); err == nil && len(s.Path) > len(b) {
			t.Fatalf("sockaddr path %d bytes from %d", len(s.Path), len(b))
		}
	})
}

// FuzzAzureRows: Azure Log Analytics rows: AUOMS records and Sysmon for
// Linux XML in SyslogMessage, VM Insights VMConnection rows; seeds are
// lines of the Log4Shell Linux fixtures (testdata/fuzz/FuzzAzureRows).
func FuzzAzureRows(f *testing.F) {
	f.Add([]byte(`{"SyslogMessage":"type=AUOMS_CONNECT audit(1.2:3): syscall=connect success=yes addr=192.0.2.1 port=443 pid=9 exe=/x","Computer":"U5","HostIP":"10.0.0.1"}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkRead(t, b) })
}

// FuzzWindows: Sysmon and Security-auditing records in every wrapper the
// Reader knows (Log Analytics, NXLog, Winlogbeat, event XML); seeds are
// lines of the Windows fixtures (testdata/fuzz/FuzzWindows).
func FuzzWindows(f *testing.F) {
	f.Add([]byte(`<Event><System><Provider Name="Linux-Sysmon"/><EventID>3</EventID></System><EventData><Data Name="SourceIp">1.2.3.4</Data></EventData></Event>`))
	f.Add([]byte(`{"winlog":{"event_id":"1","provider_name":"Microsoft-Windows-Sysmon","computer_name":"W","event_data":{"Image":"a.exe"}}}`))
	f.Add([]byte(`{"Provider":"Microsoft-Windows-Security-Auditing","EventID":5156,"EventData":"<EventData><Data Name=\"SourceAddress\">::1</Data></EventData>"}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkRead(t, b) })
}

// FuzzOutflowRecord: Outflow's own host-event lines (--host-events-out).
func FuzzOutflowRecord(f *testing.F) {
	addLines(f, outflowLines)
	f.Fuzz(func(t *testing.T, b []byte) { checkRead(t, b) })
}

// TestIncompleteConnectNamesItsOffset: a connect record without its
// addresses was reported at offset 0 wherever it stood; the error names
// the record's own line, as every other skipped record's does.
func TestIncompleteConnectNamesItsOffset(t *testing.T) {
	first := `{"outflow_event":"process_start","time":"2026-12-01T10:59:39.58Z","host":"lab","pid":1}` + "\n"
	second := `<Event><System><Provider Name="Linux-Sysmon"/><EventID>3</EventID></System><EventData><Data Name="SourceIp">1.2.3.4</Data></EventData></Event>` + "\n"
	var errs []*Error
	r := NewReader("fuzz")
	r.OnError = func(e *Error) { errs = append(errs, e) }
	if err := r.Read(strings.NewReader(first+second), func(*Event) {}); err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Reason != ReasonIncomplete || errs[0].Offset != int64(len(first)) {
		t.Fatalf("errors %v, want one %s at offset %d", errs, ReasonIncomplete, len(first))
	}
}
