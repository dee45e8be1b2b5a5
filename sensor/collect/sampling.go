package collect

import "github.com/netsampler/goflow2/v2/decoders/netflow"

// rate is the sampling rate that applies: the configured override, else
// the rate the record or its datagram announced, else the one options
// data announced for the observation domain.
func (d *Decoder) rate(e *exporter, obs uint32, announced uint32) uint32 {
	if d.cfg.SamplingRate != 0 {
		return d.cfg.SamplingRate
	}
	if announced > 1 {
		return announced
	}
	return e.sampling[obs]
}

// applyRate scales a record's counters up to the traffic its samples
// stand for.
func applyRate(r *Record, rate uint32) {
	if rate > 1 {
		r.SamplingRate = rate
		r.Bytes *= uint64(rate)
		r.Packets *= uint64(rate)
		r.RevBytes *= uint64(rate)
		r.RevPackets *= uint64(rate)
	}
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
