// Package collect turns flow exports from routers (NetFlow v5 and v9, IPFIX,
// sFlow v5) into flow records. The wire formats, templates and options are
// decoded by github.com/netsampler/goflow2/v2; this package keeps template
// state per exporter within bounds, holds data sets that arrive before their
// template, applies sampling rates, and normalises each exported record to
// one Record with the counters Outflow needs.
package collect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
)

// Record is one exported flow record, one direction unless Biflow.
type Record struct {
	Exporter   netip.Addr
	Version    uint16 // 5, 9, 10 (IPFIX), or 5000 for sFlow v5 samples
	ObsDomain  uint32 // IPFIX observation domain, NetFlow v9 source ID
	TemplateID uint16
	Src, Dst   netip.Addr
	SrcPort    uint16
	DstPort    uint16 // ICMP: type<<8 | code, as exporters encode it
	Proto      uint8
	TCPFlags   uint8
	Bytes      uint64 // layer-3 octets as exported, times the sampling rate
	Packets    uint64
	// Biflow records (RFC 5103 reverse elements, Cisco NSEL initiator and
	// responder counters) carry the other direction too.
	Biflow                 bool
	RevBytes, RevPackets   uint64
	BiflowDirection        uint8 // IE 239 when exported: 1 initiator, 2 reverse initiator, 3 perimeter
	Start, End             time.Time
	SamplingRate           uint32 // 0 or 1: not sampled
	InIf, OutIf            uint32
	startRel, endRel       uint32 // sysUpTime-relative times (v9), resolved after the record is read
	hasStartRel, hasEndRel bool
}

// Reason says why a datagram or a set was not decoded.
type Reason uint8

// Reasons, counted per exporter.
const (
	ReasonNone             Reason = iota
	ReasonGarbage                 // not a NetFlow, IPFIX or sFlow datagram
	ReasonTruncated               // a header or set runs past the datagram
	ReasonMalformed               // goflow2 refused a set or record
	ReasonNoTemplate              // data for a template never seen, dropped when the hold was full
	ReasonTemplateFlood           // more templates than an exporter may hold
	ReasonTooManyExporters        // an exporter beyond MaxExporters
	ReasonPanic                   // the decoder panicked; recovered
	numReasons
)

