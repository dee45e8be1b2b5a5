package collect

import (
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
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
