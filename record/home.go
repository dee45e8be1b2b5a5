package record

import (
	"net/netip"

	"github.com/outflow-sensor/outflow/flows/communityid"
)

// Direction of a flow relative to the home networks.
type Direction uint8

// Directions.
const (
	External Direction = iota // neither end is home
	Outbound                  // from home to elsewhere
	Inbound                   // from elsewhere to home
	Internal                  // both ends home
)

func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	case Internal:
		return "internal"
	}
	return "external"
}

// DefaultHomeNets are the RFC 1918 and ULA ranges, used when none are set.
var DefaultHomeNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// Classifier finishes records: their direction against the home networks
// and their Community ID. The sensor holds one set of home networks, here;
// one Classifier per goroutine (the hasher keeps a scratch buffer).
type Classifier struct {
	home []netip.Prefix
	cid  *communityid.Hasher
	buf  []byte
}

// NewClassifier returns a Classifier for the home networks (nil: the
// defaults) hashing Community IDs with seed.
func NewClassifier(home []netip.Prefix, seed uint16) *Classifier {
	if home == nil {
		home = DefaultHomeNets
	}
	return &Classifier{home: home, cid: communityid.New(seed)}
}

// Home reports whether an address lies in the home networks.
func (c *Classifier) Home(a netip.Addr) bool {
	for _, p := range c.home {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Direction classifies a flow by its endpoints.
func (c *Classifier) Direction(orig, resp netip.Addr) Direction {
	oh, rh := c.Home(orig), c.Home(resp)
	switch {
	case oh && rh:
		return Internal
	case oh:
		return Outbound
	case rh:
		return Inbound
	}
	return External
}

// Finish sets the record's direction and Community ID, hashed over its
// endpoints and ports.
func (c *Classifier) Finish(f *Flow) {
	c.FinishPorts(f, f.Orig.Port(), f.Resp.Port())
}

// FinishPorts is Finish with the ports the Community ID is hashed over
// given: an exported ICMP record hashes its type and code, which its
// ports (Zeek's) no longer hold.
func (c *Classifier) FinishPorts(f *Flow, sport, dport uint16) {
	f.Direction = c.Direction(f.Orig.Addr(), f.Resp.Addr())
	// An IPv4-mapped address stays 16 bytes: it came in an IPv6 packet.
	oa, ra := f.Orig.Addr(), f.Resp.Addr()
	var os, rs [16]byte
	var ob, rb []byte
	if oa.Is4() && ra.Is4() {
		o4, r4 := oa.As4(), ra.As4()
		copy(os[:], o4[:])
		copy(rs[:], r4[:])
		ob, rb = os[:4], rs[:4]
	} else {
		os, rs = oa.As16(), ra.As16()
		ob, rb = os[:], rs[:]
	}
	c.buf = c.cid.Append(c.buf[:0], ob, rb, f.Proto, sport, dport)
	f.CommunityID = CIDOf(c.buf)
}
