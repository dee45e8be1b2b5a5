//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/google/gopacket/afpacket"
	"github.com/outflow-sensor/outflow/flows"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrIdle is returned by AFPacketSource.Next when no frame came within the
// poll timeout, so the caller can look at the clock and its context.
var ErrIdle = errors.New("no packet within the poll timeout")

// AFPacketConfig describes the sockets of one fanout group on an interface.
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
	// discarded counts the frames the socket took in while its fanout
	// group was being built, read and thrown away (see OpenAFPacketGroup).
	discarded uint64
}

// AFPacketStats is what one socket counted.
type AFPacketStats struct {
	// Packets and Drops are the kernel's counters since the socket's group
	// was complete: frames it handed to the ring and frames it dropped
	// because the ring was full.
	Packets, Drops uint64
	// Discarded counts frames that reached the socket while its fanout
	// group was still being built, before its filter was in force: they
	// were thrown away at start-up, never accounted (see OpenAFPacketGroup).
	Discarded uint64
}

// dropAll is a classic BPF program that accepts nothing. A socket carries it
// from just after it is opened until its fanout group is complete.
var dropAll = mustAssemble(bpf.RetConstant{Val: 0})

// acceptAll replaces dropAll when no filter was asked for: gopacket's
// TPacket does not expose its socket, so the start-up filter cannot be
// detached (SO_DETACH_FILTER) and is replaced by a one-instruction program
// that keeps whole frames instead (JIT-compiled where the kernel's BPF JIT
// is on, as it is by default on amd64 and arm64).
var acceptAll = mustAssemble(bpf.RetConstant{Val: 0xffffffff})

func mustAssemble(insns ...bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(insns)
	if err != nil {
		panic(err)
	}
	return raw
}

// settleMargin is added to the block timeout while start-up frames are
// drained: time for a frame the kernel was already delivering when the
// socket's filter changed to land in the ring.
const settleMargin = 30 * time.Millisecond

// OpenAFPacket opens a group of one socket; see OpenAFPacketGroup. The
// sockets of a group with several members must all be opened by one call
// of OpenAFPacketGroup: a socket that joins a group already delivering
// frames moves flows between its members.
func OpenAFPacket(cfg AFPacketConfig) (*AFPacketSource, error) {
	srcs, err := OpenAFPacketGroup(cfg, 1)
	if err != nil {
		return nil, err
	}
	return srcs[0], nil
}

// OpenAFPacketGroup opens n rings on an interface, all in fanout group
// cfg.FanoutGroup, so the kernel spreads flows over them by a symmetric flow
// hash (with IP fragments reassembled first, so a fragment follows its flow).
//
// Every frame a returned source hands out was filtered by cfg.Filter and
// assigned to its socket by the complete group. That takes care, because a
// packet socket receives from the moment it exists: gopacket's NewTPacket
// creates it with ETH_P_ALL and binds it at once, and the kernel lets a
// socket join a fanout group only once it is bound. A socket that has not
// joined yet sees every frame of the interface (a copy of what the group's
// members get), and each join changes the member count the hash is taken
// modulo, moving flows from one socket to another; a worker reading such a
// socket would record part of a connection that another worker records too.
// So each socket gets a filter that accepts nothing as soon as it is open;
// the sockets join the group under that filter; once the last has joined,
// the frames that reached the rings before their filter was set are read
// and discarded (counted in Discarded), and only then does each socket get
// the real filter. From then on a frame enters a ring only if the complete
// group chose that ring for it and the filter accepted it. Clocks play no
// part: no frame is judged by its timestamp.
func OpenAFPacketGroup(cfg AFPacketConfig, n int) ([]*AFPacketSource, error) {
	if n < 1 {
		n = 1
	}
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
	filter := cfg.Filter
	if len(filter) == 0 {
		filter = acceptAll
	}
	srcs := make([]*AFPacketSource, 0, n)
	fail := func(err error) ([]*AFPacketSource, error) {
		for _, s := range srcs {
			s.Close()
		}
		return nil, err
	}
	for range n {
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
			if perr := needPrivilege(cfg.Interface, err); perr != nil {
				return fail(perr)
			}
			return fail(fmt.Errorf("unable to open AF_PACKET ring on %s: %w", cfg.Interface, err))
		}
		srcs = append(srcs, &AFPacketSource{tp: tp, iface: cfg.Interface, v2: cfg.LowLatency})
		// The socket is already receiving: stop it taking anything more
		// in until the group is complete.
		if err := tp.SetBPF(dropAll); err != nil {
			return fail(fmt.Errorf("unable to set a filter on %s: %w", cfg.Interface, err))
		}
	}
	for _, s := range srcs {
		if err := s.tp.SetFanout(afpacket.FanoutHashWithDefrag, cfg.FanoutGroup); err != nil {
			if perr := needPrivilege(cfg.Interface, err); perr != nil {
				return fail(perr)
			}
			return fail(fmt.Errorf("unable to join fanout group %d on %s: %w", cfg.FanoutGroup, cfg.Interface, err))
		}
	}
	// The group is complete and every member still accepts nothing. What
	// the rings hold came in before a socket's filter was set; a TPACKET_V3
	// ring shows a partly filled block only when the block timeout retires
	// it, so each ring is read until it has stayed empty past that time.
	// Joining a group does not wait for the kernel's readers, so the same
	// wait also lets any frame already being delivered by the incomplete
	// group land here rather than after the real filter is set.
	settled := time.Now().Add(cfg.BlockTimeout + settleMargin)
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.drain(settled)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	for _, s := range srcs {
		if err := s.tp.SetBPF(filter); err != nil {
			return fail(fmt.Errorf("unable to set filter on %s: %w", cfg.Interface, err))
		}
	}
	return srcs, nil
}

