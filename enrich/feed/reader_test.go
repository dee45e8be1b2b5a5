package feed

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestWinlogbeat: Winlogbeat's ECS document, the fourth wrapper: the same
// Sysmon connect as a Log Analytics row of the Windows Log4Shell fixture.
func TestWinlogbeat(t *testing.T) {
	doc := `{"@timestamp":"2022-05-13T08:54:09.390Z","event":{"code":"3","provider":"Microsoft-Windows-Sysmon"},` +
		`"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","computer_name":"WORKSTATION5.example.local",` +
		`"event_id":"3","provider_name":"Microsoft-Windows-Sysmon","event_data":{"UtcTime":"2022-05-13 08:54:09.390",` +
		`"ProcessGuid":"{f3329a35-1cb0-627e-f916-000000000600}","ProcessId":"2084",` +
		`"Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","User":"NT AUTHORITY\\LOCAL SERVICE",` +
		`"Protocol":"tcp","Initiated":"true","SourceIp":"192.168.2.5","SourcePort":"54226","DestinationIp":"192.168.3.5","DestinationPort":"443"}}}`
	var got []Event
	r := NewReader("test")
	if err := r.Read(strings.NewReader(doc+"\n"), func(e *Event) { got = append(got, *e) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("events %+v, stats %+v", got, r.Stats)
	}
	e := got[0]
	if e.Kind != KindConnect || e.Feed != FeedSysmon || e.Host != "workstation5" || e.PID != 2084 || !e.Initiated ||
		e.Src.String() != "192.168.2.5" || e.SrcPort != 54226 || e.Dst.String() != "192.168.3.5" || e.DstPort != 443 ||
		ImageName(e.Image) != "powershell.exe" || e.Time.Format("15:04:05.000") != "08:54:09.390" {
		t.Errorf("%+v", e)
	}
}

// TestBadRecords: broken lines are counted by reason with their offsets
// and the good ones around them still come out.
func TestBadRecords(t *testing.T) {
	good := `{"SourceName":"Microsoft-Windows-Sysmon","EventID":5,"Hostname":"h","UtcTime":"2020-09-20 21:09:08.706","ProcessId":"1","Image":"x.exe"}`
	in := good + "\n{not json\n<Event><System><EventID>3</Event>\ntype=SYSCALL no header\n\x00\x01garbage\n" + good + "\n"
	var errs []*Error
	r := NewReader("bad.log")
	r.OnError = func(e *Error) { errs = append(errs, e) }
	n := 0
	if err := r.Read(strings.NewReader(in), func(*Event) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 2 || len(errs) != 4 {
		t.Fatalf("%d events, errors %v", n, errs)
	}
	wantOff := []int64{int64(len(good) + 1)}
	if errs[0].Offset != wantOff[0] || errs[0].Reason != ReasonJSON || !strings.Contains(errs[0].Error(), "bad.log: offset") {
		t.Errorf("first error %v", errs[0])
	}
	for i, want := range []string{ReasonJSON, ReasonXML, ReasonAudit, ReasonUnknown} {
		if errs[i].Reason != want {
			t.Errorf("error %d: %s, want %s", i, errs[i].Reason, want)
		}
	}
}

// FuzzReader: any bytes as a log: nothing panics, every event handed on
// has a kind, and connect events have their remote end.
func FuzzReader(f *testing.F) {
	f.Add([]byte("type=SYSCALL msg=audit(1492753107.096:9004): arch=c000003e syscall=42 success=no exit=-115 pid=1648 exe=\"/usr/bin/python3.5\"\n" +
		"type=SOCKADDR msg=audit(1492753107.096:9004): saddr=02000050A9FEA9FE0000000000000000\n"))
	f.Add([]byte(`<Event><System><Provider Name="Linux-Sysmon"/><EventID>3</EventID></System><EventData><Data Name="SourceIp">1.2.3.4</Data></EventData></Event>`))
	for _, lines := range []string{osqueryLines, m365Lines, esxiLines, outflowLines} {
		for _, l := range strings.Split(lines, "\n") {
			f.Add([]byte(l))
		}
	}
	files, _ := filepath.Glob(filepath.Join(shared.Dir(), "hostlogs", "otrf-*", "*.json"))
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for i := 0; i < 3 && sc.Scan(); i++ {
			f.Add(append([]byte(nil), sc.Bytes()...))
		}
		fh.Close()
	}
	// Issue 16: a tab after the syslog tag of an ESXi line.
	f.Add([]byte("2026-12-01T10:00:00Z esx1 Hostd:\tstarted"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader("fuzz")
		r.OnError = func(e *Error) {
			// The reader survives a parser's panic; the fuzzer must
			// still see it.
			if e.Reason == ReasonPanic {
				t.Fatalf("parser bug: %v", e)
			}
		}
		_ = r.Read(strings.NewReader(string(b)), func(e *Event) {
			if e.Kind == KindConnect {
				if a, _ := e.Remote(); !a.IsValid() {
					t.Fatalf("connect without remote: %+v", e)
				}
			}
		})
	})
}
