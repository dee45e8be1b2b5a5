package feed

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"

	"github.com/valyala/fastjson"
)

// Reasons a record is skipped, counted in Stats.Errors.
const (
	ReasonJSON       = "json"        // not a JSON object
	ReasonXML        = "xml"         // event XML that does not parse (entities without ';', cut at the syslog limit)
	ReasonAudit      = "audit"       // an auditd line without type= and msg=audit(...)
	ReasonUnknown    = "unknown"     // a record of no format this package reads
	ReasonNoEventID  = "no_event_id" // a Windows record without an event id
	ReasonTooLong    = "too_long"    // a line past MaxLine
	ReasonIncomplete = "incomplete"  // a record missing what its kind needs (addresses of a connect)
	ReasonPanic      = "parser_bug"  // a parser failed on the record: a bug, reported with the record's offset
	// ReasonBudget (pending.go): the listener's records in progress were at their byte budget
)

// Error is one skipped record.
type Error struct {
	Source string
	Offset int64 // byte offset of the record's line
	Reason string
	Err    error
	// Input and Stack are the record and where its parser panicked, for
	// ReasonPanic only: a bug report keeps them.
	Input, Stack []byte
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: offset %d: %s: %v", e.Source, e.Offset, e.Reason, e.Err)
}

// Stats counts what a Reader saw.
type Stats struct {
	Lines   uint64
	Events  uint64            // events handed on
	Ignored uint64            // well-formed records of kinds no analytic reads
	Errors  map[string]uint64 // skipped records by reason
}

// MaxLine bounds one record; longer lines are counted and skipped.
const MaxLine = 4 << 20

// Reader turns host-event logs into Events. Not safe for concurrent use.
type Reader struct {
	Source  string
	OnError func(*Error) // called for every skipped record; may be nil
	// Pending, when set, is the budget the line being read takes its
	// bytes from (a listener's, shared by its connections).
	Pending *Pending
	Stats   Stats
	audit   auditAssembler
	json    fastjson.Parser
	inner   fastjson.Parser // for EventData held as a JSON string
}

// NewReader returns a Reader naming its errors after source.
func NewReader(source string) *Reader {
	return &Reader{Source: source, Stats: Stats{Errors: map[string]uint64{}}}
}

// ReadFile reads one log file.
func ReadFile(path string, emit func(*Event), onError func(*Error)) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	r := NewReader(path)
	r.OnError = onError
	err = r.Read(f, emit)
	return r.Stats, err
}

