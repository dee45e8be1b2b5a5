package collect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/flows"
)

// The hosts of pcaps/outflow-orient.pcap: the server's address is the
// lower, so an exporter that orders a biflow by address puts it first.
var (
	orientClient = netip.MustParseAddr("10.77.0.2")
	orientServer = netip.MustParseAddr("10.9.0.10")
	orientT0     = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
)

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// oneWay is a one-way TCP record from src to dst starting at T0+startMs.
func oneWay(src netip.Addr, sp uint16, dst netip.Addr, dp uint16, pkts, bytes uint64, flags uint8, startMs int) Record {
	start := orientT0.Add(time.Duration(startMs) * time.Millisecond)
	return Record{Exporter: netip.MustParseAddr("127.0.0.1"), Version: 10, Proto: 6, Src: src, SrcPort: sp, Dst: dst,
		DstPort: dp, Packets: pkts, Bytes: bytes, TCPFlags: flags, Start: start, End: start.Add(2 * time.Second)}
}

// stitchAll runs records through a Stitcher, in the order given, and
// returns every flow it emits once flushed.
func stitchAll(recs ...Record) ([]Flow, StitchStats) {
	var out []Flow
	s := NewStitcher(time.Minute, func(f *Flow) { out = append(out, *f) })
	for i := range recs {
		s.Add(&recs[i], orientT0.Add(time.Duration(i)*time.Millisecond))
	}
	s.Flush()
	return out, s.Stats
}

func flowString(f *Flow) string {
	return fmt.Sprintf("%s:%d > %s:%d orig %d pkts %d bytes, resp %d pkts %d bytes, %s",
		f.Orig, f.OrigP, f.Resp, f.RespP, f.OrigPkts, f.OrigBytes, f.RespPkts, f.RespBytes, f.Stitch)
}

func wantFlow(t *testing.T, got []Flow, want string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%d flows, want 1: %v", len(got), got)
	}
	if s := flowString(&got[0]); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}

// TestServerSide: the rule, Zeek's likely server ports then the lower port,
// case by case, the recording's ports among them.
func TestServerSide(t *testing.T) {
	cases := []struct {
		proto  uint8
		a, b   uint16
		server bool
		ev     flows.ServerEvidence
	}{
		{6, 443, 51000, true, flows.ServerByLikelyPort},
		{6, 51000, 443, false, flows.ServerByLikelyPort},
		{6, 15001, 4433, false, flows.ServerByLowerPort}, // TLS on 4433 is in no list
		{6, 9001, 15006, true, flows.ServerByLowerPort},  // the raw channel
		{6, 2049, 1023, false, flows.ServerByLowerPort},  // NFS is not in Zeek's list: the lower port wins
		{6, 22, 80, true, flows.ServerByBothLikely},
		{6, 8080, 80, false, flows.ServerByBothLikely},
		// Zeek lists 20000 (DNP3): a client that happens to bind it is
		// taken for a server, by Zeek as here, unless its SYN is seen.
		{6, 20000, 4433, true, flows.ServerByLikelyPort},
		{17, 53, 40000, true, flows.ServerByLikelyPort},
		{17, 40000, 53, false, flows.ServerByLikelyPort},
		{17, 123, 5353, true, flows.ServerByBothLikely},
		{17, 5000, 5000, false, flows.NoServerEvidence},
		{6, 0, 5000, false, flows.NoServerEvidence},
		{132, 38412, 50000, true, flows.ServerByLowerPort}, // SCTP: ports, no likely set
		{1, 0, 0x0800, false, flows.NoServerEvidence},      // ICMP: its types decide
		{58, 0, 0x8000, false, flows.NoServerEvidence},
		{47, 0, 0, false, flows.NoServerEvidence},
	}
	for _, c := range cases {
		server, ev := flows.ServerSide(c.proto, c.a, c.b)
		if server != c.server || ev != c.ev {
			t.Errorf("ServerSide(%d, %d, %d) = %v, %d; want %v, %d", c.proto, c.a, c.b, server, ev, c.server, c.ev)
		}
		if ev != flows.NoServerEvidence {
			// Symmetric: the other order names the same end.
			if s2, ev2 := flows.ServerSide(c.proto, c.b, c.a); s2 == server || ev2 != ev {
				t.Errorf("ServerSide(%d, %d, %d) = %v, %d: not the mirror of (%d, %d)", c.proto, c.b, c.a, s2, ev2, c.a, c.b)
			}
		}
	}
}

