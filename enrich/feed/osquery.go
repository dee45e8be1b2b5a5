package feed

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// FeedOsquery names osquery's result logs.
const FeedOsquery = "osquery"

// osquery writes query results as JSON lines in three shapes: one row per
// line with an action (the differential "event" format), a snapshot of all
// rows, and a batch of added and removed rows. Queries are named by the
// user, so rows are recognised by their columns: socket_events (pid, path,
// action connect/accept/bind, addresses, time) and process_open_sockets
// (pid, addresses, state).
func (r *Reader) osquery(o *fastjson.Object, off int64, emit func(*Event)) {
	host := str(o.Get("hostIdentifier"))
	if host == "" {
		host = str(o.Get("hostname"))
	}
	when := time.Unix(parseInt(str(o.Get("unixTime"))), 0).UTC()
	rows := 0
	each := func(v *fastjson.Value) {
		if c, _ := v.Object(); c != nil {
			rows++
			r.osqueryRow(c, ShortHost(host), when, off, emit)
		}
	}
	switch {
	case o.Get("columns") != nil:
		if str(o.Get("action")) == "removed" {
			r.Stats.Ignored++ // a socket gone: nothing new to join
			return
		}
		each(o.Get("columns"))
	case o.Get("snapshot") != nil:
		for _, v := range o.Get("snapshot").GetArray() {
			each(v)
		}
	case o.Get("diffResults") != nil:
		for _, v := range o.Get("diffResults").GetArray("added") {
			each(v)
		}
	}
	if rows == 0 {
		r.fail(off, ReasonUnknown, errors.New("osquery result without rows"))
	}
}

func (r *Reader) osqueryRow(c *fastjson.Object, host string, when time.Time, off int64, emit func(*Event)) {
	get := func(k string) string { return str(c.Get(k)) }
	if get("remote_address") == "" || get("pid") == "" {
		r.Stats.Ignored++ // a query of another table
		return
	}
	e := Event{Feed: FeedOsquery, Host: host, Time: when, PID: parseInt(get("pid")), PPID: -1, Image: get("path"),
		Proto: protoNumber(get("protocol"))}
	if t := parseInt(get("time")); t > 0 {
		e.Time = time.Unix(t, 0).UTC() // socket_events: when the syscall ran
	}
	if e.Proto == 0 {
		e.Proto = 6
	}
	local := netipAddrPort(get("local_address"), get("local_port"))
	remote := netipAddrPort(get("remote_address"), get("remote_port"))
	switch get("action") {
	case "connect", "":
		// process_open_sockets has no action: its row is a connected
		// socket; which end began it is unknown, the local side is
		// taken as the initiator unless it is the well-known port.
		e.Initiated = true
		if get("action") == "" && local.Port() != 0 && local.Port() < 1024 && remote.Port() >= 1024 {
			e.Initiated = false
		}
	case "accept":
		e.Initiated = false
	default:
		r.Stats.Ignored++ // bind
		return
	}
	if get("success") == "0" {
		r.Stats.Ignored++
		return
	}
	e.Kind = KindConnect
	if !remote.Addr().IsValid() || remote.Addr().IsUnspecified() {
		r.Stats.Ignored++ // a listening socket
		return
	}
	e.HasSrcPort = local.Port() != 0
	if e.Initiated {
		e.Src, e.SrcPort, e.Dst, e.DstPort = local.Addr(), local.Port(), remote.Addr(), remote.Port()
	} else {
		e.Src, e.SrcPort, e.Dst, e.DstPort = remote.Addr(), remote.Port(), local.Addr(), local.Port()
	}
	r.out(&e, off, emit)
}

func netipAddrPort(addr, port string) netip.AddrPort {
	p, _ := strconv.ParseUint(port, 10, 16)
	return netip.AddrPortFrom(parseAddr(addr), uint16(p))
}
