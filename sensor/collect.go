package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/internal/allowlist"
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
	Errors  io.Writer    // problems, as text lines, when Log is nil
	Log     *slog.Logger // problems with a datagram or a socket
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
	sh, err := newCore(ctx, coreConfig{Flows: cfg.Flows, Log: logger(cfg.Log, cfg.Errors), Detect: cfg.Detect, HostEventSources: cfg.HostEvents})
	if err != nil {
		return ExportStats{}, err
	}
	src, err := openCollect(cfg, sh)
	var st ExportStats
	if err == nil {
		st = src.run(ctx)
	}
	ss, serr := sh.close()
	st.Detect = ss.Detect
	return st, errors.Join(err, serr)
}

// collectSource is a set of flow-export listeners feeding the core.
type collectSource struct {
	cfg     CollectConfig
	sh      *core
	conns   []net.PacketConn
	readers []*udpReader     // with the kernel's drop counts; one per conn, made at open
	allow   []allowlist.List // per conn: the senders it takes (allow=)
	refused atomic.Uint64    // datagrams from senders not allowed, dropped
	// What the decoding goroutine last published, for snapshots.
	pub struct {
		datagrams, records, flows atomic.Uint64
		errors                    [collect.NumReasons]atomic.Uint64
		budget                    atomic.Pointer[collect.BudgetStats]
	}
}

// snapshot is what the listeners counted, as last published.
func (s *collectSource) snapshot() *ListenerCounts {
	c := &ListenerCounts{Datagrams: s.pub.datagrams.Load(), Records: s.pub.records.Load(), Flows: s.pub.flows.Load(),
		KernelDrops: s.kernelDrops(), NotAllowed: s.refused.Load()}
	for r := range c.DecodeErrors {
		c.DecodeErrors[r] = s.pub.errors[r].Load()
	}
	if b := s.pub.budget.Load(); b != nil {
		c.Budget = *b
	}
	return c
}

// kernelDrops sums what the kernel dropped on the listeners' sockets.
func (s *collectSource) kernelDrops() uint64 {
	var n uint64
	for _, r := range s.readers {
		n += r.drops.Load()
	}
	return n
}

// publish copies the pipeline's counts for other goroutines to read.
func (s *collectSource) publish(p *exportPipeline) {
	s.pub.datagrams.Store(p.st.Datagrams)
	s.pub.records.Store(p.st.Records)
	s.pub.flows.Store(p.st.Flows)
	for r, n := range p.dec.Errors {
		s.pub.errors[r].Store(n)
	}
	b := p.dec.Budget()
	s.pub.budget.Store(&b)
}

// DefaultSocketBuffer is the receive buffer a flow listener asks the
// kernel for: exporters send in bursts, and the buffer absorbs them while
// the decoder catches up.
const DefaultSocketBuffer = 16 << 20

// flowListener is a flow listener's URL read: netflow:// or sflow://
// HOST:PORT, with allow=PREFIX,... for the senders it takes and
// buffer=SIZE for its socket's receive buffer.
type flowListener struct {
	url    *url.URL
	allow  allowlist.List
	buffer int
}

func parseFlowListener(l string) (flowListener, error) {
	u, err := url.Parse(l)
	if err != nil || (u.Scheme != "netflow" && u.Scheme != "sflow") || u.Host == "" || u.Port() == "" {
		return flowListener{}, fmt.Errorf("%q: want netflow://HOST:PORT or sflow://HOST:PORT", l)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return flowListener{}, fmt.Errorf("%q: the options after ? cannot be read", l)
	}
	fl := flowListener{url: u, buffer: DefaultSocketBuffer}
	for k, v := range q {
		if len(v) != 1 {
			return flowListener{}, fmt.Errorf("%q: option %s is given %d times", l, k, len(v))
		}
		switch k {
		case "allow":
			if fl.allow, err = allowlist.Parse(v[0]); err != nil {
				return flowListener{}, fmt.Errorf("%q: %w", l, err)
			}
		case "buffer":
			n, err := detect.ParseBytes(v[0])
			if err != nil || n < 4<<10 || n > 1<<30 {
				return flowListener{}, fmt.Errorf("%q: buffer=%s: want a size from 4KiB to 1GiB", l, v[0])
			}
			fl.buffer = int(n)
		default:
			return flowListener{}, fmt.Errorf("%q: option %s: a flow listener takes allow=PREFIX,... and buffer=SIZE", l, k)
		}
	}
	return fl, nil
}

