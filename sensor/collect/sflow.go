package collect

import (
	"bytes"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/sflow"
)

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
