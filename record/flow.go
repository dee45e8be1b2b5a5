// Package record holds the one flow record that moves through the sensor,
// whatever its source: a capture file, AF_PACKET, a NetFlow/IPFIX biflow,
// two stitched one-way records, sFlow samples, or exports found inside a
// capture. Stages fill it (the flow table, the stitcher, the name and
// process enrichment) and read it (the analytics, the sinks); only the
// sinks turn it into text (sensor/encode).
package record

import (
	"net/netip"

	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/flows"
)

// Flow is one flow record. Counts are per direction, from the originator
// (orig) and the responder (resp). What only payload shows (payload bytes,
// TCP history and state, inspection) is there when Observed; router exports
// carry layer-3 counters only, and their payload fields are unknown, never
// zero.
type Flow struct {
	Start, End int64 // nanoseconds since the Unix epoch
	Proto      uint8
	// Orig and Resp are the endpoints; ICMP ports are Zeek's (the type, and
	// the counterpart type or the code).
	Orig, Resp  netip.AddrPort
	OrigPkts    uint64
	RespPkts    uint64
	OrigIPBytes uint64
	RespIPBytes uint64

	// Observed: the packets themselves were seen (a capture), so the
	// fields below are known. False for router exports.
	Observed       bool
	OrigFrameBytes uint64 // captured frame bytes, link headers included
	RespFrameBytes uint64
	OrigBytes      uint64 // application payload: for TCP, sequence space as Zeek counts it
	RespBytes      uint64
	MissedBytes    uint64
	History        History
	State          string // Zeek's conn_state
	VLAN           uint16
	InnerVLAN      uint16
	Tunnel         flows.Tunnel
	// Inspection is what payload inspection learnt (nil when the flow was
	// not inspected); its Resolved name is filled by enrichment.
	Inspection *flows.Inspection
	// HTTPBody is the first HTTP request's body size, -1 when not HTTP.
	HTTPBody int64

	// Final is false for an interim record of a flow that goes on.
	Final   bool
	Evicted bool // ended early because the flow table was full

	CommunityID CommunityID
	Direction   Direction

	// Export describes the exporter of a record made from flow exports;
	// zero for captures.
	Export Export

	// OrigProc and RespProc are the processes at each end, when host events
	// or /proc named them.
	OrigProc, RespProc *process.Attribution
}

// Export is where a record made from flow exports came from.
type Export struct {
	Exporter     netip.Addr // the exporter, or the sFlow agent
	Version      uint16     // 5, 9, 10 (IPFIX), or 5 for sFlow v5
	Stitch       string     // biflow, paired, single, sampled
	SamplingRate uint32     // counts were scaled by it; 0 or 1: unsampled
}

// History is Zeek's history string, held by value.
type History struct {
	b [16]byte
	n uint8
}

// SetHistory copies a history string (16 letters at most are kept).
func (h *History) Set(b []byte) { h.n = uint8(copy(h.b[:], b)) }

// Bytes returns the letters; valid as long as the History is.
func (h *History) Bytes() []byte { return h.b[:h.n] }

// PayloadOrIPBytes is what each side sent as the analytics weigh it:
// payload bytes when they were seen, else the IP bytes routers count.
func (f *Flow) PayloadOrIPBytes() (orig, resp uint64) {
	if f.Observed {
		return f.OrigBytes, f.RespBytes
	}
	return f.OrigIPBytes, f.RespIPBytes
}

// OutIn is what the home side sent and received; for internal and
// external flows, the originator's view, the side that chose to connect.
func (f *Flow) OutIn() (out, in uint64) {
	o, r := f.PayloadOrIPBytes()
	if f.Direction == Inbound {
		return r, o
	}
	return o, r
}

// ServerName is the responder's name: TLS SNI, QUIC SNI, the HTTP Host,
// else the name the client resolved; "" when none is known.
func (f *Flow) ServerName() string {
	if f.Inspection == nil {
		return ""
	}
	return f.Inspection.ServerName()
}

// CommunityID is a flow's Community ID ("1:" and 28 base64 characters),
// held by value, so a record carries it without an allocation.
type CommunityID struct {
	b [32]byte
	n uint8
}

// CIDOf makes a CommunityID of b (32 bytes at most are kept).
func CIDOf(b []byte) CommunityID {
	var c CommunityID
	c.n = uint8(copy(c.b[:], b))
	return c
}

// Bytes returns the Community ID's text; valid as long as c is.
func (c *CommunityID) Bytes() []byte { return c.b[:c.n] }

func (c *CommunityID) String() string { return string(c.b[:c.n]) }

// IsZero reports whether no Community ID was set.
func (c *CommunityID) IsZero() bool { return c.n == 0 }

// Is compares with a string without making one.
func (c *CommunityID) Is(s string) bool { return string(c.b[:c.n]) == s }

// HomeHost is the flow's end in the home networks: the originator, unless
// only the responder is home; not valid when neither end is. Sinks key
// records by it, so one host's records stay together (a Kafka partition).
func (f *Flow) HomeHost() netip.Addr {
	switch f.Direction {
	case Outbound, Internal:
		return f.Orig.Addr().Unmap()
	case Inbound:
		return f.Resp.Addr().Unmap()
	}
	return netip.Addr{}
}
