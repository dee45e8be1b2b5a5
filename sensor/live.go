//go:build linux

package sensor

import (
	"context"
	"errors"
	"os"
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
	srcs   []*capture.AFPacketSource
	dec    *flows.Decoder
	frames uint64 // the worker's own count: no atomic on the per-frame path
	// What the worker last published of its frames, its sockets' kernel
	// counters and its decoder's errors, for the statistics lines.
	pubFrames, kpackets, kdrops, decodeErrors atomic.Uint64
}

// publishCounts reads the kernel's counters of the worker's sockets and
// its decoder's errors; only the worker's goroutine calls it.
func (w *liveWorker) publishCounts() {
	w.pubFrames.Store(w.frames)
	var p, d uint64
	for _, src := range w.srcs {
		if st, err := src.Stats(); err == nil {
			p += st.Packets
			d += st.Drops
		}
	}
	w.kpackets.Store(p)
	w.kdrops.Store(d)
	var e uint64
	for _, n := range w.dec.Stats.Errors {
		e += n
	}
	w.decodeErrors.Store(e)
}

// kernelCounts sums what the workers last published.
func (s *liveSource) kernelCounts() (packets, drops uint64) {
	for _, w := range s.ws {
		packets += w.kpackets.Load()
		drops += w.kdrops.Load()
	}
	return packets, drops
}

func (s *liveSource) decodeErrors() uint64 {
	var n uint64
	for _, w := range s.ws {
		n += w.decodeErrors.Load()
	}
	return n
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
			dec: flows.NewDecoder()}
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
	watcher := s.sh.watcher
	for _, w := range s.ws {
		s.running.Add(1)
		go func(w *liveWorker) {
			defer s.running.Done()
			var p capture.Packet
			lastExpire := time.Now()
			for ctx.Err() == nil {
				for _, src := range w.srcs {
					err := src.Next(&p)
					if err == nil {
						w.frames++
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
				if now := time.Now(); now.Sub(lastExpire) > time.Second {
					w.table.Expire(now.UnixNano())
					w.flush()
					w.publish()
					w.publishCounts()
					lastExpire = now
				}
			}
			w.table.Flush()
			w.close()
			w.publish() // for the last statistics line
			w.publishCounts()
		}(w)
	}
	s.running.Wait()
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
		st.Frames += w.frames
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