var reasonNames = [...]string{"", "garbage", "truncated", "malformed", "no_template", "template_flood", "too_many_exporters", "panic"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// NumReasons is the number of Reason values.
const NumReasons = int(numReasons)

// Error is a datagram that could not be decoded in full.
type Error struct {
	Exporter netip.Addr
	Reason   Reason
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("collect: exporter %s: %s: %v", e.Exporter, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Config bounds the decoder's state.
type Config struct {
	MaxExporters int
	// MaxTemplates bounds the templates one exporter may define.
	MaxTemplates int
	// HoldSets and HoldBytes bound, per exporter, the data sets kept while
	// their template is awaited.
	HoldSets, HoldBytes int
	// SamplingRate, when not 0, overrides what exporters announce.
	SamplingRate uint32
}

// DefaultConfig returns room for 4096 exporters of 1024 templates each and
// 64 held sets (256 KiB) per exporter.
func DefaultConfig() Config {
	return Config{MaxExporters: 4096, MaxTemplates: 1024, HoldSets: 64, HoldBytes: 256 << 10}
}

// ExporterStats counts one exporter's datagrams, records and failures.
type ExporterStats struct {
	Datagrams uint64
	Records   uint64
	Held      uint64 // data sets held for a template, later decoded or dropped
	Errors    [NumReasons]uint64
}

// Decoder decodes datagrams from any number of exporters. Not safe for
// concurrent use.
type Decoder struct {
	cfg       Config
	exporters map[netip.Addr]*exporter
	Stats     map[netip.Addr]*ExporterStats
	// Refused counts datagrams from exporters beyond MaxExporters.
	Refused uint64
	samples []RawSample
}

type heldSet struct {
	version   uint16
	obsDomain uint32
	id        uint16
	data      []byte
	hdr       header
}

// header is what a datagram's header says about time.
type header struct {
	exportSecs uint32
	sysUptime  uint32 // v9 only, milliseconds
}

type exporter struct {
	templates *templateStore
	sampling  map[uint32]uint32 // observation domain -> rate from options data
	selectors map[selectorKey]uint32
	held      []heldSet
	heldBytes int
	stats     *ExporterStats
}

// NewDecoder returns a Decoder with no exporter state yet.
func NewDecoder(cfg Config) *Decoder {
	d := DefaultConfig()
	if cfg.MaxExporters <= 0 {
		cfg.MaxExporters = d.MaxExporters
	}
	if cfg.MaxTemplates <= 0 {
		cfg.MaxTemplates = d.MaxTemplates
	}
	if cfg.HoldSets <= 0 {
		cfg.HoldSets = d.HoldSets
	}
	if cfg.HoldBytes <= 0 {
		cfg.HoldBytes = d.HoldBytes
	}
	return &Decoder{cfg: cfg, exporters: map[netip.Addr]*exporter{}, Stats: map[netip.Addr]*ExporterStats{}}
}

func (d *Decoder) exporter(addr netip.Addr) *exporter {
	if e := d.exporters[addr]; e != nil {
		return e
	}
	if len(d.exporters) >= d.cfg.MaxExporters {
		return nil
	}
	e := &exporter{
		templates: newTemplateStore(d.cfg.MaxTemplates),
		sampling:  map[uint32]uint32{},
		selectors: map[selectorKey]uint32{},
		stats:     &ExporterStats{},
	}
	d.exporters[addr] = e
	d.Stats[addr] = e.stats
	return e
}

// Decode decodes one datagram from exporter and appends its flow records to
// out. Bad input is counted and reported as *Error; the records decoded
// before it are still returned.
func (d *Decoder) Decode(from netip.Addr, datagram []byte, out []Record) (recs []Record, err error) {
	from = from.Unmap()
	e := d.exporter(from)
	if e == nil {
		d.Refused++
		return out, &Error{Exporter: from, Reason: ReasonTooManyExporters, Err: errors.New("exporter limit reached")}
	}
	e.stats.Datagrams++
	n := len(out)
	defer func() {
		// goflow2 has panicked on hostile input before; a datagram must
		// not take the collector down.
		if p := recover(); p != nil {
			recs, err = out[:n], d.fail(e, from, ReasonPanic, fmt.Errorf("%v", p))
		}
		e.stats.Records += uint64(len(recs) - n)
	}()
	if len(datagram) < 4 {
		return out, d.fail(e, from, ReasonTruncated, errors.New("datagram shorter than a header"))
	}
	switch v := binary.BigEndian.Uint16(datagram); {
	case v == 5:
		return d.decodeV5(e, from, datagram, out)
	case v == 9 || v == 10:
		return d.decodeTemplated(e, from, v, datagram, out)
	case binary.BigEndian.Uint32(datagram) == 5:
		return d.decodeSFlow(e, from, datagram, out)
	}
	return out, d.fail(e, from, ReasonGarbage, fmt.Errorf("version %d", binary.BigEndian.Uint16(datagram)))
}

func (d *Decoder) fail(e *exporter, from netip.Addr, r Reason, err error) error {
	e.stats.Errors[r]++
	return &Error{Exporter: from, Reason: r, Err: err}
}

func (d *Decoder) rate(e *exporter, obs uint32, announced uint32) uint32 {
	if d.cfg.SamplingRate != 0 {
		return d.cfg.SamplingRate
	}
	if announced > 1 {
		return announced
	}
	return e.sampling[obs]
}

func (d *Decoder) decodeV5(e *exporter, from netip.Addr, b []byte, out []Record) ([]Record, error) {
	var p netflowlegacy.PacketNetFlowV5
	if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(b), &p); err != nil {
		return out, d.fail(e, from, ReasonTruncated, err)
	}
	// The top two bits of the sampling field give the mode.
	rate := d.rate(e, 0, uint32(p.SamplingInterval&0x3fff))
	exportMs := int64(p.UnixSecs)*1000 + int64(p.UnixNSecs)/1e6
	at := func(up uint32) time.Time {
		return time.UnixMilli(exportMs - int64(p.SysUptime-up)).UTC()
	}
	for _, r := range p.Records {
		rec := Record{
			Exporter: from, Version: 5,
			Src: addr4(uint32(r.SrcAddr)), Dst: addr4(uint32(r.DstAddr)),
			SrcPort: r.SrcPort, DstPort: r.DstPort, Proto: r.Proto, TCPFlags: r.TCPFlags,
			Bytes: uint64(r.DOctets), Packets: uint64(r.DPkts),
			Start: at(r.First), End: at(r.Last),
			InIf: uint32(r.Input), OutIf: uint32(r.Output),
		}
		applyRate(&rec, rate)
		out = append(out, rec)
	}
	return out, nil
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func applyRate(r *Record, rate uint32) {
	if rate > 1 {
		r.SamplingRate = rate
		r.Bytes *= uint64(rate)
		r.Packets *= uint64(rate)
		r.RevBytes *= uint64(rate)
		r.RevPackets *= uint64(rate)
	}
}

func (d *Decoder) decodeTemplated(e *exporter, from netip.Addr, version uint16, b []byte, out []Record) ([]Record, error) {
	var (
		v9    netflow.NFv9Packet
		ipfix netflow.IPFIXPacket
		sets  []interface{}
		obs   uint32
		hdr   header
	)
	if err := framing(version, b); err != nil {
		return out, d.fail(e, from, ReasonTruncated, err)
	}
	before := e.templates.added
	err := netflow.DecodeMessageVersion(bytes.NewBuffer(b), e.templates, &v9, &ipfix)
	if version == 9 {
		sets, obs, hdr = v9.FlowSets, v9.SourceId, header{exportSecs: v9.UnixSeconds, sysUptime: v9.SystemUptime}
	} else {
		sets, obs, hdr = ipfix.FlowSets, ipfix.ObservationDomainId, header{exportSecs: ipfix.ExportTime}
	}
	var failure error
	if err != nil && !errors.Is(err, netflow.ErrorTemplateNotFound) {
		switch {
		case errors.Is(err, errTemplateFlood):
			failure = d.fail(e, from, ReasonTemplateFlood, err)
		case errors.Is(err, errShort):
			failure = d.fail(e, from, ReasonTruncated, err)
		default:
			failure = d.fail(e, from, ReasonMalformed, err)
		}
	}
	// Options first: a sampling rate in this datagram applies to its data.
	for _, s := range sets {
		if o, ok := s.(netflow.OptionsDataFlowSet); ok {
			e.learnOptions(obs, o)
		}
	}
	for _, s := range sets {
		switch fs := s.(type) {
		case netflow.DataFlowSet:
			for _, r := range fs.Records {
				out = append(out, d.record(e, from, version, obs, fs.Id, hdr, r.Values))
			}
		case netflow.RawFlowSet:
			if fs.Id >= 256 {
				d.hold(e, from, heldSet{version: version, obsDomain: obs, id: fs.Id, data: bytes.Clone(fs.Records), hdr: hdr})
			}
		}
	}
	if e.templates.added != before && len(e.held) > 0 {
		out = d.release(e, from, out)
	}
	return out, failure
}

func (d *Decoder) hold(e *exporter, from netip.Addr, h heldSet) {
	if len(e.held) >= d.cfg.HoldSets || e.heldBytes+len(h.data) > d.cfg.HoldBytes {
		// Keep the newest: the oldest has waited longest for a template
		// that may never come.
		if len(e.held) == 0 {
			_ = d.fail(e, from, ReasonNoTemplate, errors.New("set larger than the hold"))
			return
		}
		e.heldBytes -= len(e.held[0].data)
		e.held = e.held[1:]
		_ = d.fail(e, from, ReasonNoTemplate, errors.New("hold full"))
	}
	e.stats.Held++
	e.held = append(e.held, h)
	e.heldBytes += len(h.data)
}

// release decodes the held sets whose template is now known.
func (d *Decoder) release(e *exporter, from netip.Addr, out []Record) []Record {
	kept := e.held[:0]
	for _, h := range e.held {
		t, err := e.templates.GetTemplate(h.version, h.obsDomain, h.id)
		if err != nil {
			kept = append(kept, h)
			continue
		}
		e.heldBytes -= len(h.data)
		buf := bytes.NewBuffer(h.data)
		switch tr := t.(type) {
		case netflow.TemplateRecord:
			recs, err := netflow.DecodeDataSet(h.version, buf, tr.Fields)
			if err != nil {
				_ = d.fail(e, from, ReasonMalformed, err)
			}
			for _, r := range recs {
				out = append(out, d.record(e, from, h.version, h.obsDomain, h.id, h.hdr, r.Values))
			}
		case netflow.IPFIXOptionsTemplateRecord:
			recs, _ := netflow.DecodeOptionsDataSet(h.version, buf, tr.Scopes, tr.Options)
			e.learnOptions(h.obsDomain, netflow.OptionsDataFlowSet{Records: recs})
		case netflow.NFv9OptionsTemplateRecord:
			recs, _ := netflow.DecodeOptionsDataSet(h.version, buf, tr.Scopes, tr.Options)
			e.learnOptions(h.obsDomain, netflow.OptionsDataFlowSet{Records: recs})
		}
	}
	e.held = kept
	return out
}

// Information elements read (IANA numbering, which NetFlow v9 shares for
// these), and the enterprise number of RFC 5103's reverse elements.
const (
	ieOctetDelta         = 1
	iePacketDelta        = 2
	ieProto              = 4
	ieTCPFlags           = 6
	ieSrcPort            = 7
	ieSrc4               = 8
	ieInIf               = 10
	ieDstPort            = 11
	ieDst4               = 12
	ieOutIf              = 14
	ieEndUptime          = 21
	ieStartUptime        = 22
	ieSrc6               = 27
	ieDst6               = 28
	ieICMPType4          = 32
	ieSamplingIntv       = 34
	ieSamplerRandom      = 50
	ieOctetTotal         = 85
	iePacketTotal        = 86
	ieICMPType6          = 139
	ieStartSec           = 150
	ieEndSec             = 151
	ieStartMs            = 152
	ieEndMs              = 153
	ieStartUs            = 154
	ieEndUs              = 155
	ieInitiatorOctets    = 231
	ieResponderOctets    = 232
	ieBiflowDirection    = 239
	ieInitiatorPkts      = 298
	ieResponderPkts      = 299
	ieSamplingPktIntv    = 305
	ieSamplingPktSpace   = 306
	ieSamplingSize       = 309
	ieSamplingPopulation = 310
	ieSelectorID         = 302
	ieSamplerID          = 48
	penReverse           = 29305
)

func uintOf(v interface{}) (uint64, bool) {
	b, ok := v.([]byte)
	if !ok || len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x, true
}

func addrOf(v interface{}) (netip.Addr, bool) {
	b, ok := v.([]byte)
	if !ok {
		return netip.Addr{}, false
	}
	return netip.AddrFromSlice(b)
}

// record normalises one data record.
func (d *Decoder) record(e *exporter, from netip.Addr, version uint16, obs uint32, tid uint16, hdr header, vals []netflow.DataField) Record {
	r := Record{Exporter: from, Version: version, ObsDomain: obs, TemplateID: tid}
	var totalBytes, totalPkts, initB, respB, initP, respP uint64
	var haveDelta, haveInit, haveSel bool
	var sel uint64
	var own uint32 // a rate the record itself carries
	for _, f := range vals {
		if f.PenProvided && f.Pen == penReverse {
			switch f.Type {
			case ieOctetDelta, ieOctetTotal:
				r.RevBytes, _ = uintOf(f.Value)
				r.Biflow = true
			case iePacketDelta, iePacketTotal:
				r.RevPackets, _ = uintOf(f.Value)
				r.Biflow = true
			}
			continue
		}
		if f.PenProvided {
			continue // other vendors' elements: not ours to read
		}
		x, _ := uintOf(f.Value)
		switch f.Type {
		case ieOctetDelta:
			r.Bytes, haveDelta = x, true
		case iePacketDelta:
			r.Packets = x
		case ieOctetTotal:
			totalBytes = x
		case iePacketTotal:
			totalPkts = x
		case ieProto:
			r.Proto = uint8(x)
		case ieTCPFlags:
			r.TCPFlags = uint8(x)
		case ieSrcPort:
			r.SrcPort = uint16(x)
		case ieDstPort:
			r.DstPort = uint16(x)
		case ieICMPType4, ieICMPType6:
			if r.DstPort == 0 {
				r.DstPort = uint16(x)
			}
		case ieSrc4, ieSrc6:
			// Templates with both families leave one of them zero.
			if a, ok := addrOf(f.Value); ok && (!r.Src.IsValid() || !a.IsUnspecified()) {
				r.Src = a
			}
		case ieDst4, ieDst6:
			if a, ok := addrOf(f.Value); ok && (!r.Dst.IsValid() || !a.IsUnspecified()) {
				r.Dst = a
			}
		case ieInIf:
			r.InIf = uint32(x)
		case ieOutIf:
			r.OutIf = uint32(x)
		case ieStartUptime:
			r.startRel, r.hasStartRel = uint32(x), true
		case ieEndUptime:
			r.endRel, r.hasEndRel = uint32(x), true
		case ieStartSec:
			r.Start = time.Unix(int64(x), 0).UTC()
		case ieEndSec:
			r.End = time.Unix(int64(x), 0).UTC()
		case ieStartMs:
			r.Start = time.UnixMilli(int64(x)).UTC()
		case ieEndMs:
			r.End = time.UnixMilli(int64(x)).UTC()
		case ieInitiatorOctets:
			initB, haveInit = x, true
		case ieResponderOctets:
			respB = x
		case ieInitiatorPkts:
			initP = x
		case ieResponderPkts:
			respP = x
		case ieBiflowDirection:
			r.BiflowDirection = uint8(x)
		case ieSelectorID, ieSamplerID:
			sel, haveSel = x, true
		case ieSamplingIntv, ieSamplerRandom:
			own = uint32(min(x, 1<<31-1))
		}
	}
	if !haveDelta && totalBytes != 0 {
		// Some exporters (Barracuda, Procera) send running totals only.
		r.Bytes, r.Packets = totalBytes, totalPkts
	}
	if haveInit {
		// Cisco NSEL: the record is the connection, initiator to responder.
		r.Bytes, r.RevBytes, r.Packets, r.RevPackets, r.Biflow = initB, respB, initP, respP, true
	} else if respB != 0 {
		// A responder count beside ordinary counters (Huawei exports the
		// element, zero, on one-way records).
		r.RevBytes, r.RevPackets, r.Biflow = respB, respP, true
	}
	if version == 9 && hdr.sysUptime != 0 {
		exportMs := int64(hdr.exportSecs) * 1000
		if r.hasStartRel {
			r.Start = time.UnixMilli(exportMs - int64(hdr.sysUptime-r.startRel)).UTC()
		}
		if r.hasEndRel {
			r.End = time.UnixMilli(exportMs - int64(hdr.sysUptime-r.endRel)).UTC()
		}
	}
	if r.End.IsZero() {
		r.End = time.Unix(int64(hdr.exportSecs), 0).UTC()
	}
	if r.Start.IsZero() {
		r.Start = r.End
	}
	if own <= 1 && haveSel {
		own = e.selectors[selectorKey{obs, sel}]
	}
	applyRate(&r, d.rate(e, obs, own))
	return r
}

// learnOptions keeps the sampling rates an exporter announces in options
// data, per observation domain and per sampler (selector) id. RFC 7014
// gives the rate as samplingPopulation/samplingSize (random n-out-of-N) or
// (samplingPacketInterval+samplingPacketSpace)/samplingPacketInterval
// (systematic count-based); NetFlow v9 and older IPFIX exporters send
// samplingInterval or samplerRandomInterval.
func (e *exporter) learnOptions(obs uint32, o netflow.OptionsDataFlowSet) {
	for _, rec := range o.Records {
		var v [numSamplingIEs]uint64
		var sel uint64
		haveSel := false
		read := func(fs []netflow.DataField) {
			for _, f := range fs {
				if f.PenProvided {
					continue
				}
				x, ok := uintOf(f.Value)
				if !ok {
					continue
				}
				switch f.Type {
				case ieSamplingIntv:
					v[sIntv] = x
				case ieSamplerRandom:
					v[sRandom] = x
				case ieSamplingPktIntv:
					v[sPktIntv] = x
				case ieSamplingPktSpace:
					v[sPktSpace] = x
				case ieSamplingSize:
					v[sSize] = x
				case ieSamplingPopulation:
					v[sPopulation] = x
				case ieSelectorID, ieSamplerID:
					sel, haveSel = x, true
				}
			}
		}
		read(rec.ScopesValues)
		read(rec.OptionsValues)
		var rate uint64
		switch {
		case v[sPopulation] > 0 && v[sSize] > 0:
			rate = v[sPopulation] / v[sSize]
		case v[sPktIntv] > 0 && v[sPktSpace] > 0:
			rate = (v[sPktIntv] + v[sPktSpace]) / v[sPktIntv]
		case v[sIntv] > 0:
			rate = v[sIntv]
		case v[sRandom] > 0:
			rate = v[sRandom]
		case v[sPktIntv] > 1:
			// Without a space, some exporters put the 1-in-N here.
			rate = v[sPktIntv]
		}
		if rate == 0 || rate >= 1<<31 {
			continue
		}
		e.sampling[obs] = uint32(rate)
		if haveSel {
			e.selectors[selectorKey{obs, sel}] = uint32(rate)
		}
	}
}

const (
	sIntv = iota
	sRandom
	sPktIntv
	sPktSpace
	sSize
	sPopulation
	numSamplingIEs
)

type selectorKey struct {
	obs uint32
	id  uint64
}

// RawSample is one packet header an sFlow agent sampled, for the sensor's
// own packet decoder.
type RawSample struct {
	Exporter     netip.Addr
	Protocol     uint32 // sFlow header protocol: 1 Ethernet, 11 IPv4, 12 IPv6
	Header       []byte // borrowed until the next Decode
	FrameLength  uint32 // the sampled frame's length on the wire
	SamplingRate uint32
	InIf, OutIf  uint32
}

// Samples returns the packet headers of the flow samples of the last sFlow
// datagram decoded, borrowed until the next Decode.
func (d *Decoder) Samples() []RawSample { return d.samples }

func (d *Decoder) decodeSFlow(e *exporter, from netip.Addr, b []byte, out []Record) ([]Record, error) {
	d.samples = d.samples[:0]
	if err := sflowCounts(b); err != nil {
		return out, d.fail(e, from, ReasonMalformed, err)
	}
	var p sflow.Packet
	if err := sflow.DecodeMessageVersion(bytes.NewBuffer(b), &p); err != nil {
		return out, d.fail(e, from, ReasonMalformed, err)
	}
	// The agent address names the switch that sampled, which may not be
	// the address the datagram came from (a relay, a NAT).
	agent := from
	if a, ok := netip.AddrFromSlice(p.AgentIP); ok && a.IsValid() && !a.IsUnspecified() {
		agent = a.Unmap()
	}
	// Flow samples carry packet headers, which the sensor decodes with
	// its own decoder; counter samples are skipped.
	add := func(rate, in, outIf uint32, recs []sflow.FlowRecord) {
		if d.cfg.SamplingRate != 0 {
			rate = d.cfg.SamplingRate
		}
		for _, fr := range recs {
			if h, ok := fr.Data.(sflow.SampledHeader); ok {
				d.samples = append(d.samples, RawSample{
					Exporter: agent, Protocol: h.Protocol, Header: h.HeaderData,
					FrameLength: h.FrameLength, SamplingRate: rate, InIf: in, OutIf: outIf,
				})
			}
		}
	}
	for _, s := range p.Samples {
		switch fs := s.(type) {
		case sflow.FlowSample:
			add(fs.SamplingRate, fs.Input, fs.Output, fs.Records)
		case sflow.ExpandedFlowSample:
			add(fs.SamplingRate, fs.InputIfValue, fs.OutputIfValue, fs.Records)
		}
	}
	return out, nil
}

// sflowCounts checks the record counts of an sFlow v5 datagram's samples
// against the bytes that could hold them. goflow2 v2.2.6 allocates an
// expanded flow sample's records by the count the datagram claims, with no
// bound: a forged count of 2^32-1 asks for tens of gigabytes.
func sflowCounts(b []byte) error {
	be := binary.BigEndian
	if len(b) < 8 {
		return errShort
	}
	off := 8 // version, address type, then the address
	switch be.Uint32(b[4:]) {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return fmt.Errorf("sFlow agent address type %d", be.Uint32(b[4:]))
	}
	off += 12 // sub-agent, sequence, uptime
	if len(b) < off+4 {
		return errShort
	}
	n := int(be.Uint32(b[off:]))
	off += 4
	for i := 0; i < n && len(b)-off >= 8; i++ {
		format, length := be.Uint32(b[off:]), int(be.Uint32(b[off+4:]))
		off += 8
		if length > len(b)-off {
			return nil // goflow2 stops at a sample that runs past the end
		}
		sample := b[off : off+length]
		off += length
		// Where each format keeps its record count (sFlow v5 sections
		// 5.1-5.3 and the drop sample of sFlow's packet-drop extension).
		var at int
		switch format {
		case 1:
			at = 28 // flow sample
		case 2:
			at = 8 // counter sample
		case 3:
			at = 40 // expanded flow sample
		case 4:
			at = 12 // expanded counter sample
		case 5:
			at = 28 // drop sample (seq, source type and index, drops, input, output, reason)
		default:
			continue
		}
		if len(sample) < at+4 {
			continue // goflow2 reports the short header
		}
		if c := int(be.Uint32(sample[at:])); c > (len(sample)-at-4)/8 {
			return fmt.Errorf("sFlow sample %d claims %d records in %d bytes", i, c, len(sample)-at-4)
		}
	}
	return nil
}

var (
	errTemplateFlood = errors.New("too many templates")
	errShort         = errors.New("short")
)

// framing checks that a NetFlow v9 or IPFIX message's sets lie within it:
// goflow2 reads a set that claims more bytes than remain as if it were
// whole.
func framing(version uint16, b []byte) error {
	hdr := 20
	end := len(b)
	if version == 10 {
		hdr = 16
		if len(b) < hdr {
			return errors.New("short IPFIX header")
		}
		if n := int(binary.BigEndian.Uint16(b[2:])); n < hdr || n > len(b) {
			return fmt.Errorf("IPFIX message length %d, datagram %d", n, len(b))
		} else {
			end = n
		}
	} else if len(b) < hdr {
		return errors.New("short NetFlow v9 header")
	}
	for off := hdr; off < end; {
		if end-off < 4 {
			if version == 9 {
				return nil // trailing padding
			}
			return fmt.Errorf("set header at offset %d cut short", off)
		}
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		if n < 4 || off+n > end {
			return fmt.Errorf("set at offset %d claims %d bytes, %d remain", off, n, end-off)
		}
		off += n
	}
	return nil
}
