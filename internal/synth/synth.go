// Package synth builds synthetic Ethernet/IPv4/TCP frames for benchmarks,
// and hostile inputs (hostile.go) for the tests and the soak that attack
// the sensor. End-to-end tests replay real traffic recorded in pcaps/;
// nothing here stands in for it.
package synth

import (
	"encoding/binary"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Frames builds nflows short
// connections (SYN, SYN-ACK, ACK, data each way, FIN each way) with payload
// bytes of data per data segment. Real traffic for end-to-end tests comes from
// the recordings in pcaps/.
func Frames(nflows, payload int) [][]byte {
	frames := make([][]byte, 0, nflows*7)
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	body := make([]byte, payload)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for f := 0; f < nflows; f++ {
		client := net.IPv4(10, byte(f>>16), byte(f>>8), byte(f)).To4()
		server := net.IPv4(198, 51, 100, byte(f%200+1)).To4()
		cport := layers.TCPPort(1024 + f%60000)
		var cseq, sseq uint32 = uint32(f) * 7919, uint32(f) * 104729
		seg := func(fromClient bool, syn, ack, fin bool, data []byte) {
			eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: client, DstIP: server}
			tcp := &layers.TCP{SrcPort: cport, DstPort: 443, SYN: syn, ACK: ack, FIN: fin, Window: 65535}
			if fromClient {
				tcp.Seq, tcp.Ack = cseq, sseq
			} else {
				ip.SrcIP, ip.DstIP = server, client
				tcp.SrcPort, tcp.DstPort = 443, cport
				tcp.Seq, tcp.Ack = sseq, cseq
			}
			tcp.SetNetworkLayerForChecksum(ip)
			if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(data)); err != nil {
				panic(err)
			}
			frames = append(frames, append([]byte(nil), buf.Bytes()...))
			n := uint32(len(data))
			if syn || fin {
				n++
			}
			if fromClient {
				cseq += n
			} else {
				sseq += n
			}
		}
		seg(true, true, false, false, nil)
		seg(false, true, true, false, nil)
		seg(true, false, true, false, nil)
		seg(true, false, true, false, body)
		seg(false, false, true, false, body)
		seg(true, false, true, true, nil)
		seg(false, false, true, true, nil)
	}
	return frames
}

// Bulk builds one long connection of n full-size data segments.
func Bulk(n, payload int) [][]byte {
	frames := Frames(1, payload)[:4] // SYN, SYN-ACK, ACK, first data
	tmpl := frames[3]
	seqOff := 14 + 20 + 4
	base := binary.BigEndian.Uint32(tmpl[seqOff:])
	for i := 1; i < n; i++ {
		f := append([]byte(nil), tmpl...)
		binary.BigEndian.PutUint32(f[seqOff:], base+uint32(i*payload))
		frames = append(frames, f)
	}
	return frames
}
