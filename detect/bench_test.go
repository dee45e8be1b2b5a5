package detect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkEngineFlow: the analytics' cost per flow record, without
// process data, for a stream of short flows from ever new internal hosts
// to 200 destinations (the replay benchmark's worst case), and for flows
// among 1000 hosts and 1000 destinations.
func BenchmarkEngineFlow(b *testing.B) {
	for _, c := range []struct {
		name         string
		hosts, dests int
	}{{"new-hosts", 1 << 30, 200}, {"1k-hosts-1k-dests", 1000, 1000}} {
		b.Run(c.name, func(b *testing.B) {
			e := New(Compiled(), NewState(64<<20), nil, func(*Alert) {})
			f := &Flow{Proto: 6, OrigBytes: 500, RespBytes: 4000, OrigPkts: 4, RespPkts: 3, Final: true, Observed: true, App: "tls",
				Handshake: true, HTTPBody: -1}
			names := make([]string, c.dests)
			for i := range names {
				names[i] = fmt.Sprintf("site%d.example", i)
			}
			t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h := i % c.hosts
				f.Orig = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)}), uint16(1024+i%60000))
				f.Resp = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 200)}), 443)
				f.ServerName = names[i%c.dests]
				f.Start = t0.Add(time.Duration(i) * time.Millisecond)
				f.End = f.Start.Add(time.Second)
				f.CommunityID = CIDOf([]byte("1:x"))
				e.Flow(f)
			}
		})
	}
}

// BenchmarkStateMemory: the state's memory, as fastcache accounts it
// (its chunks in use; a rewritten value takes new room until the ring
// wraps), per destination: 1M destinations reached once by one host with
// small flows (prevalence only), and 200k destinations reached by 5 hosts
// each with 100 KiB uploads (prevalence and an upload window per host and
// destination).
func BenchmarkStateMemory(b *testing.B) {
	for _, c := range []struct {
		name         string
		dests, hosts int
		out          uint64
	}{{"1M-dests-1-host", 1000000, 1, 2000}, {"200k-dests-5-hosts-uploads", 200000, 5, 100 << 10}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				st := NewState(512 << 20)
				e := New(Compiled(), st, nil, func(*Alert) {})
				f := &Flow{Proto: 6, OrigBytes: c.out, RespBytes: 4000, OrigPkts: 80, RespPkts: 30, Final: true, Observed: true,
					App: "tls", Handshake: true, HTTPBody: -1, CommunityID: CIDOf([]byte("1:x"))}
				t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
				for d := 0; d < c.dests; d++ {
					for h := 0; h < c.hosts; h++ {
						f.Orig = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(h), 1}), 40000)
						f.Resp = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, byte(d >> 16), byte(d >> 8), byte(d)}), 443)
						f.ServerName = fmt.Sprintf("host%d.site%d.example", d%7, d)
						f.Start = t0.Add(time.Duration(d*c.hosts+h) * time.Millisecond)
						f.End = f.Start.Add(time.Second)
						e.Flow(f)
					}
				}
				b.ReportMetric(float64(st.Bytes())/float64(c.dests), "B/destination")
				b.ReportMetric(float64(st.Entries()), "entries")
			}
		})
	}
}