// Read reads records, one per line, until EOF. Only an I/O error ends it.
// A line past MaxLine, or one the Pending budget has no room for, is read
// to its end without being kept, and counted.
func (r *Reader) Read(in io.Reader, emit func(*Event)) error {
	br := bufio.NewReaderSize(in, 1<<16)
	var off int64
	var line []byte
	for {
		if cap(line) > 1<<16 {
			line = nil // a long line's buffer is not kept for the next
		}
		var n, held int64
		var skip string
		var err error
		line, n, held, skip, err = readLine(br, line[:0], r.Pending)
		if skip != "" {
			r.skipped(off, skip)
		} else if len(line) > 0 {
			r.Line(line, off, emit)
		}
		r.Pending.give(held)
		off += n
		if err == io.EOF {
			r.audit.flush(r, emit)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// skipped counts a record read and not kept, for skip's reason.
func (r *Reader) skipped(off int64, skip string) {
	r.Stats.Lines++
	if skip == ReasonTooLong {
		r.fail(off, skip, fmt.Errorf("line longer than %d bytes", MaxLine))
		return
	}
	r.fail(off, skip, fmt.Errorf("record not kept: the listener's records in progress are at their budget of %d bytes", r.Pending.Max()))
}

func (r *Reader) fail(off int64, reason string, err error) {
	r.report(&Error{Source: r.Source, Offset: off, Reason: reason, Err: err})
}

// report counts e by its reason and hands it to OnError.
func (r *Reader) report(e *Error) {
	r.Stats.Errors[e.Reason]++
	if r.OnError != nil {
		r.OnError(e)
	}
}

// out hands on an event read from the record at off, or counts it as
// incomplete there.
func (r *Reader) out(e *Event, off int64, emit func(*Event)) {
	if remote, _ := e.Remote(); e.Kind == KindConnect && (!remote.IsValid() || e.HasSrcPort && (!e.Src.IsValid() || !e.Dst.IsValid())) {
		r.fail(off, ReasonIncomplete, errors.New("connect event without addresses"))
		return
	}
	r.Stats.Events++
	emit(e)
}

// Flush hands on an audit event still waiting for more of its records:
// streaming sources call it when the stream goes quiet.
func (r *Reader) Flush(emit func(*Event)) { r.audit.flush(r, emit) }

// Line reads one record found at byte offset off. A parser that fails on
// a record (a bug) costs that record, counted and reported with its
// offset and its first bytes, never the process: host events come from the
// network.
func (r *Reader) Line(line []byte, off int64, emit func(*Event)) {
	defer func() {
		if v := recover(); v != nil {
			r.report(&Error{Source: r.Source, Offset: off, Reason: ReasonPanic, Err: fmt.Errorf("%v, on %q", v, line[:min(len(line), 256)]),
				Input: bytes.Clone(line), Stack: debug.Stack()})
		}
	}()
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	r.Stats.Lines++
	isAudit := bytes.HasPrefix(line, []byte("type=")) || bytes.Contains(line[:min(len(line), 64)], []byte(" type="))
	if !isAudit {
		// An audit event is whole once another kind of record follows.
		r.audit.flush(r, emit)
	}
	switch {
	case line[0] == '{':
		r.jsonRecord(line, off, emit)
	case bytes.HasPrefix(line, []byte("<Event")):
		r.xmlRecord(line, off, emit)
	case isAudit:
		r.audit.line(r, line, off, emit)
	default:
		if e, ok := esxiLine(string(line)); ok {
			r.out(&e, off, emit)
			return
		}
		r.fail(off, ReasonUnknown, errors.New("neither JSON, event XML nor auditd"))
	}
}

func (r *Reader) jsonRecord(line []byte, off int64, emit func(*Event)) {
	v, err := r.json.ParseBytes(line)
	if err != nil {
		r.fail(off, ReasonJSON, err)
		return
	}
	o, err := v.Object()
	if err != nil {
		r.fail(off, ReasonJSON, err)
		return
	}
	switch {
	case o.Get("outflow_event") != nil:
		r.outflowRecord(o, off, emit)
	case o.Get("winlog") != nil:
		r.winlogbeat(o, off, emit)
	case o.Get("SyslogMessage") != nil:
		r.syslogRow(o, off, emit)
	case str(o.Get("Type")) == "VMConnection":
		r.vmConnection(o, off, emit)
	case o.Get("EventData") != nil && (o.Get("Provider") != nil || o.Get("EventSourceName") != nil):
		r.logAnalyticsEvent(o, off, emit)
	case o.Get("EventID") != nil && (o.Get("SourceName") != nil || o.Get("ProviderName") != nil || o.Get("EventSourceName") != nil):
		r.flattened(o, off, emit)
	case o.Get("Operation") != nil && o.Get("CreationTime") != nil && o.Get("Workload") != nil:
		r.m365(o, off, emit)
	case o.Get("columns") != nil || o.Get("snapshot") != nil || o.Get("diffResults") != nil:
		r.osquery(o, off, emit)
	default:
		r.fail(off, ReasonUnknown, errors.New("JSON record of no known wrapper"))
	}
}

// fields looks names up in a JSON object.
func fields(o *fastjson.Object) func(string) string {
	return func(k string) string { return str(o.Get(k)) }
}

func (r *Reader) windows(w *winRecord, off int64, emit func(*Event)) {
	if w.eventID <= 0 {
		r.fail(off, ReasonNoEventID, errors.New("no event id"))
		return
	}
	e, ok := w.toEvent()
	if !ok {
		r.Stats.Ignored++
		return
	}
	r.out(&e, off, emit)
}

// winlogbeat reads Winlogbeat's ECS documents: winlog.event_data holds the
// fields, winlog.event_id, provider_name and computer_name the rest.
func (r *Reader) winlogbeat(o *fastjson.Object, off int64, emit func(*Event)) {
	wl, _ := o.Get("winlog").Object()
	if wl == nil {
		r.fail(off, ReasonUnknown, errors.New("winlog is not an object"))
		return
	}
	w := &winRecord{
		provider: str(wl.Get("provider_name")), eventID: int(parseInt(str(wl.Get("event_id")))),
		computer: str(wl.Get("computer_name")), created: parseTime(str(o.Get("@timestamp"))),
		lookup: func(string) string { return "" },
	}
	// fastjson's Object panics on a missing value: a winlog without
	// event_data (fuzzing found it) has no fields, not a crash.
	if v := wl.Get("event_data"); v != nil {
		if ed, _ := v.Object(); ed != nil {
			w.lookup = fields(ed)
		}
	}
	r.windows(w, off, emit)
}

// logAnalyticsEvent reads Azure Log Analytics Event and SecurityEvent rows:
// EventData is a string holding JSON (the Sysmon connector) or the event's
// EventData XML (SecurityEvent).
func (r *Reader) logAnalyticsEvent(o *fastjson.Object, off int64, emit func(*Event)) {
	provider := str(o.Get("Provider"))
	if provider == "" {
		provider = str(o.Get("EventSourceName"))
	}
	w := &winRecord{
		provider: provider, eventID: int(parseInt(str(o.Get("EventID")))), computer: str(o.Get("Computer")),
		created: parseTime(str(o.Get("TimeGenerated"))), lookup: func(string) string { return "" },
	}
	data := bytes.TrimSpace(o.Get("EventData").GetStringBytes())
	switch {
	case bytes.HasPrefix(data, []byte("{")):
		v, err := r.inner.ParseBytes(data)
		if err != nil {
			r.fail(off, ReasonJSON, fmt.Errorf("EventData: %w", err))
			return
		}
		ed, err := v.Object()
		if err != nil {
			r.fail(off, ReasonJSON, fmt.Errorf("EventData: %w", err))
			return
		}
		w.lookup = fields(ed)
	case bytes.HasPrefix(data, []byte("<")):
		var ed xmlEventData
		if err := xml.Unmarshal(data, &ed); err != nil {
			r.fail(off, ReasonXML, fmt.Errorf("EventData: %w", err))
			return
		}
		w.lookup = ed.Data.lookup
	}
	r.windows(w, off, emit)
}

// flattened reads records whose EventData fields sit beside the record's
// own at the top level: NXLog's im_msvistalog JSON (the Mordor datasets),
// PowerShell's Get-WinEvent exports, and Log Analytics SecurityEvent rows
// for the events it has columns for (4688). NXLog's ProcessId is its own
// field, not Sysmon's, which is why a Sysmon event's pid may be absent.
func (r *Reader) flattened(o *fastjson.Object, off int64, emit func(*Event)) {
	provider := str(o.Get("SourceName"))
	for _, k := range []string{"ProviderName", "EventSourceName"} {
		if provider == "" {
			provider = str(o.Get(k))
		}
	}
	w := &winRecord{provider: provider, eventID: int(parseInt(str(o.Get("EventID")))), lookup: fields(o)}
	for _, k := range []string{"Hostname", "Computer", "MachineName", "host"} {
		if w.computer = str(o.Get(k)); w.computer != "" {
			break
		}
	}
	for _, k := range []string{"TimeCreated", "@timestamp", "TimeGenerated", "EventTime"} {
		if w.created = parseTime(str(o.Get(k))); !w.created.IsZero() {
			break
		}
	}
	if strings.Contains(provider, "Sysmon") && str(o.Get("SourceModuleType")) == "im_msvistalog" {
		// NXLog writes the emitting process's id (that of Sysmon) here.
		w.lookup = func(k string) string {
			if k == "ProcessId" {
				return ""
			}
			return str(o.Get(k))
		}
	}
	r.windows(w, off, emit)
}

type xmlEventData struct {
	Data pairs `xml:"Data"`
}

type xmlEvent struct {
	System struct {
		Provider struct {
			Name string `xml:"Name,attr"`
		}
		EventID     string
		TimeCreated struct {
			SystemTime string `xml:"SystemTime,attr"`
		}
		Computer string
	}
	EventData xmlEventData
}

func (r *Reader) xmlRecord(line []byte, off int64, emit func(*Event)) {
	r.xmlEvent(line, off, netip.Addr{}, emit)
}

// xmlEvent reads one <Event> document, strictly: Sysmon for Linux over
// syslog writes entities without their ';' and lines cut at 2 KiB, and a
// record half read is worse than one counted as broken.
func (r *Reader) xmlEvent(doc []byte, off int64, hostAddr netip.Addr, emit func(*Event)) {
	var x xmlEvent
	if err := xml.Unmarshal(doc, &x); err != nil {
		r.fail(off, ReasonXML, err)
		return
	}
	w := &winRecord{
		provider: x.System.Provider.Name, eventID: int(parseInt(x.System.EventID)), computer: x.System.Computer,
		created: parseTime(x.System.TimeCreated.SystemTime), lookup: x.EventData.Data.lookup,
	}
	if w.eventID <= 0 {
		r.fail(off, ReasonNoEventID, errors.New("no event id"))
		return
	}
	e, ok := w.toEvent()
	if !ok {
		r.Stats.Ignored++
		return
	}
	e.HostAddr = hostAddr
	r.out(&e, off, emit)
}

// syslogRow reads Azure Log Analytics Syslog rows: SyslogMessage holds a
// Sysmon for Linux event as XML, or an AUOMS record.
func (r *Reader) syslogRow(o *fastjson.Object, off int64, emit func(*Event)) {
	msg := strings.TrimSpace(str(o.Get("SyslogMessage")))
	host := parseAddr(str(o.Get("HostIP")))
	switch {
	case strings.HasPrefix(msg, "<Event"):
		r.xmlEvent([]byte(msg), off, host, emit)
	case strings.HasPrefix(msg, "type=AUOMS_"):
		e, ok, err := parseAUOMS(msg)
		if err != nil {
			r.fail(off, ReasonAudit, err)
			return
		}
		if !ok {
			r.Stats.Ignored++
			return
		}
		if e.Host == "" {
			e.Host = ShortHost(str(o.Get("Computer")))
		}
		e.HostAddr = host
		r.out(&e, off, emit)
	default:
		r.Stats.Ignored++
	}
}

// vmConnection reads Azure VM Insights VMConnection rows: per-process
// connection summaries with the remote end only (no local port).
func (r *Reader) vmConnection(o *fastjson.Object, off int64, emit func(*Event)) {
	e := Event{
		Kind: KindConnect, Feed: FeedVMConnection, Host: ShortHost(str(o.Get("Computer"))), PID: -1, PPID: -1,
		Time: parseTime(str(o.Get("TimeGenerated"))), Image: str(o.Get("ProcessName")), Proto: protoNumber(str(o.Get("Protocol"))),
		Src: parseAddr(str(o.Get("SourceIp"))), Dst: parseAddr(str(o.Get("DestinationIp"))),
		DstPort: uint16(parseInt(str(o.Get("DestinationPort")))), Initiated: str(o.Get("Direction")) == "outbound",
	}
	r.out(&e, off, emit)
}

// str renders a JSON value as the string the Windows event had: strings
// as they are, numbers and booleans as written.
func str(v *fastjson.Value) string {
	if v == nil {
		return ""
	}
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes())
	case fastjson.TypeNull:
		return ""
	}
	return string(v.MarshalTo(nil))
}