// CheckFlowListener says whether a flow listener's URL can be listened on.
func CheckFlowListener(l string) error {
	_, err := parseFlowListener(l)
	return err
}

// openCollect binds the listeners.
func openCollect(cfg CollectConfig, sh *core) (*collectSource, error) {
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	s := &collectSource{cfg: cfg, sh: sh}
	var addrs []net.Addr
	for _, l := range cfg.Listen {
		fl, err := parseFlowListener(l)
		if err != nil {
			closeAll(s.conns)
			return nil, err
		}
		c, err := net.ListenPacket("udp", feed.LoopbackIfNoHost(fl.url.Host))
		if err != nil {
			closeAll(s.conns)
			return nil, fmt.Errorf("unable to listen on %s: %w", l, err)
		}
		if uc, ok := c.(*net.UDPConn); ok {
			if got := setReadBuffer(uc, fl.buffer); got < fl.buffer {
				// Without privilege the kernel grants at most
				// net.core.rmem_max; a burst past what it granted is
				// dropped (and counted as kernel_drops).
				sh.log.Warn("the flow listener's receive buffer is smaller than asked: raise net.core.rmem_max, or run as root",
					"listener", c.LocalAddr().String(), "asked", fl.buffer, "granted", got)
			}
		}
		s.conns = append(s.conns, c)
		s.readers = append(s.readers, newUDPReader(c))
		s.allow = append(s.allow, fl.allow)
		addrs = append(addrs, c.LocalAddr())
	}
	if cfg.Ready != nil {
		cfg.Ready(addrs)
	}
	return s, nil
}

// run receives until ctx ends, then writes every flow still waiting for
// its reverse and closes the sockets.
func (s *collectSource) run(ctx context.Context) ExportStats {
	cfg := s.cfg
	// socket → decoder: blocks; the socket's buffer (16 MiB asked) then
	// fills and the kernel drops.
	in := newQueue[datagram]("socket→decoder", Block, datagramQueueLen)
	bufs := newDatagramBuffers()
	var readers sync.WaitGroup
	for i, c := range s.conns {
		r, allow := s.readers[i], s.allow[i]
		readers.Add(1)
		go func(c net.PacketConn) {
			defer readers.Done()
			scratch := make([]byte, maxDatagram)
			for {
				n, from, err := r.read(scratch)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					s.sh.log.Warn("receive failed", "listener", c.LocalAddr().String(), "err", err.Error(), problemKey, "receive")
					continue
				}
				if cfg.Received != nil {
					cfg.Received.Add(1)
				}
				if !allow.Allows(from) {
					// Anyone who reaches the port could forge flows:
					// a sender outside allow= is dropped and counted.
					s.refused.Add(1)
					continue
				}
				in.send(datagram{from: from, data: bufs.copy(scratch[:n]), at: time.Now()})
			}
		}(c)
	}
	go func() {
		<-ctx.Done()
		closeAll(s.conns)
		readers.Wait()
		in.close()
	}()
	pipe := newExportPipeline(cfg.Window, cfg.Decoder, cfg.HomeNets, cfg.CommunityIDSeed, s.sh, s.sh.stage())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case dg, ok := <-in.ch:
			if !ok {
				st := pipe.flush()
				st.KernelDrops = s.kernelDrops()
				st.NotAllowed = s.refused.Load()
				s.publish(pipe)
				return st
			}
			pipe.datagram(dg.from, dg.data, dg.at)
			bufs.put(dg.data)
		case now := <-tick.C:
			if n := pipe.dec.Expire(now); n > 0 {
				s.sh.log.Info("exporters forgotten after sending nothing", "exporters", n, "reason", "idle")
			}
			pipe.expireAndFlush(now)
			s.publish(pipe)
		}
	}
}

func closeAll(cs []net.PacketConn) {
	for _, c := range cs {
		c.Close()
	}
}
