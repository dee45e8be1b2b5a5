package sensor

import (
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/flows"
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
	Refused   uint64
	Detect    *DetectStats
}

// exportPipeline turns export datagrams into flow record lines: decode,
// stitch the directions of one-way records, sum sFlow samples. Collect feeds
// it from sockets, Replay from the exporter traffic in a capture; both pass
// the time the datagram arrived, so windows run on packet time in a replay.
type exportPipeline struct {
	dec     *collect.Decoder
	stitch  *collect.Stitcher
	sampled *collect.Sampled
	enc     *collect.Encoder
	out     func([]byte)
	errs    io.Writer
	line    []byte
	recs    []collect.Record
	st      ExportStats
	procs   joiner // host events, when given
	det     *detector
}

func newExportPipeline(window time.Duration, dc collect.Config, home []netip.Prefix, seed uint16, errs io.Writer, out func([]byte)) *exportPipeline {
	p := &exportPipeline{dec: collect.NewDecoder(dc), enc: collect.NewEncoder(home, seed), out: out, errs: errs}
	emit := func(f *collect.Flow) {
		p.st.Flows++
		p.line = p.enc.Append(p.line[:0], f)
		var orig, resp *process.Attribution
		if p.procs != nil && (f.Proto == 6 || f.Proto == 17) {
			orig, resp = p.procs.Join(process.Flow{Proto: f.Proto,
				Orig: netip.AddrPortFrom(f.Orig, f.OrigP), Resp: netip.AddrPortFrom(f.Resp, f.RespP), Start: f.Start})
			p.line = appendAttributions(p.line, orig, resp)
		}
		if p.det != nil {
			p.det.eng.Flow(routerFlow(f, detect.CIDOf(p.enc.CommunityID(p.line)), orig, resp))
		}
		p.out(p.line)
	}
	p.stitch = collect.NewStitcher(window, emit)
	p.sampled = collect.NewSampled(window, emit)
	return p
}

// datagram decodes one export; data is borrowed for the call only.
func (p *exportPipeline) datagram(from netip.Addr, data []byte, at time.Time) {
	p.st.Datagrams++
	var err error
	p.recs, err = p.dec.Decode(from, data, p.recs[:0])
	if err != nil {
		fmt.Fprintf(p.errs, "outflow: %v\n", err)
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

// flush emits every flow still waiting and returns the counts.
func (p *exportPipeline) flush() ExportStats {
	p.stitch.Flush()
	p.sampled.Flush()
	p.st.Stitch = p.stitch.Stats
	p.st.Sampled = p.sampled.Stats
	p.st.Refused = p.dec.Refused
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
	buf   []byte
	outw  *lineWriter
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

func newExportTap(cfg ReplayConfig, out *lineWriter) (*exportTap, error) {
	ports, err := parseExportAddrs(cfg.Exports)
	if err != nil {
		return nil, err
	}
	t := &exportTap{ports: ports, outw: out}
	t.pipe = newExportPipeline(cfg.ExportWindow, collect.DefaultConfig(), cfg.HomeNets, cfg.CommunityIDSeed, cfg.Errors,
		func(b []byte) {
			t.buf = append(t.buf, b...)
			if len(t.buf) >= 64<<10 {
				t.outw.write(t.buf)
				t.buf = t.buf[:0]
			}
		})
	t.pipe.det = cfg.det
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

func (t *exportTap) close() ExportStats {
	st := t.pipe.flush()
	t.outw.write(t.buf)
	t.buf = t.buf[:0]
	return st
}

func addrOfPacket(b *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*b).Unmap()
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// routerFlow is the analytics' view of a flow an exporter reported: IP
// bytes, and no payload, so entropy and handshakes are unknown.
func routerFlow(f *collect.Flow, cid detect.CommunityID, orig, resp *process.Attribution) *detect.Flow {
	return &detect.Flow{Start: f.Start.UTC(), End: f.End.UTC(), CommunityID: cid, Proto: f.Proto,
		Orig: netip.AddrPortFrom(f.Orig.Unmap(), f.OrigP), Resp: netip.AddrPortFrom(f.Resp.Unmap(), f.RespP),
		OrigBytes: f.OrigBytes, RespBytes: f.RespBytes, OrigPkts: f.OrigPkts, RespPkts: f.RespPkts,
		Final: true, App: "unknown", HTTPBody: -1, OrigProc: orig, RespProc: resp}
}
