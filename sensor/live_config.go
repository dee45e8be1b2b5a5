package sensor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"

	"github.com/outflow-sensor/outflow/enrich/procfs"
	"github.com/outflow-sensor/outflow/flows"
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
	Errors          io.Writer    // problems, as text lines, when Log is nil
	Log             *slog.Logger // problems and notices
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
	if len(cfg.Interfaces) == 0 {
		return LiveStats{}, errors.New("live: no interface given")
	}
	sh, err := newCore(ctx, coreConfig{Flows: cfg.Flows, Log: logger(cfg.Log, cfg.Errors), Inspect: cfg.Table.Inspect.Enable,
		Detect: cfg.Detect, HostEventSources: cfg.HostEvents, OnHost: cfg.OnHost, ProcRoot: cfg.ProcRoot,
		HostEventsOut: cfg.HostEventsOut})
	if err != nil {
		return LiveStats{}, err
	}
	src, err := openLive(cfg, sh)
	var st LiveStats
	if err == nil {
		if cfg.Ready != nil {
			cfg.Ready()
		}
		src.run(ctx)
		st = src.close()
	}
	ss, serr := sh.close()
	st.HostEvents, st.OnHost, st.Detect = ss.HostEvents, ss.OnHost, ss.Detect
	return st, errors.Join(err, serr)
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
