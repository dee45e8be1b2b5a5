//go:build linux

package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/enrich/dnscache"
	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
	"github.com/outflow-sensor/outflow/enrich/procfs"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor/capture"
)

// LiveConfig says which interfaces to watch and where records go.
type LiveConfig struct {
	Interfaces      []string
	Workers         int
	Filter          string // a tcpdump expression
	HomeNets        []netip.Prefix
	CommunityIDSeed uint16
	Table           flows.Config
	Flows           io.Writer
	Errors          io.Writer
	// Ready, when set, is called once every socket is open and capturing.
	Ready func()
	// OnHost: Outflow runs on the host whose traffic it sees; flows are
	// attributed to processes from /proc (ProcRoot, default /proc).
	OnHost   bool
	ProcRoot string
	// HostEvents are host-event logs read at start, as in Replay.
	HostEvents []string
	// Detect, when set, runs the analytics on the flows.
	Detect *Detection
	// HostEventsOut, with OnHost, receives the host events each
	// attribution stands for (processes, connections, crypto libraries
	// mapped), one line each, for replay --host-events to read back.
	HostEventsOut io.Writer
}

// InterfaceStats is what the kernel counted on one interface's sockets.
type InterfaceStats struct {
	Name    string
	Packets uint64 // seen by the kernel for our sockets, drops included
	Drops   uint64 // dropped because a ring was full
	// Discarded frames arrived while the fanout group was being built,
	// before its filter was in force, and were thrown away at start.
	Discarded uint64
}

// LiveStats is what a live capture counted.
type LiveStats struct {
	Interfaces []InterfaceStats
	Frames     uint64
	Records    uint64
	Decode     flows.DecodeStats
	Table      flows.TableStats
	OnHost     *procfs.Stats // nil unless OnHost
	HostEvents *HostEventStats
	Detect     *DetectStats
}

