package collect

import (
	"bytes"
	"errors"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
)

// header is what a datagram's header says about time.
type header struct {
	exportSecs uint32
	sysUptime  uint32 // v9 only, milliseconds
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
		case errors.Is(err, errTemplateBudget):
			failure = d.fail(e, from, ReasonTemplateBudget, err)
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
