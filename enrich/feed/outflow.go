package feed

import (
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// FeedProcfs names events that Outflow's on-host mode read from /proc.
const FeedProcfs = "procfs"

// Record is Outflow's own host-event line: what `outflow live --on-host
// --host-events-out` writes of the processes and sockets it attributed,
// so a lab recording keeps its host events beside its capture. Any event
// kind can be written; the reader takes them back as they were.
type Record struct {
	Event      string `json:"outflow_event"` // process_start, connect, module_load, ...
	Time       string `json:"time"`
	Host       string `json:"host"`
	Feed       string `json:"feed"`
	PID        int64  `json:"pid"`
	PPID       int64  `json:"ppid,omitempty"`
	Image      string `json:"image,omitempty"`
	Command    string `json:"command_line,omitempty"`
	User       string `json:"user,omitempty"`
	ParentImg  string `json:"parent_image,omitempty"`
	ParentCmd  string `json:"parent_command_line,omitempty"`
	Proto      uint8  `json:"proto,omitempty"`
	Src        string `json:"src,omitempty"`
	SrcPort    uint16 `json:"src_port,omitempty"`
	Dst        string `json:"dst,omitempty"`
	DstPort    uint16 `json:"dst_port,omitempty"`
	Initiated  bool   `json:"initiated,omitempty"`
	HasSrcPort bool   `json:"has_src_port,omitempty"`
	Target     string `json:"target,omitempty"`
}

// AppendRecord appends e as one Outflow host-event line.
func AppendRecord(dst []byte, e *Event) []byte {
	r := Record{Event: e.Kind.String(), Time: e.Time.UTC().Format(time.RFC3339Nano), Host: e.Host, Feed: e.Feed,
		PID: e.PID, PPID: e.PPID, Image: e.Image, Command: e.Command, User: e.User, ParentImg: e.ParentImg, ParentCmd: e.ParentCmd,
		Proto: e.Proto, SrcPort: e.SrcPort, DstPort: e.DstPort, Initiated: e.Initiated, HasSrcPort: e.HasSrcPort, Target: e.Target}
	if e.Src.IsValid() {
		r.Src = e.Src.String()
	}
	if e.Dst.IsValid() {
		r.Dst = e.Dst.String()
	}
	b, _ := json.Marshal(&r)
	return append(append(dst, b...), '\n')
}

func kindOf(name string) Kind {
	for i, n := range kindNames {
		if n == name {
			return Kind(i)
		}
	}
	return KindOther
}

// outflowRecord reads a line AppendRecord wrote.
func (r *Reader) outflowRecord(o *fastjson.Object, off int64, emit func(*Event)) {
	f := fields(o)
	k := kindOf(f("outflow_event"))
	t, err := time.Parse(time.RFC3339Nano, f("time"))
	if k == KindOther || err != nil {
		r.Stats.Ignored++
		return
	}
	e := Event{Kind: k, Time: t, Host: strings.ToLower(f("host")), Feed: f("feed"), PID: parseInt(f("pid")), PPID: parseInt(f("ppid")),
		Image: f("image"), Command: f("command_line"), User: f("user"), ParentImg: f("parent_image"), ParentCmd: f("parent_command_line"),
		Proto: uint8(orZero(f("proto"))), SrcPort: uint16(orZero(f("src_port"))), DstPort: uint16(orZero(f("dst_port"))),
		Target: f("target")}
	e.Initiated = o.Get("initiated") != nil && o.Get("initiated").GetBool()
	e.HasSrcPort = o.Get("has_src_port") != nil && o.Get("has_src_port").GetBool()
	e.Src, _ = netip.ParseAddr(f("src"))
	e.Dst, _ = netip.ParseAddr(f("dst"))
	if e.Feed == "" {
		e.Feed = FeedProcfs
	}
	r.out(&e, off, emit)
}

// orZero reads a number that is left out when zero.
func orZero(s string) int64 {
	if n := parseInt(s); n > 0 {
		return n
	}
	return 0
}
