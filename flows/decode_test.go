package flows

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/outflow-sensor/outflow/internal/shared"
)

// readAll returns every frame of a pcap or pcapng file with its link type,
// using pcapgo directly so this test does not depend on the capture package.
func readAll(t testing.TB, path string) (frames [][]byte, lt LinkType) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	if r, err := pcapgo.NewReader(f); err == nil {
		src, lt = r, LinkType(r.LinkType())
	} else {
		f.Seek(0, io.SeekStart)
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Skipf("%s: not a capture pcapgo reads: %v", path, err)
		}
		src, lt = r, LinkType(r.LinkType())
	}
	for {
		data, _, err := src.ReadPacketData()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Logf("%s: stopped at frame %d: %v", path, len(frames), err)
			}
			return frames, lt
		}
		frames = append(frames, data)
	}
}

func sharedCaptures(t *testing.T) []string {
	var files []string
	filepath.WalkDir(shared.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".pcap") || strings.HasSuffix(p, ".pcapng")) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		shared.Missing(t, shared.Dir()+"/**/*.pcap", os.ErrNotExist)
	}
	return files
}

// TestDecoderAgreesWithGopacket decodes every frame of every shared capture
// with the hot-path decoder and with gopacket's full NewPacket, and checks the
// outermost IP packet's addresses, protocol, ports and lengths agree.
func TestDecoderAgreesWithGopacket(t *testing.T) {
	d := NewDecoder()
	checked := 0
	for _, path := range sharedCaptures(t) {
		frames, lt := readAll(t, path)
		first := linkStart(lt)
		if first == gopacket.LayerTypeZero || lt > 255 {
			continue
		}
		for i, data := range frames {
			pkts, _ := d.Decode(data, lt, 0)
			gp := gopacket.NewPacket(data, layers.LinkType(lt), gopacket.Default)
			var src, dst []byte
			var proto uint8
			var iplen uint32
			switch ip := gp.NetworkLayer().(type) {
			case *layers.IPv4:
				src, dst, proto, iplen = ip.SrcIP.To4(), ip.DstIP.To4(), uint8(ip.Protocol), uint32(ip.Length)
			case *layers.IPv6:
				src, dst, iplen = ip.SrcIP, ip.DstIP, 40+uint32(ip.Length)
				proto = uint8(ip.NextHeader)
				for _, l := range gp.Layers() {
					switch e := l.(type) {
					case *layers.IPv6HopByHop:
						proto = uint8(e.NextHeader)
					case *layers.IPv6Destination:
						proto = uint8(e.NextHeader)
					case *layers.IPv6Routing:
						proto = uint8(e.NextHeader)
					case *layers.IPv6Fragment:
						proto = uint8(e.NextHeader)
					}
				}
			default:
				continue
			}
			if len(pkts) == 0 {
				// gopacket found IP where we did not: acceptable only for
				// encapsulations we do not open at depth 0 (counted as errors).
				continue
			}
			p := &pkts[0]
			where := filepath.Base(path) + " frame " + itoa(i+1)
			if string(p.srcAddr()) != string(src) || string(p.dstAddr()) != string(dst) {
				t.Errorf("%s: addresses %x>%x, gopacket %x>%x", where, p.srcAddr(), p.dstAddr(), src, dst)
			}
			if p.IPLen != iplen {
				t.Errorf("%s: IP length %d, gopacket %d", where, p.IPLen, iplen)
			}
			if p.Proto != proto && proto != 0 {
				t.Errorf("%s: protocol %d, gopacket %d", where, p.Proto, proto)
			}
			// gopacket's transport layer is the first one in the frame: the
			// inner one for GRE and IP-in-IP, the outer one for UDP tunnels.
			for j := range pkts {
				if pkts[j].Proto == 6 || pkts[j].Proto == 17 {
					p = &pkts[j]
					break
				}
			}
			switch tl := gp.TransportLayer().(type) {
			case *layers.TCP:
				if !p.Fragment && (p.SrcPort != uint16(tl.SrcPort) || p.DstPort != uint16(tl.DstPort) || p.Seq != tl.Seq) {
					t.Errorf("%s: tcp %d>%d seq %d, gopacket %d>%d seq %d", where, p.SrcPort, p.DstPort, p.Seq, tl.SrcPort, tl.DstPort, tl.Seq)
				}
			case *layers.UDP:
				if !p.Fragment && (p.SrcPort != uint16(tl.SrcPort) || p.DstPort != uint16(tl.DstPort)) {
					t.Errorf("%s: udp %d>%d, gopacket %d>%d", where, p.SrcPort, p.DstPort, tl.SrcPort, tl.DstPort)
				}
			}
			checked++
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d packets compared", checked)
	}
	t.Logf("%d packets agree with gopacket", checked)
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}
