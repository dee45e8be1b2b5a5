//go:build linux

package sensor

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor/capture"
)

// liveSource is a capture from interfaces: per worker, one socket per
// interface and one flow table, feeding the shared stages.
type liveSource struct {
	cfg     LiveConfig
	sh      *core
	ws      []*liveWorker
	undo    []func() error // promiscuous mode, undone at close
	running sync.WaitGroup
}

type liveWorker struct {
	*worker
	srcs []*capture.AFPacketSource
	dec  *flows.Decoder
	// The worker's own counts of what it read from each interface
	// (srcs[i]): plain fields, no atomic on the per-frame path.
	ifaces []frameCounts
	// What the worker last published, once a second, for snapshots: per
	// interface its frames, bytes and its socket's kernel counters, and
	// its decoder's errors by reason and its table's handshakes.
	pubIfaces     []pubInterface
	pubDecode     [flows.NumReasons]atomic.Uint64
	pubHandshakes struct {
		clientHellos, serverHellos, quicFlows, quicHellos atomic.Uint64
		abandoned                                         [flows.NumAbandonReasons]atomic.Uint64
	}
}

// frameCounts are the frames and bytes (as captured) one worker read from
// one interface.
type frameCounts struct{ frames, bytes uint64 }

// pubInterface is what a worker last published of one interface.
type pubInterface struct{ frames, bytes, kpackets, kdrops atomic.Uint64 }

// publishCounts reads the kernel's counters of the worker's sockets and
// publishes them with the worker's own counts; only the worker's
// goroutine calls it.
func (w *liveWorker) publishCounts() {
	for i, src := range w.srcs {
		p := &w.pubIfaces[i]
		p.frames.Store(w.ifaces[i].frames)
		p.bytes.Store(w.ifaces[i].bytes)
		if st, err := src.Stats(); err == nil {
			p.kpackets.Store(st.Packets)
			p.kdrops.Store(st.Drops)
		}
	}
	for r, n := range w.dec.Stats.Errors {
		w.pubDecode[r].Store(n)
	}
	is := w.table.InspectStats()
	h := &w.pubHandshakes
	h.clientHellos.Store(is.ClientHellos)
	h.serverHellos.Store(is.ServerHellos)
	h.quicFlows.Store(is.QUIC)
	h.quicHellos.Store(is.QUICHellos)
	for r := range is.Abandoned {
		h.abandoned[r].Store(is.Abandoned[r])
	}
}

// snapshot sums what the workers last published.
func (s *liveSource) snapshot() *CaptureCounts {
	c := &CaptureCounts{Interfaces: make([]InterfaceCounts, len(s.cfg.Interfaces))}
	for n, iface := range s.cfg.Interfaces {
		ic := &c.Interfaces[n]
		ic.Name = iface
		for _, w := range s.ws {
			p := &w.pubIfaces[n]
			ic.Packets += p.frames.Load()
			ic.Bytes += p.bytes.Load()
			ic.KernelPackets += p.kpackets.Load()
			ic.KernelDrops += p.kdrops.Load()
		}
	}
	for _, w := range s.ws {
		c.FlowsActive += w.active.Load()
		c.Records += w.pub.records.Load()
		c.Evicted += w.pub.evicted.Load()
		for r := range c.DecodeErrors {
			c.DecodeErrors[r] += w.pubDecode[r].Load()
		}
		h := &w.pubHandshakes
		c.Handshakes.ClientHellos += h.clientHellos.Load()
		c.Handshakes.ServerHellos += h.serverHellos.Load()
		c.Handshakes.QUICFlows += h.quicFlows.Load()
		c.Handshakes.QUICHellos += h.quicHellos.Load()
		for r := range h.abandoned {
			c.Handshakes.Abandoned[r] += h.abandoned[r].Load()
		}
	}
	return c
}

// openLive opens the sockets: on return the capture is in force, so a
// caller that switched network namespace for this goroutine captures in
// that namespace.
func openLive(cfg LiveConfig, sh *core) (*liveSource, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	filter, err := capture.CompileFilter(cfg.Filter)
	if err != nil {
		return nil, err
	}
	s := &liveSource{cfg: cfg, sh: sh}
	for _, iface := range cfg.Interfaces {
		undo, err := capture.Promiscuous(iface)
		if err != nil {
			s.closeSockets()
			return nil, err
		}
		s.undo = append(s.undo, undo)
	}
	s.ws = make([]*liveWorker, cfg.Workers)
	for i := range s.ws {
		s.ws[i] = &liveWorker{worker: newWorker(tableConfig{cfg.Table, cfg.Workers, cfg.HomeNets, cfg.CommunityIDSeed}, sh),
			dec: flows.NewDecoder(), ifaces: make([]frameCounts, len(cfg.Interfaces)), pubIfaces: make([]pubInterface, len(cfg.Interfaces))}
	}
	// One fanout group per interface, unique to this process. The group's
	// sockets are opened together: none hands out a frame until all have
	// joined and the filter is in force, so no flow is split between
	// workers by the group growing (capture.OpenAFPacketGroup).
	for n, iface := range cfg.Interfaces {
		group := uint16(os.Getpid()&0xfff)<<4 | uint16(n&0xf)
		ac := capture.AFPacketConfig{Interface: iface, FanoutGroup: group, Filter: filter}
		ac.LowLatency = cfg.OnHost
		srcs, err := capture.OpenAFPacketGroup(ac, len(s.ws))
		if err != nil {
			s.closeSockets()
			for _, w := range s.ws {
				w.close()
			}
			return nil, err
		}
		var discarded uint64
		for i, w := range s.ws {
			w.srcs = append(w.srcs, srcs[i])
			st, _ := srcs[i].Stats()
			discarded += st.Discarded
		}
		if discarded > 0 {
			sh.log.Info("frames discarded at start: they arrived before every socket had joined the fanout group",
				"interface", iface, "frames", discarded, "sockets", len(s.ws))
		}
	}
	return s, nil
}

