package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/fleet"
)

// Detection runs the analytics on a sensor's flows and host events.
type Detection struct {
	Config *detect.Config // compiled: detect.LoadConfig or detect.Compiled
	// StatePath, when set, is loaded at start (a missing or corrupt file is
	// reported and training starts afresh) and saved every SaveEvery and
	// at the end.
	StatePath string
	SaveEvery time.Duration
	// Alerts receives JSON lines (a test, a pipe); AlertOutputs are the
	// configured outputs, each in its format.
	Alerts       io.Writer
	AlertOutputs []Output
	// Fleet, when set, shares what the learning analytics know with the
	// other sensors through Kafka (docs/fleet.md).
	Fleet   *fleet.Config
	running atomic.Pointer[detect.Engine]
}

// Reconfigure puts a new compiled config in force in the running
// analytics (SIGHUP): thresholds, lists and peer groups change, the state
// stays. It reports false when detection is not running.
func (d *Detection) Reconfigure(cfg *detect.Config) bool {
	e := d.running.Load()
	if e == nil {
		return false
	}
	e.Reconfigure(cfg)
	return true
}

// DetectStats is what detection counted.
type DetectStats struct {
	detect.Stats
	Fleet        *fleet.Stats // nil for a lone sensor
	StateEntries uint64
	StateBytes   uint64
}

// detector is a running engine with its alert output and state saving.
type detector struct {
	eng  *detect.Engine
	cfg  *Detection
	out  *lineWriter // Alerts, when given
	outs []encoder
	stop chan struct{}
	wg   sync.WaitGroup
	log  *slog.Logger
	st   *detect.State
	// Exporters hand batches of flows to the detector's own goroutine, so
	// the analytics run beside the JSON encoding rather than after it.
	batches *queue[[]detect.Flow] // record stages → the analytics: blocks
	free    chan []detect.Flow
	done    chan struct{}
	fleet   *fleet.Fleet // nil: a lone sensor
	alerts  alertCounts  // by analytic and severity, for snapshots
	// bug reports a flow the analytics panicked on (core.bug).
	bug bugFunc
}

const detectBatchLen = 256

// batch returns an empty batch to fill.
func (x *detector) batch() []detect.Flow {
	select {
	case b := <-x.free:
		return b[:0]
	default:
		return make([]detect.Flow, 0, detectBatchLen)
	}
}

// send passes a filled batch to the detector's goroutine.
func (x *detector) send(b []detect.Flow) {
	if len(b) > 0 {
		x.batches.send(b)
	}
}

// judge hands b's flows from i on to the analytics and returns where to go
// on from: the end, or past a flow an analytic panicked on (a bug the
// flow reached), which is counted and reported; the engine's lock is
// released by its own defer. The recovery is armed once per batch.
func (x *detector) judge(b []detect.Flow, i int) (next int) {
	defer func() {
		if v := recover(); v != nil {
			x.bug(fmt.Sprintf("the analytics on flow %v -> %v proto %d", b[i].Orig, b[i].Resp, b[i].Proto), v, debug.Stack(), nil, nil)
			b[i] = detect.Flow{}
			next = i + 1
		}
	}()
	for ; i < len(b); i++ {
		x.eng.Flow(&b[i])
		b[i] = detect.Flow{} // drop the attributions' pointers
	}
	return i
}

func (x *detector) run() {
	defer close(x.done)
	for b := range x.batches.ch {
		for i := 0; i < len(b); {
			i = x.judge(b, i)
		}
		select {
		case x.free <- b:
		default:
		}
	}
}

// defaultStateBytes is the detection state's size when State.MaxBytes is
// not set.
const defaultStateBytes = 64 << 20

func startDetection(d *Detection, log *slog.Logger, bug bugFunc) (*detector, error) {
	maxBytes := int(d.Config.State.MaxBytes)
	if maxBytes == 0 {
		maxBytes = defaultStateBytes
	}
	var st *detect.State
	if d.StatePath != "" {
		var err error
		if st, err = detect.LoadState(d.StatePath, maxBytes); err != nil {
			if errors.Is(err, detect.ErrNoState) {
				log.Info(err.Error())
			} else {
				log.Warn(err.Error())
			}
		}
	} else {
		st = detect.NewState(maxBytes)
	}
	outs, lw := outputsOf(d.Alerts, d.AlertOutputs)
	x := &detector{cfg: d, out: lw, outs: encoders(outs), stop: make(chan struct{}), log: log, st: st, bug: bug,
		batches: newQueue[[]detect.Flow]("records→detection", Block, 8), free: make(chan []detect.Flow, 16), done: make(chan struct{})}
	x.eng = detect.New(d.Config, st, nil, func(a *detect.Alert) {
		x.alerts.add(a)
		// An alert goes out at once: it is rare, and waited for.
		for i := range x.outs {
			x.outs[i].alert(a)
			x.outs[i].flush()
		}
	})
	d.running.Store(x.eng)
	if d.Fleet != nil {
		// The fleet's baseline is caught up before any flow is judged,
		// within the fleet's CatchUp; Kafka being down is not an error.
		fc := *d.Fleet
		fc.Logger = log
		fl, err := fleet.New(fc, x.eng)
		if err == nil {
			err = fl.Start(context.Background())
		}
		if err != nil {
			d.running.Store(nil)
			return nil, fmt.Errorf("joining the fleet: %w", err)
		}
		x.fleet = fl
	}
	go x.run()
	if d.StatePath != "" && d.SaveEvery > 0 {
		x.wg.Add(1)
		go func() {
			defer x.wg.Done()
			t := time.NewTicker(d.SaveEvery)
			defer t.Stop()
			for {
				select {
				case <-x.stop:
					return
				case <-t.C:
					if err := x.eng.Save(d.StatePath); err != nil {
						log.Error("saving the state failed; the next save tries again", "state", d.StatePath, "err", err.Error())
					}
				}
			}
		}()
	}
	return x, nil
}

// close ends the last day, saves the state and returns the counts. The
// exporters must have finished sending.
func (x *detector) close() (DetectStats, error) {
	x.batches.close()
	<-x.done
	var fs *fleet.Stats
	if x.fleet != nil {
		// What this sensor learnt last reaches the fleet before the
		// state is saved.
		x.fleet.Stop()
		st := x.fleet.Stats()
		fs = &st
	}
	x.cfg.running.Store(nil)
	close(x.stop)
	x.wg.Wait()
	x.eng.Close()
	var err error
	if x.cfg.StatePath != "" {
		if err = x.eng.Save(x.cfg.StatePath); err != nil {
			err = fmt.Errorf("saving state: %w", err)
		}
	}
	return DetectStats{Stats: x.eng.Stats, StateEntries: x.st.Entries(), StateBytes: x.st.Bytes(), Fleet: fs}, err
}
