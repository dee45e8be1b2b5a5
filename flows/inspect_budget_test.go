package flows

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// realHelloFlow finds, in the demo recording, the first TCP flow whose
// client sends a whole TLS ClientHello in one segment, and returns that
// hello and every frame of the flow.
func realHelloFlow(t *testing.T) (hello []byte, flow [][]byte, lt LinkType) {
	frames, lt := readAll(t, filepath.Join("..", "pcaps", "outflow-demo.pcap"))
	dec := NewDecoder()
	var key [2]uint16
	var keyIP [2][16]byte
	for _, f := range frames {
		ps, err := dec.Decode(f, lt, 0)
		if err != nil || len(ps) == 0 {
			continue
		}
		p := &ps[0]
		if hello == nil {
			b := p.Payload
			if p.Proto == 6 && len(b) > 9 && b[0] == 22 && b[5] == 1 && 5+(int(b[3])<<8|int(b[4])) == len(b) {
				hello = append([]byte(nil), b...)
				key, keyIP = [2]uint16{p.SrcPort, p.DstPort}, [2][16]byte{p.Src, p.Dst}
			}
			continue
		}
		break
	}
	if hello == nil {
		t.Fatal("outflow-demo.pcap: no ClientHello in one segment")
	}
	// The flow's frames from its SYN: decode again, now that the key is known.
	flow = nil
	for _, f := range frames {
		ps, err := dec.Decode(f, lt, 0)
		if err != nil || len(ps) == 0 || ps[0].Proto != 6 {
			continue
		}
		p := &ps[0]
		if p.SrcPort == key[0] && p.DstPort == key[1] && p.Src == keyIP[0] && p.Dst == keyIP[1] ||
			p.SrcPort == key[1] && p.DstPort == key[0] && p.Src == keyIP[1] && p.Dst == keyIP[0] {
			flow = append(flow, f)
		}
	}
	return hello, flow, lt
}

// writeFlood writes n TCP flows to path, each a handshake and then the
// first part of hello in order and a later part past a hole: a ClientHello
// that never completes, with one out-of-order segment held for it.
func writeFlood(t *testing.T, path string, hello []byte, n int) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	eth := layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	cut1, cut2, cut3 := len(hello)/3, len(hello)/2, len(hello)*5/6
	ts := int64(1_700_000_000e9)
	for i := 0; i < n; i++ {
		cli := net.IP{10, 9, byte(i >> 16), byte(i >> 8)}
		srv := net.IP{192, 0, 2, 7}
		cport := layers.TCPPort(1024 + i%60000)
		send := func(orig bool, syn, ack bool, seq, acknum uint32, payload []byte) {
			ip := layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: cli, DstIP: srv}
			tcp := layers.TCP{SrcPort: cport, DstPort: 443, Seq: seq, Ack: acknum, SYN: syn, ACK: ack, PSH: len(payload) > 0, Window: 65535}
			if !orig {
				ip.SrcIP, ip.DstIP = srv, cli
				tcp.SrcPort, tcp.DstPort = 443, cport
			}
			tcp.SetNetworkLayerForChecksum(&ip)
			if err := gopacket.SerializeLayers(buf, opts, &eth, &ip, &tcp, gopacket.Payload(payload)); err != nil {
				t.Fatal(err)
			}
			ts += 1000
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
			if err := w.WritePacket(ci, buf.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		const cisn, sisn = 1000, 5000
		send(true, true, false, cisn, 0, nil)
		send(false, true, true, sisn, cisn+1, nil)
		send(true, false, true, cisn+1, sisn+1, nil)
		send(true, false, true, cisn+1, sisn+1, hello[:cut1])
		send(true, false, true, cisn+1+uint32(cut2), sisn+1, hello[cut2:cut3]) // past the hole; hello[cut3:] never comes
	}
}

