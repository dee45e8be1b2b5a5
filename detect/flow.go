package detect

import (
	"net/netip"
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/entropy"
)

// Flow is what the analytics see of one flow record: counts, what payload
// inspection learnt, and the process at each end. Router flows carry no
// payload (Observed false): their entropy and handshakes are unknown, not
// absent.
type Flow struct {
	Start, End  time.Time
	CommunityID CommunityID
	Proto       uint8
	Orig, Resp  netip.AddrPort
	// OrigBytes and RespBytes are application payload bytes from a capture,
	// IP bytes from router flows (which carry nothing finer).
	OrigBytes, RespBytes uint64
	OrigPkts, RespPkts   uint64
	// Final is false for an interim record of a flow that goes on; its
	// counts are the flow's so far.
	Final    bool
	Observed bool
	// App is the protocol inspection recognised: tls, quic, http, dns,
	// ssh or unknown.
	App        string
	Handshake  bool // a TLS or QUIC handshake, or an SSH banner, was seen
	ServerName string
	HTTPMethod string
	HTTPBody   int64 // the first request's body bytes, -1 when not HTTP
	// Entropy of the first application bytes, 0 originator, 1 responder.
	Class [2]entropy.Class
	Bits  [2]float64
	N     [2]int

	OrigProc, RespProc *process.Attribution
}

// out and in are the bytes the internal end sent and received.
func (f *Flow) sent(origInside bool) (out, in uint64) {
	if origInside {
		return f.OrigBytes, f.RespBytes
	}
	return f.RespBytes, f.OrigBytes
}

// ratio is out/in, with in counted at least 1 so a silent peer reads as
// a large ratio rather than a division by zero.
func ratio(out, in uint64) float64 {
	return float64(out) / float64(max(in, 1))
}

// CommunityID is a flow's Community ID ("1:" and 28 base64 characters),
// held by value: handing a flow to the analytics allocates nothing, and
// it keys the open flows' map as it is.
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

func (c *CommunityID) String() string { return string(c.b[:c.n]) }

// is compares with a string without making one.
func (c *CommunityID) is(s string) bool { return string(c.b[:c.n]) == s }