// TestBiflowReversedByAddress: softflowd -v 10 -b puts the lower address
// first and exports no biflowDirection. A client at 10.77.0.2 downloading
// from 10.9.0.10:4433 arrives as the server's record; it comes out with the
// client as originator and the bytes swapped with it. A direction the
// exporter states, and NSEL's initiator order, are kept.
func TestBiflowReversedByAddress(t *testing.T) {
	bi := func(dir uint8, version uint16) Record {
		r := oneWay(orientServer, 4433, orientClient, 15001, 760, 1100000, tcpSYN|tcpACK|tcpPSH|tcpFIN, 0)
		r.Biflow, r.RevPackets, r.RevBytes, r.BiflowDirection, r.Version = true, 400, 21000, dir, version
		return r
	}
	got, st := stitchAll(bi(0, 10))
	wantFlow(t, got, "10.77.0.2:15001 > 10.9.0.10:4433 orig 400 pkts 21000 bytes, resp 760 pkts 1100000 bytes, biflow")
	if st.Biflow != 1 {
		t.Errorf("stats %+v", st)
	}
	if got[0].RespFlags != tcpSYN|tcpACK|tcpPSH|tcpFIN || got[0].OrigFlags != 0 {
		t.Errorf("flags: orig %#x resp %#x", got[0].OrigFlags, got[0].RespFlags)
	}
	// biflowDirection 3 (perimeter) says nothing of the initiator.
	got, _ = stitchAll(bi(3, 10))
	wantFlow(t, got, "10.77.0.2:15001 > 10.9.0.10:4433 orig 400 pkts 21000 bytes, resp 760 pkts 1100000 bytes, biflow")
	// RFC 5103 biflowDirection 1: the source initiated, whatever its port.
	got, _ = stitchAll(bi(1, 10))
	wantFlow(t, got, "10.9.0.10:4433 > 10.77.0.2:15001 orig 760 pkts 1100000 bytes, resp 400 pkts 21000 bytes, biflow")
	// A NetFlow v9 biflow is NSEL's initiator-to-responder record.
	got, _ = stitchAll(bi(0, 9))
	wantFlow(t, got, "10.9.0.10:4433 > 10.77.0.2:15001 orig 760 pkts 1100000 bytes, resp 400 pkts 21000 bytes, biflow")
	// biflowDirection 2 on a record already in the client's order.
	r := oneWay(orientClient, 15001, orientServer, 4433, 400, 21000, tcpSYN|tcpACK, 0)
	r.Biflow, r.RevPackets, r.RevBytes, r.BiflowDirection = true, 760, 1100000, 2
	got, _ = stitchAll(r)
	wantFlow(t, got, "10.9.0.10:4433 > 10.77.0.2:15001 orig 760 pkts 1100000 bytes, resp 400 pkts 21000 bytes, biflow")
}