// run captures until ctx ends, then ends every open flow and writes its
// record.
func (s *liveSource) run(ctx context.Context) {
	for _, w := range s.ws {
		s.running.Add(1)
		go func(w *liveWorker) {
			defer s.running.Done()
			var p capture.Packet
			lastExpire := time.Now()
			for w.capture(ctx, s, &p, &lastExpire) {
			}
			w.table.Flush()
			w.close()
			w.publish() // for the last statistics line
			w.publishCounts()
		}(w)
	}
	s.running.Wait()
}

// capture reads and accounts frames until ctx ends, and reports whether
// it must be called again: a panic on some frame (a bug the frame reached,
// in the decoder, the table or the inspection) is counted as that frame's
// decode error, kept as a bug report, and capture goes on with the next.
// The recovery costs nothing per frame: it is armed once per call.
func (w *liveWorker) capture(ctx context.Context, s *liveSource, p *capture.Packet, lastExpire *time.Time) (again bool) {
	watcher := s.sh.watcher
	iface := -1
	defer func() {
		if v := recover(); v != nil {
			w.dec.Stats.Errors[flows.ReasonBug]++
			if iface >= 0 {
				s.sh.bug("live capture on "+s.cfg.Interfaces[iface], v, debug.Stack(), p.Data, &frameInfo{p.LinkType, p.CaptureInfo.Timestamp})
			} else {
				s.sh.bug("live capture", v, debug.Stack(), nil, nil)
			}
			s.sh.mendTable(w.table)
			again = true
		}
	}()
	for ctx.Err() == nil {
		for n, src := range w.srcs {
			iface = -1
			err := src.Next(p)
			if err == nil {
				iface = n
				w.ifaces[n].frames++
				w.ifaces[n].bytes += uint64(len(p.Data))
				pkts, _ := w.dec.DecodeWire(p.Data, p.CaptureInfo.Length, p.LinkType, p.CaptureInfo.Timestamp.UnixNano())
				for j := range pkts {
					q := &pkts[j]
					if watcher != nil && q.Depth == 0 && (q.Proto == 17 || q.Proto == 6 && q.Flags&flows.FlagSYN != 0) {
						// A new connection, most likely: look for
						// its socket now, while it is open.
						watcher.Notice(q.Proto, q.SrcAddrPort(), q.DstAddrPort())
					}
					w.table.Update(q)
				}
			} else if !errors.Is(err, capture.ErrIdle) {
				s.sh.log.Warn(err.Error(), problemKey, "capture_read")
				time.Sleep(10 * time.Millisecond)
			}
		}
		// An idle link has no packet time to end flows by.
		if now := time.Now(); now.Sub(*lastExpire) > time.Second {
			iface = -1
			w.table.Expire(now.UnixNano())
			w.flush()
			w.publish()
			w.publishCounts()
			*lastExpire = now
		}
	}
	return false
}

// close returns the counts and releases the sockets; run has returned.
func (s *liveSource) close() LiveStats {
	var st LiveStats
	for n, iface := range s.cfg.Interfaces {
		is := InterfaceStats{Name: iface}
		for _, w := range s.ws {
			ks, err := w.srcs[n].Stats()
			if err != nil {
				s.sh.log.Warn("cannot read the kernel's statistics", "interface", iface, "err", err.Error())
			}
			is.Packets += ks.Packets
			is.Drops += ks.Drops
			is.Discarded += ks.Discarded
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	for _, w := range s.ws {
		for _, c := range w.ifaces {
			st.Frames += c.frames
		}
		st.Records += w.records
		addTableStats(&st.Table, &w.table.Stats)
		addDecodeStats(&st.Decode, &w.dec.Stats)
	}
	s.closeSockets()
	return st
}

func (s *liveSource) closeSockets() {
	for _, w := range s.ws {
		for _, src := range w.srcs {
			src.Close()
		}
		w.srcs = nil
	}
	for _, u := range s.undo {
		u()
	}
	s.undo = nil
}