// Live captures from the interfaces until ctx ends, then ends every open
// flow, writes its record, and returns. Each worker owns one socket per
// interface, all in that interface's fanout group, and one flow table: the
// kernel's symmetric flow hash sends both directions of a flow to the same
// worker, so no table needs a lock. Sockets are opened before Live returns
// control to its workers, so a caller that switched network namespace for
// this goroutine captures in that namespace.
func Live(ctx context.Context, cfg LiveConfig) (LiveStats, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if len(cfg.Interfaces) == 0 {
		return LiveStats{}, errors.New("live: no interface given")
	}
	if cfg.Flows == nil {
		cfg.Flows = io.Discard
	}
	if cfg.Errors == nil {
		cfg.Errors = io.Discard
	}
	filter, err := capture.CompileFilter(cfg.Filter)
	if err != nil {
		return LiveStats{}, err
	}
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for _, iface := range cfg.Interfaces {
		undo, err := capture.Promiscuous(iface)
		if err != nil {
			return LiveStats{}, err
		}
		closers = append(closers, undo)
	}
	out := &lineWriter{w: cfg.Flows}
	var names *dnscache.Cache
	if cfg.Table.Inspect.Enable {
		names = dnscache.New(dnscache.DefaultConfig())
	}
	rc := ReplayConfig{Workers: cfg.Workers, HomeNets: cfg.HomeNets, CommunityIDSeed: cfg.CommunityIDSeed, Table: cfg.Table}
	if cfg.Detect != nil {
		rc.det = startDetection(cfg.Detect, cfg.Errors)
	}
	var js joiners
	var watcher *procfs.Watcher
	if cfg.OnHost {
		root := cfg.ProcRoot
		if root == "" {
			root = "/proc"
		}
		watcher = procfs.NewWatcher(root, 2*time.Minute)
		if cfg.HostEventsOut != nil {
			lw := &lineWriter{w: cfg.HostEventsOut}
			var buf []byte
			watcher.OnEvents = func(evs []feed.Event) {
				buf = buf[:0]
				for i := range evs {
					buf = feed.AppendRecord(buf, &evs[i])
				}
				lw.write(buf)
			}
		}
		wctx, stop := context.WithCancel(context.Background())
		defer stop()
		go watcher.Run(wctx)
		js = append(js, watcher)
	}
	var stopHostEvents func() *HostEventStats
	if len(cfg.HostEvents) > 0 {
		// Files are followed, listeners listen, for as long as the
		// capture runs.
		var ix *process.Index
		ix, stopHostEvents = startHostEvents(ctx, cfg.HostEvents, cfg.Errors, rc.det)
		js = append(js, ix)
	}
	if len(js) > 0 {
		rc.joiner = js
	}
	type liveWorker struct {
		*worker
		srcs []*capture.AFPacketSource
		dec  *flows.Decoder
	}
	ws := make([]*liveWorker, cfg.Workers)
	for i := range ws {
		ws[i] = &liveWorker{worker: newWorker(rc, out, names), dec: flows.NewDecoder()}
	}
	// One fanout group per interface, unique to this process. The group's
	// sockets are opened together: none hands out a frame until all have
	// joined and the filter is in force, so no flow is split between
	// workers by the group growing (capture.OpenAFPacketGroup).
	for n, iface := range cfg.Interfaces {
		group := uint16(os.Getpid()&0xfff)<<4 | uint16(n&0xf)
		ac := capture.AFPacketConfig{Interface: iface, FanoutGroup: group, Filter: filter}
		ac.LowLatency = cfg.OnHost
		srcs, err := capture.OpenAFPacketGroup(ac, len(ws))
		if err != nil {
			for _, w := range ws {
				for _, s := range w.srcs {
					s.Close()
				}
			}
			return LiveStats{}, err
		}
		var discarded uint64
		for i, w := range ws {
			w.srcs = append(w.srcs, srcs[i])
			st, _ := srcs[i].Stats()
			discarded += st.Discarded
		}
		if discarded > 0 {
			fmt.Fprintf(cfg.Errors, "outflow: %s: discarded %d frames that arrived before all %d sockets had joined the fanout group\n", iface, discarded, len(ws))
		}
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	var wg sync.WaitGroup
	frames := make([]uint64, len(ws))
	for i, w := range ws {
		wg.Add(1)
		go func(i int, w *liveWorker) {
			defer wg.Done()
			var p capture.Packet
			lastExpire := time.Now()
			for ctx.Err() == nil {
				for _, src := range w.srcs {
					err := src.Next(&p)
					if err == nil {
						frames[i]++
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
						fmt.Fprintf(cfg.Errors, "outflow: %v\n", err)
						time.Sleep(10 * time.Millisecond)
					}
				}
				// An idle link has no packet time to end flows by.
				if now := time.Now(); now.Sub(lastExpire) > time.Second {
					w.table.Expire(now.UnixNano())
					w.flush()
					lastExpire = now
				}
			}
			w.table.Flush()
			w.close()
		}(i, w)
	}
	wg.Wait()

	st := LiveStats{}
	if stopHostEvents != nil {
		st.HostEvents = stopHostEvents()
	}
	if watcher != nil {
		ws := watcher.Snapshot()
		st.OnHost = &ws
	}
	for n, iface := range cfg.Interfaces {
		is := InterfaceStats{Name: iface}
		for _, w := range ws {
			ks, err := w.srcs[n].Stats()
			if err != nil {
				fmt.Fprintf(cfg.Errors, "outflow: kernel statistics of %s: %v\n", iface, err)
			}
			is.Packets += ks.Packets
			is.Drops += ks.Drops
			is.Discarded += ks.Discarded
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	for i, w := range ws {
		for _, s := range w.srcs {
			s.Close()
		}
		st.Frames += frames[i]
		st.Records += w.records
		addTableStats(&st.Table, &w.table.Stats)
		addDecodeStats(&st.Decode, &w.dec.Stats)
	}
	if rc.det != nil {
		ds, err := rc.det.close()
		st.Detect = &ds
		return st, errors.Join(out.err, err, rc.det.out.err)
	}
	return st, out.err
}

func addDecodeStats(dst, s *flows.DecodeStats) {
	dst.Frames += s.Frames
	dst.NonIP += s.NonIP
	for i := range s.Errors {
		dst.Errors[i] += s.Errors[i]
	}
	for i := range s.Tunnels {
		dst.Tunnels[i] += s.Tunnels[i]
	}
}