// TestPairedHighPorts: issue 12's upload. A client on 15006 sends 1.7 MB to
// a raw channel on 9001, both ports above 1023 and in no list. The server's
// record arrives first (lower address first, as softflowd sends them) with
// the same start, or even an earlier one (an exporter stamping packets as a
// queue drains): the lower port names the server all the same, and the
// upload reads as one.
func TestPairedHighPorts(t *testing.T) {
	for _, serverStartMs := range []int{0, -5, -900, -3000} {
		srv := oneWay(orientServer, 9001, orientClient, 15006, 610, 31760, tcpSYN|tcpACK|tcpFIN, serverStartMs)
		cli := oneWay(orientClient, 15006, orientServer, 9001, 1200, 1762452, tcpSYN|tcpACK|tcpPSH|tcpFIN, 0)
		got, st := stitchAll(srv, cli)
		wantFlow(t, got, "10.77.0.2:15006 > 10.9.0.10:9001 orig 1200 pkts 1762452 bytes, resp 610 pkts 31760 bytes, paired")
		if st.Paired != 1 {
			t.Errorf("stats %+v", st)
		}
		if len(got) == 1 && !got[0].Start.Equal(orientT0.Add(time.Duration(min(serverStartMs, 0))*time.Millisecond)) {
			t.Errorf("start %v: want the earlier of the two", got[0].Start)
		}
		// Arrival order does not matter either.
		got, _ = stitchAll(cli, srv)
		wantFlow(t, got, "10.77.0.2:15006 > 10.9.0.10:9001 orig 1200 pkts 1762452 bytes, resp 610 pkts 31760 bytes, paired")
	}
	// TLS on 4433, a download: the client's record is the small one.
	srv := oneWay(orientServer, 4433, orientClient, 15001, 760, 1100000, tcpSYN|tcpACK|tcpPSH|tcpFIN, 0)
	cli := oneWay(orientClient, 15001, orientServer, 4433, 400, 21000, tcpSYN|tcpACK|tcpPSH|tcpFIN, 0)
	got, _ := stitchAll(srv, cli)
	wantFlow(t, got, "10.77.0.2:15001 > 10.9.0.10:4433 orig 400 pkts 21000 bytes, resp 760 pkts 1100000 bytes, paired")
}

// TestPairedRefused: a SYN to a closed high port answered by a RST. The
// caller's record holds SYN without ACK, and that outweighs the ports (the
// lower one here is the caller's).
func TestPairedRefused(t *testing.T) {
	syn := oneWay(orientClient, 30000, orientServer, 40001, 1, 60, tcpSYN, 0)
	rst := oneWay(orientServer, 40001, orientClient, 30000, 1, 40, tcpRST|tcpACK, 0)
	got, _ := stitchAll(rst, syn)
	wantFlow(t, got, "10.77.0.2:30000 > 10.9.0.10:40001 orig 1 pkts 60 bytes, resp 1 pkts 40 bytes, paired")
}

// TestLoneServerRecord: one direction only. A record from the server's
// port (likely, or the lower) has the client as its destination; a record
// of SYNs alone is its sender's call, whatever the ports.
func TestLoneServerRecord(t *testing.T) {
	cases := []struct {
		rec  Record
		want string
	}{
		{oneWay(orientServer, 4433, orientClient, 15001, 760, 1100000, tcpACK|tcpPSH, 0),
			"10.77.0.2:15001 > 10.9.0.10:4433 orig 0 pkts 0 bytes, resp 760 pkts 1100000 bytes, single"},
		{oneWay(orientServer, 443, orientClient, 15001, 9, 5000, tcpACK|tcpPSH, 0),
			"10.77.0.2:15001 > 10.9.0.10:443 orig 0 pkts 0 bytes, resp 9 pkts 5000 bytes, single"},
		{oneWay(orientClient, 15006, orientServer, 9001, 1200, 1762452, tcpACK|tcpPSH, 0),
			"10.77.0.2:15006 > 10.9.0.10:9001 orig 1200 pkts 1762452 bytes, resp 0 pkts 0 bytes, single"},
		{oneWay(orientClient, 30000, orientServer, 40001, 3, 180, tcpSYN, 0),
			"10.77.0.2:30000 > 10.9.0.10:40001 orig 3 pkts 180 bytes, resp 0 pkts 0 bytes, single"},
	}
	for _, c := range cases {
		got, st := stitchAll(c.rec)
		wantFlow(t, got, c.want)
		if st.Single != 1 {
			t.Errorf("stats %+v", st)
		}
	}
	// UDP: a DNS answer alone.
	dns := oneWay(orientServer, 53, orientClient, 41000, 1, 120, 0, 0)
	dns.Proto = 17
	got, _ := stitchAll(dns)
	wantFlow(t, got, "10.77.0.2:41000 > 10.9.0.10:53 orig 0 pkts 0 bytes, resp 1 pkts 120 bytes, single")
}

