package sensor

import (
	"fmt"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/record"
	"github.com/outflow-sensor/outflow/sensor/collect"
)

// ExportStats is what the decoding of flow exports counted.
type ExportStats struct {
	Datagrams uint64
	Truncated uint64 // datagrams a capture cut short, not decoded
	Records   uint64
	Flows     uint64
	Stitch    collect.StitchStats
	Sampled   collect.SampledStats
	Exporters map[netip.Addr]collect.ExporterStats
	// ExportersEvicted counts exporters forgotten to make room for new
	// ones (the table holds 4096).
	ExportersEvicted uint64
	// KernelDrops are datagrams the kernel dropped on the listeners'
	// sockets because the collector did not read them in time.
	KernelDrops uint64
	// NotAllowed are datagrams from senders outside a listener's allow=,
	// dropped unread.
	NotAllowed uint64
	// Bugs are datagrams whose records panicked after decoding (while
	// stitched); the decoder counts its own as the "panic" reason.
	Bugs   uint64
	Detect *DetectStats
}

// exportPipeline turns export datagrams into flow record lines: decode,
// stitch the directions of one-way records, sum sFlow samples. Collect feeds
// it from sockets, Replay from the exporter traffic in a capture; both pass
// the time the datagram arrived, so windows run on packet time in a replay.
type exportPipeline struct {
	dec     *collect.Decoder
	stitch  *collect.Stitcher
	sampled *collect.Sampled
	cls     *record.Classifier
	stage   recordStage
	sh      *core // its log, and where a datagram that reached a bug is reported
	rec     record.Flow
	recs    []collect.Record
	st      ExportStats
}

// newExportPipeline makes a pipeline whose records go to stage (the
// core's: core.stage).
func newExportPipeline(window time.Duration, dc collect.Config, home []netip.Prefix, seed uint16, sh *core, stage recordStage) *exportPipeline {
	p := &exportPipeline{dec: collect.NewDecoder(dc), cls: record.NewClassifier(home, seed), sh: sh, stage: stage}
	emit := func(f *collect.Flow) {
		p.st.Flows++
		exportRecord(&p.rec, f, p.cls)
		p.stage.add(&p.rec)
		if p.stage.pending() >= 64<<10 {
			p.stage.flush()
		}
	}
	p.stitch = collect.NewStitcher(window, emit)
	p.sampled = collect.NewSampled(window, emit)
	return p
}

// exportRecord fills r from a flow that exporters reported: IP bytes, and
// no payload, so entropy and handshakes are unknown.
func exportRecord(r *record.Flow, f *collect.Flow, cls *record.Classifier) {
	*r = record.Flow{
		Start: f.Start.UnixNano(), End: f.End.UnixNano(), Proto: f.Proto,
		Orig: netip.AddrPortFrom(f.Orig, f.OrigP), Resp: netip.AddrPortFrom(f.Resp, f.RespP),
		OrigPkts: f.OrigPkts, RespPkts: f.RespPkts, OrigIPBytes: f.OrigBytes, RespIPBytes: f.RespBytes,
		HTTPBody: -1, Final: true,
		Export: record.Export{Exporter: f.Exporter, Version: f.Version, Stitch: f.Stitch, SamplingRate: f.SamplingRate},
	}
	sport, dport := f.OrigP, f.RespP
	if f.Proto == 1 || f.Proto == 58 {
		// Exporters put ICMP type and code in the destination port; the
		// record gives the ports Zeek gives (type, and the counterpart
		// type or the code), as a capture does, and the Community ID
		// hashes the type and code.
		typ, code := f.RespP>>8, f.RespP&0xff
		op, rp, _ := flows.ICMPPorts(f.Proto, uint8(typ), uint8(code))
		r.Orig, r.Resp = netip.AddrPortFrom(f.Orig, op), netip.AddrPortFrom(f.Resp, rp)
		sport, dport = typ, code
	}
	cls.FinishPorts(r, sport, dport)
}