// drain reads and discards the frames in the ring until it has found it
// empty after settled, then restarts the kernel's counters so that they
// count only what the complete group delivers. Frames the kernel dropped
// before then, because the ring was full, count as discarded too.
func (s *AFPacketSource) drain(settled time.Time) error {
	for {
		_, _, err := s.tp.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			s.discarded++
			continue
		case errors.Is(err, afpacket.ErrTimeout) || errors.Is(err, unix.EINTR):
			if time.Now().Before(settled) {
				continue
			}
		default:
			return fmt.Errorf("reading %s at start-up: %w", s.iface, err)
		}
		break
	}
	_, drops, err := s.KernelStats()
	if err != nil {
		return fmt.Errorf("kernel statistics of %s: %w", s.iface, err)
	}
	s.discarded += drops
	if err := s.tp.InitSocketStats(); err != nil {
		return fmt.Errorf("kernel statistics of %s: %w", s.iface, err)
	}
	return nil
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

// KernelStats returns what the kernel counted for this socket since its
// fanout group was complete: packets it saw (drops included, as Linux counts
// them) and packets it dropped because the ring was full. gopacket sums the
// counters the kernel resets on every read.
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

// Stats returns the kernel's counters (as KernelStats) and the frames
// discarded at start-up.
func (s *AFPacketSource) Stats() (AFPacketStats, error) {
	p, d, err := s.KernelStats()
	return AFPacketStats{Packets: p, Drops: d, Discarded: s.discarded}, err
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
		if perr := needPrivilege(iface, err); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("unable to open a packet socket for %s: %w", iface, err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		if perr := needPrivilege(iface, err); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("unable to make %s promiscuous: %w", iface, err)
	}
	return func() error { return unix.Close(fd) }, nil
}

// PrivilegeError is a packet socket the kernel refused for want of a
// capability, said with what to do instead of "operation not permitted".
// CAP_NET_RAW is all capture needs: with it alone an unprivileged process
// opens the rings, joins a fanout group and makes the interface
// promiscuous (a PACKET_MR_PROMISC membership), as the live tests show;
// CAP_NET_ADMIN would add nothing.
type PrivilegeError struct {
	Interface string
	Program   string // the running executable, for setcap
	Err       error  // the kernel's
}

func (e *PrivilegeError) Error() string {
	return fmt.Sprintf("capturing on %s needs CAP_NET_RAW: run as root, or give the program that capability "+
		"(`setcap cap_net_raw+ep %s`, or AmbientCapabilities=CAP_NET_RAW in its systemd unit)", e.Interface, e.Program)
}

// Unwrap is the kernel's error.
func (e *PrivilegeError) Unwrap() error { return e.Err }

// needPrivilege is a PrivilegeError when err is the kernel refusing a
// privileged operation, else nil.
func needPrivilege(iface string, err error) error {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return nil
	}
	exe, xerr := os.Executable()
	if xerr != nil {
		exe = "/path/to/outflow"
	}
	return &PrivilegeError{Interface: iface, Program: exe, Err: err}
}