// TestStartTimeLastResort: when the ports cannot tell (equal ports, ICMP),
// the earlier start originates, whichever record arrived first; a DNS
// reply stamped before its query is still the reply.
func TestStartTimeLastResort(t *testing.T) {
	a := oneWay(orientServer, 5000, orientClient, 5000, 10, 1000, 0, 0)
	b := oneWay(orientClient, 5000, orientServer, 5000, 20, 2000, 0, -40)
	a.Proto, b.Proto = 17, 17
	got, _ := stitchAll(a, b)
	wantFlow(t, got, "10.77.0.2:5000 > 10.9.0.10:5000 orig 20 pkts 2000 bytes, resp 10 pkts 1000 bytes, paired")

	// ICMP echo: the reply's record first, the request's start earlier.
	reply := oneWay(orientServer, 0, orientClient, 0x0000, 3, 252, 0, 1)
	req := oneWay(orientClient, 0, orientServer, 0x0800, 3, 252, 0, 0)
	reply.Proto, req.Proto = 1, 1
	got, _ = stitchAll(reply, req)
	wantFlow(t, got, "10.77.0.2:0 > 10.9.0.10:2048 orig 3 pkts 252 bytes, resp 3 pkts 252 bytes, paired")

	q := oneWay(orientClient, 41000, orientServer, 53, 1, 60, 0, 0)
	r := oneWay(orientServer, 53, orientClient, 41000, 1, 120, 0, -1)
	q.Proto, r.Proto = 17, 17
	got, _ = stitchAll(r, q)
	wantFlow(t, got, "10.77.0.2:41000 > 10.9.0.10:53 orig 1 pkts 60 bytes, resp 1 pkts 120 bytes, paired")
}

// TestGroupNeverCalls: a record to a multicast or broadcast address is its
// sender's, whatever the ports say (from a real capture, nDPI's 1kxun.pcap:
// a DHCP offer from 67 to 255.255.255.255:68, where 67 is a likely server
// port; a DHCPv6 solicit from 546 to ff02::1:2:547, where 546 is the lower).
// A biflow in which only the destination sent anything is that sender's
// lone record: NTP from 123 to 123, softflowd -b having put the silent,
// lower address first.
func TestGroupNeverCalls(t *testing.T) {
	offer := oneWay(netip.MustParseAddr("192.168.119.1"), 67, netip.MustParseAddr("255.255.255.255"), 68, 1, 328, 0, 0)
	solicit := oneWay(netip.MustParseAddr("fe80::406:55a8:6453:25dd"), 546, netip.MustParseAddr("ff02::1:2"), 547, 1, 118, 0, 0)
	offer.Proto, solicit.Proto = 17, 17
	got, _ := stitchAll(offer)
	wantFlow(t, got, "192.168.119.1:67 > 255.255.255.255:68 orig 1 pkts 328 bytes, resp 0 pkts 0 bytes, single")
	got, _ = stitchAll(solicit)
	wantFlow(t, got, "fe80::406:55a8:6453:25dd:546 > ff02::1:2:547 orig 1 pkts 118 bytes, resp 0 pkts 0 bytes, single")

	ntp := oneWay(netip.MustParseAddr("17.253.26.125"), 123, netip.MustParseAddr("192.168.5.16"), 123, 0, 0, 0, 0)
	ntp.Proto, ntp.Biflow, ntp.RevPackets, ntp.RevBytes = 17, true, 1, 76
	got, _ = stitchAll(ntp)
	wantFlow(t, got, "192.168.5.16:123 > 17.253.26.125:123 orig 1 pkts 76 bytes, resp 0 pkts 0 bytes, biflow")
	// Only the destination sent, from a server port: the silent source
	// is the client.
	dns := oneWay(orientClient, 41000, orientServer, 53, 0, 0, 0, 0)
	dns.Proto, dns.Biflow, dns.RevPackets, dns.RevBytes = 17, true, 1, 120
	got, _ = stitchAll(dns)
	wantFlow(t, got, "10.77.0.2:41000 > 10.9.0.10:53 orig 0 pkts 0 bytes, resp 1 pkts 120 bytes, biflow")
}
