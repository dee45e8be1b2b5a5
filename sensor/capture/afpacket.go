//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/google/gopacket/afpacket"
	"github.com/outflow-sensor/outflow/flows"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrIdle is returned by AFPacketSource.Next when no frame came within the
// poll timeout, so the caller can look at the clock and its context.
var ErrIdle = errors.New("no packet within the poll timeout")

// AFPacketConfig opens one socket of a fanout group on an interface.
type AFPacketConfig struct {
	Interface   string
	FanoutGroup uint16 // sockets with the same group on an interface share its flows by hash
	Filter      []bpf.RawInstruction
	BlockSize   int // TPACKET_V3 ring block size; the ring is BlockSize*NumBlocks
	NumBlocks   int
	PollTimeout time.Duration
	// BlockTimeout is how long the kernel fills a ring block before handing
	// it over when traffic is light (default 64 ms).
	BlockTimeout time.Duration
	// LowLatency uses a TPACKET_V2 ring, which hands over every frame at
	// once instead of a block at a time: on-host attribution needs a new
	// connection's first packet while the program that made it still
	// runs, which for curl is a few milliseconds.
	LowLatency bool
}

// AFPacketSource reads one interface through a TPACKET_V3 ring. Frames are
// borrowed from the ring until the next call to Next.
type AFPacketSource struct {
	tp    *afpacket.TPacket
	iface string
	v2    bool
}

// OpenAFPacket opens a ring on an interface and joins the fanout group, so the
// kernel spreads flows over the group's sockets by a symmetric flow hash
// (with IP fragments reassembled first, so a fragment follows its flow).
func OpenAFPacket(cfg AFPacketConfig) (*AFPacketSource, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 1 << 20
	}
	if cfg.NumBlocks == 0 {
		cfg.NumBlocks = 64
	}
	if cfg.PollTimeout == 0 {
		cfg.PollTimeout = 100 * time.Millisecond
	}
	if cfg.BlockTimeout == 0 {
		cfg.BlockTimeout = afpacket.DefaultBlockTimeout
	}
	version := afpacket.TPacketVersion3
	if cfg.LowLatency {
		version = afpacket.TPacketVersion2
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(cfg.Interface),
		version,
		afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptBlockSize(cfg.BlockSize),
		afpacket.OptNumBlocks(cfg.NumBlocks),
		afpacket.OptPollTimeout(cfg.PollTimeout),
		afpacket.OptBlockTimeout(cfg.BlockTimeout),
		// The kernel strips 802.1Q tags on receive; put them back so the
		// decoder sees a SPAN port's VLANs.
		afpacket.OptAddVLANHeader(true),
	)
	if err != nil {
		return nil, fmt.Errorf("unable to open AF_PACKET ring on %s: %w", cfg.Interface, err)
	}
	if err := tp.SetFanout(afpacket.FanoutHashWithDefrag, cfg.FanoutGroup); err != nil {
		tp.Close()
		return nil, fmt.Errorf("unable to join fanout group %d on %s: %w", cfg.FanoutGroup, cfg.Interface, err)
	}
	if len(cfg.Filter) > 0 {
		if err := tp.SetBPF(cfg.Filter); err != nil {
			tp.Close()
			return nil, fmt.Errorf("unable to set filter on %s: %w", cfg.Interface, err)
		}
	}
	return &AFPacketSource{tp: tp, iface: cfg.Interface, v2: cfg.LowLatency}, nil
}

// Next fills p with the next frame; ErrIdle when the poll timed out.
func (s *AFPacketSource) Next(p *Packet) error {
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, afpacket.ErrTimeout) || errors.Is(err, unix.EINTR) {
			return ErrIdle
		}
		return fmt.Errorf("reading %s: %w", s.iface, err)
	}
	p.Data, p.CaptureInfo, p.LinkType = data, ci, flows.LinkEthernet
	return nil
}

// KernelStats returns what the kernel counted for this socket since it
// opened: packets it saw (drops included, as Linux counts them) and packets it
// dropped because the ring was full. gopacket sums the counters the kernel
// resets on every read.
func (s *AFPacketSource) KernelStats() (packets, drops uint64, err error) {
	v2, v3, err := s.tp.SocketStats()
	if err != nil {
		return 0, 0, err
	}
	if s.v2 {
		return uint64(v2.Packets()), uint64(v2.Drops()), nil
	}
	return uint64(v3.Packets()), uint64(v3.Drops()), nil
}

// Close releases the ring.
func (s *AFPacketSource) Close() { s.tp.Close() }

// Promiscuous puts an interface in promiscuous mode for as long as the
// returned socket stays open: a PACKET_MR_PROMISC membership is counted by the
// kernel and undone when its socket closes, so a crash cannot leave the
// interface promiscuous, and gopacket's TPacket keeps its own socket private.
func Promiscuous(iface string) (func() error, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("unable to find interface %s: %w", iface, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unable to open a packet socket for %s: %w", iface, err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("unable to make %s promiscuous: %w", iface, err)
	}
	return func() error { return unix.Close(fd) }, nil
}

// CompileFilter turns a tcpdump expression into classic BPF for Ethernet
// frames. It asks tcpdump (`tcpdump -ddd`), which links libpcap, so that this
// binary does not: a filter needs tcpdump installed, everything else nothing.
func CompileFilter(expr string) ([]bpf.RawInstruction, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	out, err := exec.Command("tcpdump", "-ddd", "-y", "EN10MB", expr).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("filter %q: %s", expr, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("filter %q needs tcpdump to compile it: %w", expr, err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return nil, fmt.Errorf("filter %q: no output from tcpdump", expr)
	}
	n, err := strconv.Atoi(lines[0])
	if err != nil || len(lines) != 1+4*n {
		return nil, fmt.Errorf("filter %q: unexpected tcpdump output", expr)
	}
	prog := make([]bpf.RawInstruction, n)
	for i := range prog {
		var v [4]uint64
		for j := range v {
			if v[j], err = strconv.ParseUint(lines[1+4*i+j], 10, 32); err != nil {
				return nil, fmt.Errorf("filter %q: %w", expr, err)
			}
		}
		prog[i] = bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return prog, nil
}