// datagram decodes one export; data is borrowed for the call only. A
// panic while decoding (the decoder recovers goflow2's and counts it as
// its "panic" reason) or while stitching the records is a bug the datagram
// reached: it is reported with the datagram, and the next one is read.
func (p *exportPipeline) datagram(from netip.Addr, data []byte, at time.Time) {
	p.st.Datagrams++
	defer func() {
		if v := recover(); v != nil {
			p.st.Bugs++
			p.sh.bug("flow export from "+from.String(), v, debug.Stack(), data, nil)
		}
	}()
	var err error
	p.recs, err = p.dec.Decode(from, data, p.recs[:0])
	if ce, ok := err.(*collect.Error); ok && ce.Reason == collect.ReasonPanic {
		p.sh.bug("flow export from "+from.String(), ce.Err, ce.Stack, data, nil)
	} else if err != nil {
		p.sh.log.Warn(err.Error(), problemKey, "export_datagram")
	}
	p.st.Records += uint64(len(p.recs))
	for i := range p.recs {
		p.stitch.Add(&p.recs[i], at)
	}
	smp := p.dec.Samples()
	for i := range smp {
		p.sampled.Add(&smp[i], at)
	}
}

func (p *exportPipeline) expire(now time.Time) {
	p.stitch.Expire(now)
	p.sampled.Expire(now)
}

// expireAndFlush ends what waited past its window and writes what is
// encoded: once a second, or as often as the capture's clock says.
func (p *exportPipeline) expireAndFlush(now time.Time) {
	p.expire(now)
	p.stage.flush()
}

// flush emits every flow still waiting and returns the counts.
func (p *exportPipeline) flush() ExportStats {
	p.stitch.Flush()
	p.sampled.Flush()
	p.stage.flush()
	p.st.Stitch = p.stitch.Stats
	p.st.Sampled = p.sampled.Stats
	p.st.ExportersEvicted = p.dec.Evicted
	p.st.Exporters = map[netip.Addr]collect.ExporterStats{}
	for a, s := range p.dec.Stats {
		p.st.Exporters[a] = *s
	}
	return p.st
}

// exportTap picks the exporter traffic out of a capture by its collector
// address and hands each datagram to an exportPipeline.
type exportTap struct {
	ports map[uint16][]netip.Addr // collector port -> addresses (none: any)
	pipe  *exportPipeline
	seen  int
}

// parseExportAddrs reads netflow://HOST:PORT and sflow://HOST:PORT; an
// empty host matches any collector address.
func parseExportAddrs(specs []string) (map[uint16][]netip.Addr, error) {
	ports := map[uint16][]netip.Addr{}
	for _, s := range specs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "netflow" && u.Scheme != "sflow") || u.Port() == "" {
			return nil, fmt.Errorf("%q: want netflow://[HOST]:PORT or sflow://[HOST]:PORT", s)
		}
		port, err := strconv.ParseUint(u.Port(), 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("%q: bad port", s)
		}
		if _, ok := ports[uint16(port)]; !ok {
			ports[uint16(port)] = nil
		}
		if h := u.Hostname(); h != "" {
			a, err := netip.ParseAddr(h)
			if err != nil {
				return nil, fmt.Errorf("%q: the host must be an IP address", s)
			}
			ports[uint16(port)] = append(ports[uint16(port)], a.Unmap())
		}
	}
	return ports, nil
}

func newExportTap(cfg ReplayConfig, sh *core) (*exportTap, error) {
	ports, err := parseExportAddrs(cfg.Exports)
	if err != nil {
		return nil, err
	}
	t := &exportTap{ports: ports}
	t.pipe = newExportPipeline(cfg.ExportWindow, collect.DefaultConfig(), cfg.HomeNets, cfg.CommunityIDSeed, sh, sh.stage())
	return t, nil
}

// packet looks at one decoded packet; it must be called for every packet,
// in capture order, so the windows advance with the capture's clock.
func (t *exportTap) packet(p *flows.Packet) {
	if t.seen++; t.seen&0x3ff == 0 {
		t.pipe.expire(time.Unix(0, p.TS))
	}
	if p.Proto != 17 {
		return
	}
	addrs, ok := t.ports[p.DstPort]
	if !ok {
		return
	}
	dst := addrOfPacket(&p.Dst, p.V6)
	if len(addrs) > 0 {
		match := false
		for _, a := range addrs {
			match = match || a == dst
		}
		if !match {
			return
		}
	}
	if len(p.Payload) < int(p.L4Len) {
		t.pipe.st.Truncated++
		return
	}
	t.pipe.datagram(addrOfPacket(&p.Src, p.V6), p.Payload[:p.L4Len], time.Unix(0, p.TS))
}

func (t *exportTap) close() ExportStats { return t.pipe.flush() }

func addrOfPacket(b *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*b).Unmap()
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}
