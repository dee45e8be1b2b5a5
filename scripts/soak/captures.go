//go:build linux

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/outflow-sensor/outflow/internal/synth"
)

// hostileCaptures drops the hostile captures into the watched
// directory every two minutes: rows 10 and 11 (flows holding unfinished
// ClientHellos with a gap each, and a segment 2^31 ahead in sequence),
// row 12 (a gzipped pcapng of nothing but interface blocks), row 14 (a
// capture cut short while it is read) and row 17 (a capture truncated in
// a record).
func (s *soak) hostileCaptures(ctx context.Context) {
	hellos, err := unfinishedHellos(20000)
	if err != nil {
		fmt.Println("soak: building the ClientHello capture:", err)
		return
	}
	idbs := interfaceFlood(100000)
	third := filepath.Join(s.o.shared, "zeek/testing/btest/Traces/ssh/ssh.pcap")
	thirdBytes, err := os.ReadFile(third)
	if err != nil {
		fmt.Println("soak:", err)
		return
	}
	n := 0
	every(ctx, 2*time.Minute, func() {
		n++
		drops := []struct {
			name string
			b    []byte
		}{
			{fmt.Sprintf("hostile-hellos-%03d.pcap", n), hellos},
			{fmt.Sprintf("hostile-idb-%03d.pcapng.gz", n), idbs},
			{fmt.Sprintf("hostile-cut-%03d.pcap", n), thirdBytes[:len(thirdBytes)*2/3]},
		}
		for _, d := range drops {
			if s.dropBytes(d.b, d.name) == nil {
				s.floods.captures.Add(1)
			}
		}
		// Row 14: a capture that shrinks soon after it comes.
		name := fmt.Sprintf("hostile-shrink-%03d.pcap", n)
		if s.dropBytes(thirdBytes, name) == nil {
			s.floods.captures.Add(1)
			time.AfterFunc(400*time.Millisecond, func() { os.Truncate(filepath.Join(s.watch, name), 4096) })
		}
		// The previous round's are read by now.
		if n > 1 {
			for _, p := range []string{"hostile-hellos-%03d.pcap", "hostile-idb-%03d.pcapng.gz", "hostile-cut-%03d.pcap", "hostile-shrink-%03d.pcap"} {
				os.Remove(filepath.Join(s.watch, fmt.Sprintf(p, n-1)))
			}
		}
	})
}

// unfinishedHellos is a capture of n TCP connections from 10.66.0.0/16 to
// 203.0.113.0/24:443, each a handshake, the first 1000 bytes of a
// ClientHello that announces 16,000, and a segment 3000 bytes further on:
// the inspector holds each for the gap. One more connection sends a
// 10-byte segment 2^31 ahead in sequence.
func unfinishedHellos(n int) ([]byte, error) {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	ts := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	hello := make([]byte, 1000)
	copy(hello, []byte{0x16, 0x03, 0x01, 0x3e, 0x80, 0x01, 0x00, 0x3e, 0x7c, 0x03, 0x03})
	later := bytes.Repeat([]byte{0xab}, 1000)
	for i := range n + 1 {
		client := net.IPv4(10, 66, byte(i>>8), byte(i))
		server := net.IPv4(203, 0, 113, byte(1+i%200))
		cport := uint16(20000 + i%40000)
		seg := func(fromClient bool, flags string, seq, ack uint32, payload []byte) error {
			ts = ts.Add(50 * time.Microsecond)
			src, dst, sp, dp := client, server, cport, uint16(443)
			if !fromClient {
				src, dst, sp, dp = server, client, 443, cport
			}
			tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, Window: 65535,
				SYN: flags == "S" || flags == "SA", ACK: flags != "S", PSH: len(payload) > 0}
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.To4(), DstIP: dst.To4()}
			tcp.SetNetworkLayerForChecksum(ip)
			eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
			sb := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
				return err
			}
			b := sb.Bytes()
			return w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b)
		}
		const cisn, sisn = 1000, 5000
		steps := []error{
			seg(true, "S", cisn, 0, nil),
			seg(false, "SA", sisn, cisn+1, nil),
			seg(true, "A", cisn+1, sisn+1, nil),
		}
		if i < n {
			steps = append(steps, seg(true, "A", cisn+1, sisn+1, hello), seg(true, "A", cisn+1+4000, sisn+1, later))
		} else {
			steps = append(steps, seg(true, "A", cisn+1+1<<31, sisn+1, []byte("0123456789")))
		}
		for _, err := range steps {
			if err != nil {
				return nil, err
			}
		}
	}
	return buf.Bytes(), nil
}

// interfaceFlood is a gzipped pcapng section of n interface description
// blocks and nothing else.
func interfaceFlood(n int) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(synth.PcapngInterfaceFlood(n))
	zw.Close()
	return z.Bytes()
}

// realIPFIX is the UDP payloads of a real exporter's capture (Cisco's
// IPFIX, from flowbeat's test data) and the number of records flowbeat
// decodes from it (its golden file).
func realIPFIX(shared string) ([][]byte, int, error) {
	pcap := filepath.Join(shared, "netflow/flowbeat/testdata/pcap/ipfix_cisco.pcap")
	golden := filepath.Join(shared, "netflow/flowbeat/testdata/golden/ipfix_cisco.pcap.golden.json")
	raw, err := os.ReadFile(golden)
	if err != nil {
		return nil, 0, err
	}
	var gd struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(raw, &gd); err != nil {
		return nil, 0, fmt.Errorf("%s: %v", golden, err)
	}
	f, err := os.Open(pcap)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %v", pcap, err)
	}
	var out [][]byte
	for p := range gopacket.NewPacketSource(r, r.LinkType()).Packets() {
		if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			out = append(out, bytes.Clone(u.Payload))
		}
	}
	if len(out) == 0 {
		return nil, 0, fmt.Errorf("%s: no UDP datagrams", pcap)
	}
	return out, len(gd.Events), nil
}