// TestInspectBudgetBoundsUnfinishedHellos: 50,000 flows that each leave a
// real ClientHello unfinished with an out-of-order segment held (issue 16,
// row 10) hold no more than MaxHeldBytes; inspection of those that do not
// fit is abandoned and counted, and a real TLS flow among them is still
// read whole.
func TestInspectBudgetBoundsUnfinishedHellos(t *testing.T) {
	const flood, budget = 50_000, 8 << 20
	hello, real, lt := realHelloFlow(t)
	path := filepath.Join(t.TempDir(), "flood.pcap")
	writeFlood(t, path, hello, flood)
	frames, flt := readAll(t, path)
	if flt != LinkType(layers.LinkTypeEthernet) {
		t.Fatalf("flood.pcap: link type %d", flt)
	}

	run := func(inspect InspectConfig, withFlood bool) (InspectStats, *Inspection, uint64) {
		cfg := DefaultConfig()
		cfg.Capacity = 1 << 17
		cfg.Inspect = inspect
		var got *Inspection
		var tab *Table
		tab = NewTable(cfg, func(r *Record) {
			if r.RespP == 443 || r.OrigP == 443 {
				if in := tab.Inspection(r); in != nil && in.TLS != nil && in.TLS.ClientHello && (r.OrigAddr()[0] != 10 || r.OrigAddr()[1] != 9) {
					c := in.Snapshot()
					got = &c
				}
			}
		})
		dec := NewDecoder()
		feed := func(f []byte, lt LinkType) {
			ps, err := dec.Decode(f, lt, 0)
			if err != nil {
				return
			}
			for i := range ps {
				tab.Update(&ps[i])
			}
		}
		if withFlood {
			for i, f := range frames {
				feed(f, flt)
				if i == len(frames)/2 { // the real flow in the middle of the flood
					for _, rf := range real {
						feed(rf, lt)
					}
				}
			}
		} else {
			for _, rf := range real {
				feed(rf, lt)
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap := ms.HeapInuse
		st := tab.InspectStats()
		tab.Flush()
		runtime.KeepAlive(tab)
		return st, got, heap
	}

	ins := DefaultInspectConfig()
	ins.MaxHeldBytes = budget
	_, alone, _ := run(ins, false)
	if alone == nil || alone.TLS.SNI == "" || alone.TLS.JA3 == "" {
		t.Fatalf("the real TLS flow alone: no SNI or JA3: %+v", alone)
	}
	if !bytes.Contains(hello, []byte(alone.TLS.SNI)) {
		t.Fatalf("SNI %q is not in the ClientHello's bytes", alone.TLS.SNI)
	}

	off := DefaultInspectConfig()
	off.Enable = false
	_, _, heapOff := run(off, true)
	st, got, heapOn := run(ins, true)
	t.Logf("held peak %d of %d, abandoned %v, heap with inspection %d MB, without %d MB",
		st.HeldPeak, budget, st.Abandoned, heapOn>>20, heapOff>>20)
	if st.HeldPeak > budget {
		t.Errorf("held %d bytes, past the budget of %d", st.HeldPeak, budget)
	}
	if st.Abandoned[AbandonBudget] == 0 {
		t.Error("no inspection abandoned for the budget")
	}
	// What inspection adds to the heap: the held buffers, plus per flow
	// its slot and, for the flows within the budget, its work (3.5 KiB).
	if margin := uint64(budget) + flood*256 + 16<<20; heapOn > heapOff+margin {
		t.Errorf("inspection added %d MB to the heap, more than %d MB", (heapOn-heapOff)>>20, margin>>20)
	}
	if got == nil || got.TLS.SNI != alone.TLS.SNI || got.TLS.JA3 != alone.TLS.JA3 || got.TLS.JA4 != alone.TLS.JA4 {
		t.Errorf("the real TLS flow amid the flood: %+v, want SNI %q JA3 %q", got, alone.TLS.SNI, alone.TLS.JA3)
	}
}
