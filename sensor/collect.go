package sensor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/sensor/collect"
)

// CollectConfig says where exports arrive and where flows go.
type CollectConfig struct {
	// Listen holds netflow://HOST:PORT (NetFlow v5/v9 and IPFIX) and
	// sflow://HOST:PORT addresses.
	Listen          []string
	HomeNets        []netip.Prefix
	CommunityIDSeed uint16
	// Window is how long a one-way record waits for its reverse.
	Window  time.Duration
	Decoder collect.Config
	Flows   io.Writer
	Errors  io.Writer
	// Ready, when set, is called with the bound addresses once listening.
	Ready func(addrs []net.Addr)
	// Received, when set, counts datagrams as they are read off the sockets.
	Received *atomic.Uint64
	// HostEvents are host-event sources (files followed, syslog, HTTP,
	// Kafka): flows gain the process at each end, as in Live.
	HostEvents []string
	// Detect, when set, runs the analytics on the flows.
	Detect *Detection
}

// DefaultCollectDecoder is the export decoder's default configuration.
func DefaultCollectDecoder() collect.Config { return collect.DefaultConfig() }

type datagram struct {
	from netip.Addr
	data []byte
	at   time.Time
}

// Collect receives flow exports until ctx ends, then writes every flow
// still waiting for its reverse and returns.
func Collect(ctx context.Context, cfg CollectConfig) (ExportStats, error) {
	var st ExportStats
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Errors == nil {
		cfg.Errors = io.Discard
	}
	var conns []net.PacketConn
	var addrs []net.Addr
	for _, l := range cfg.Listen {
		u, err := url.Parse(l)
		if err != nil || (u.Scheme != "netflow" && u.Scheme != "sflow") || u.Host == "" {
			closeAll(conns)
			return st, fmt.Errorf("--listen %q: want netflow://HOST:PORT or sflow://HOST:PORT", l)
		}
		c, err := net.ListenPacket("udp", u.Host)
		if err != nil {
			closeAll(conns)
			return st, fmt.Errorf("unable to listen on %s: %w", l, err)
		}
		if uc, ok := c.(*net.UDPConn); ok {
			// Exporters send in bursts; the kernel buffer absorbs them
			// while the decoder catches up.
			_ = uc.SetReadBuffer(16 << 20)
		}
		conns = append(conns, c)
		addrs = append(addrs, c.LocalAddr())
	}
	if cfg.Ready != nil {
		cfg.Ready(addrs)
	}
	// socket → decoder: blocks; the socket's buffer (16 MiB asked) then
	// fills and the kernel drops.
	in := newQueue[datagram]("socket→decoder", Block, 4096)
	free := make(chan []byte, 4096+64)
	for i := 0; i < cap(free); i++ {
		free <- make([]byte, 65536)
	}
	var readers sync.WaitGroup
	for _, c := range conns {
		readers.Add(1)
		go func(c net.PacketConn) {
			defer readers.Done()
			for {
				buf := <-free
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					fmt.Fprintf(cfg.Errors, "outflow: receive on %s: %v\n", c.LocalAddr(), err)
					free <- buf
					continue
				}
				var addr netip.Addr
				if ua, ok := from.(*net.UDPAddr); ok {
					addr, _ = netip.AddrFromSlice(ua.IP)
				}
				if cfg.Received != nil {
					cfg.Received.Add(1)
				}
				in.send(datagram{from: addr.Unmap(), data: buf[:n], at: time.Now()})
			}
		}(c)
	}
	go func() {
		<-ctx.Done()
		closeAll(conns)
		readers.Wait()
		in.close()
	}()

	out := bufio.NewWriterSize(cfg.Flows, 1<<16)
	var werr error
	pipe := newExportPipeline(cfg.Window, cfg.Decoder, cfg.HomeNets, cfg.CommunityIDSeed, cfg.Errors, func(b []byte) {
		if _, err := out.Write(b); err != nil && werr == nil {
			werr = err
		}
	})
	var det *detector
	if cfg.Detect != nil {
		det = startDetection(cfg.Detect, cfg.Errors)
		pipe.stage.det = det
	}
	if len(cfg.HostEvents) > 0 {
		ix, stop := startHostEvents(ctx, cfg.HostEvents, cfg.Errors, det)
		defer stop()
		pipe.stage.procs = ix
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case dg, ok := <-in.ch:
			if !ok {
				break loop
			}
			pipe.datagram(dg.from, dg.data, dg.at)
			free <- dg.data[:cap(dg.data)]
		case now := <-tick.C:
			pipe.expireAndFlush(now)
			if err := out.Flush(); err != nil && werr == nil {
				werr = err
			}
		}
	}
	st = pipe.flush()
	if det != nil {
		ds, err := det.close()
		st.Detect = &ds
		werr = errors.Join(werr, err, det.out.err)
	}
	return st, errors.Join(werr, out.Flush())
}

func closeAll(cs []net.PacketConn) {
	for _, c := range cs {
		c.Close()
	}
}
