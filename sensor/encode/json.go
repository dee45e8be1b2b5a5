// Package encode turns records into text at the edge of the sensor, where
// sinks write them: the flow record as Outflow's JSON line.
package encode

import (
	"strconv"

	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/record"
)

const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

// AppendFlow appends f as one JSON object and a newline, with Zeek's
// conn.log names where one exists. It allocates nothing once dst has
// grown. Payload-only keys of a record from router exports are null:
// unknown, not zero.
func AppendFlow(dst []byte, f *record.Flow) []byte {
	dst = append(dst, `{"ts":"`...)
	dst = appendTimestamp(dst, f.Start)
	dst = append(dst, `","end_ts":"`...)
	dst = appendTimestamp(dst, f.End)
	dst = append(dst, `","duration":`...)
	dst = appendSeconds(dst, f.End-f.Start)
	dst = append(dst, `,"proto":"`...)
	dst = protoName(dst, f.Proto)
	dst = append(dst, `","orig_h":"`...)
	dst = f.Orig.Addr().AppendTo(dst)
	dst = append(dst, `","orig_p":`...)
	dst = strconv.AppendUint(dst, uint64(f.Orig.Port()), 10)
	dst = append(dst, `,"resp_h":"`...)
	dst = f.Resp.Addr().AppendTo(dst)
	dst = append(dst, `","resp_p":`...)
	dst = strconv.AppendUint(dst, uint64(f.Resp.Port()), 10)
	dst = appendUintKey(dst, "orig_pkts", f.OrigPkts)
	dst = appendUintKey(dst, "resp_pkts", f.RespPkts)
	dst = appendUintKey(dst, "orig_ip_bytes", f.OrigIPBytes)
	dst = appendUintKey(dst, "resp_ip_bytes", f.RespIPBytes)
	if f.Observed {
		dst = appendUintKey(dst, "orig_frame_bytes", f.OrigFrameBytes)
		dst = appendUintKey(dst, "resp_frame_bytes", f.RespFrameBytes)
		dst = appendUintKey(dst, "orig_bytes", f.OrigBytes)
		dst = appendUintKey(dst, "resp_bytes", f.RespBytes)
		dst = appendUintKey(dst, "missed_bytes", f.MissedBytes)
		dst = append(dst, `,"history":"`...)
		dst = append(dst, f.History.Bytes()...)
		dst = append(dst, `","state":"`...)
		dst = append(dst, f.State...)
		dst = append(dst, '"')
	} else {
		dst = append(dst, `,"orig_bytes":null,"resp_bytes":null,"missed_bytes":null,"history":null,"state":null`...)
	}
	dst = append(dst, `,"final":`...)
	dst = strconv.AppendBool(dst, f.Final)
	if f.Evicted {
		dst = append(dst, `,"evicted":true`...)
	}
	dst = append(dst, `,"community_id":"`...)
	dst = append(dst, f.CommunityID.Bytes()...)
	dst = append(dst, '"')
	if f.VLAN != 0 {
		dst = appendUintKey(dst, "vlan", uint64(f.VLAN))
	}
	if f.InnerVLAN != 0 {
		dst = appendUintKey(dst, "inner_vlan", uint64(f.InnerVLAN))
	}
	if f.Tunnel != 0 {
		dst = append(dst, `,"tunnel":"`...)
		dst = append(dst, f.Tunnel.String()...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"direction":"`...)
	dst = append(dst, f.Direction.String()...)
	dst = append(dst, '"')
	out, in := f.OutIn()
	dst = appendUintKey(dst, "out_bytes", out)
	dst = appendUintKey(dst, "in_bytes", in)
	dst = append(dst, `,"out_in_ratio":`...)
	if in == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendFloat(dst, float64(out)/float64(in), 'g', 6, 64)
	}
	ob, rb := f.PayloadOrIPBytes()
	dst = append(dst, `,"upload_ratio":`...)
	if ob+rb == 0 {
		dst = append(dst, '0')
	} else {
		dst = strconv.AppendFloat(dst, (float64(ob)-float64(rb))/float64(ob+rb), 'g', 6, 64)
	}
	if f.Inspection != nil {
		dst = f.Inspection.AppendJSON(dst, f.HTTPBody)
	}
	if !f.Observed {
		dst = append(dst, `,"observed_payload":false,"exporter":"`...)
		dst = f.Export.Exporter.AppendTo(dst)
		dst = append(dst, `","export_version":`...)
		dst = strconv.AppendUint(dst, uint64(f.Export.Version), 10)
		dst = append(dst, `,"stitch":"`...)
		dst = append(dst, f.Export.Stitch...)
		dst = append(dst, '"')
		if f.Export.SamplingRate > 1 {
			dst = appendUintKey(dst, "sampling_rate", uint64(f.Export.SamplingRate))
		}
	}
	if f.OrigProc != nil || f.RespProc != nil {
		dst = process.AppendJSON(dst, "orig_process", f.OrigProc)
		dst = process.AppendJSON(dst, "resp_process", f.RespProc)
	}
	return append(dst, "}\n"...)
}

func protoName(dst []byte, p uint8) []byte {
	switch p {
	case 6:
		return append(dst, "tcp"...)
	case 17:
		return append(dst, "udp"...)
	case 1:
		return append(dst, "icmp"...)
	case 58:
		return append(dst, "icmp6"...)
	}
	return strconv.AppendUint(dst, uint64(p), 10)
}

func appendUintKey(dst []byte, key string, v uint64) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return strconv.AppendUint(dst, v, 10)
}
