// Package fleet shares what the learning analytics learn among the
// sensors of one organisation, through Kafka (github.com/twmb/franz-go):
// each sensor publishes its engine's observations (detect.Observer) to
// compacted topics and merges the other sensors' (detect.Engine.Merge),
// so "few internal hosts reach this destination" and "the top uploaders
// of the organisation" mean the whole organisation, not one link.
//
// A sensor never depends on Kafka: while it is unreachable the engine
// goes on alone, observations wait in a bounded backlog (the rest are
// dropped and counted), and once Kafka is back the backlog is published
// and the others' merged. docs/fleet.md describes the topics and the wire
// format.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Stats counts what the fleet client did.
type Stats struct {
	Produced uint64 // observations Kafka acknowledged
	Dropped  uint64 // observations lost: backlog full, refused by Kafka, or undelivered at Stop
	Consumed uint64 // messages read from the topics, this sensor's own included
	Merged   uint64 // other sensors' observations folded into the engine
	Restored uint64 // this sensor's own, read back during the catch-up
	Bad      uint64 // messages refused (cut short, malformed, unknown version) and skipped
	Lag      int64  // messages on the topics not read yet, as of the last fetch
	Backlog  int64  // observations waiting for Kafka now
	CaughtUp bool   // the topics were read up to where they ended at start
	Down     bool   // Kafka is unreachable as far as the client knows
}

// Fleet is one sensor's membership of the fleet: New (inert), Start,
// Stop.
type Fleet struct {
	cfg    Config
	eng    *detect.Engine
	log    *slog.Logger
	topics [3]string // by detect.ObservationKind - 1

	cl      *kgo.Client // produces, and asks the brokers for offsets and topics
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	ready   chan struct{}
	kick    chan struct{} // Kafka is reachable again: check the topics
	started atomic.Bool   // cl is set
	closed  atomic.Bool

	readMu sync.Mutex
	read   map[tp]int64 // the consumer's next offsets (readTo)

	retryMu   sync.Mutex
	retries   []*kgo.Record // given back by the client, produced again every RetryEvery
	recreated atomic.Bool   // a topic was made again under a new ID

	produced, dropped, consumed, merged, restored, bad atomic.Uint64
	lag                                                atomic.Int64
	down, caughtUp                                     atomic.Bool
	once                                               onceLog
}

// New checks cfg and returns a fleet client for eng; nothing runs and
// nothing is dialled before Start.
func New(cfg Config, eng *detect.Engine) (*Fleet, error) {
	if eng == nil {
		return nil, errors.New("fleet: no detection engine to share")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Fleet{cfg: c, eng: eng, log: c.Logger.With("component", "fleet", "sensor", c.SensorID),
		ready: make(chan struct{}), kick: make(chan struct{}, 1)}
	f.topics = [3]string{c.Topic + "prevalence", c.Topic + "uploads", c.Topic + "first-uploads"}
	return f, nil
}

// Topics are the fleet's topics: prevalence, upload totals, large uploads.
func (f *Fleet) Topics() []string { return f.topics[:] }

// SensorID is the ID this sensor publishes under.
func (f *Fleet) SensorID() string { return f.cfg.SensorID }

// Start connects the engine to the fleet: its observations are published
// from now on, and the topics are read from the start of their retention,
// the other sensors' observations merged and this sensor's own restored.
// Start returns once the topics are read up to where they ended when it
// began (the catch-up), or after Config.CatchUp, or when ctx ends,
// whichever is first: a sensor serves with what the fleet learnt, but
// never waits on Kafka for long. An unreachable Kafka is logged, not an
// error; the error is only for options franz-go refuses.
func (f *Fleet) Start(ctx context.Context) error {
	if f.started.Load() {
		return errors.New("fleet: started already; a stopped Fleet is not started again, make a new one")
	}
	cl, err := kgo.NewClient(f.clientOpts()...)
	if err != nil {
		return fmt.Errorf("fleet: cannot make a Kafka client: %w", err)
	}
	f.cl = cl
	f.started.Store(true)
	run, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.eng.SetObserver(f)
	f.wg.Add(2)
	go f.supervise(run)
	go f.consume(run)
	if f.cfg.CatchUp < 0 {
		return nil
	}
	t := time.NewTimer(f.cfg.CatchUp)
	defer t.Stop()
	select {
	case <-f.ready:
	case <-t.C:
		f.log.Warn("the fleet's topics are not read to their end yet; serving with what was merged, the catch-up goes on",
			"waited", f.cfg.CatchUp.String(), "merged", f.merged.Load(), "lag", f.lag.Load())
	case <-ctx.Done():
	}
	return nil
}

// clientOpts are the producing client's options: an idempotent producer
// (franz-go's default, acks from all in-sync replicas) whose records wait
// for Kafka as long as it takes (franz-go retries a record without end by
// default), in a buffer of Backlog records.
func (f *Fleet) clientOpts() []kgo.Opt {
	c := &f.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID("outflow-fleet"),
		kgo.MaxBufferedRecords(c.Backlog),
		// A topic missing on a Kafka cluster rebuilt from scratch is
		// created again (supervise); records wait for it meanwhile.
		kgo.UnknownTopicRetries(-1),
		kgo.WithHooks(hooks{f}),
	}
	return append(opts, f.commonOpts()...)
}

// commonOpts are what every client of this sensor says to the brokers:
// TLS, SASL and the caller's extra options.
func (f *Fleet) commonOpts() []kgo.Opt {
	var opts []kgo.Opt
	if f.cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(f.cfg.TLS.Clone()))
	}
	if f.cfg.SASL != nil {
		opts = append(opts, kgo.SASL(f.cfg.SASL))
	}
	return append(opts, f.cfg.Opts...)
}

// Ready is closed once the catch-up is done: the topics were read up to
// where they ended when Start began.
func (f *Fleet) Ready() <-chan struct{} { return f.ready }

// Stats returns the counts so far; safe at any time.
func (f *Fleet) Stats() Stats {
	s := Stats{Produced: f.produced.Load(), Dropped: f.dropped.Load(), Consumed: f.consumed.Load(), Merged: f.merged.Load(),
		Restored: f.restored.Load(), Bad: f.bad.Load(), Lag: f.lag.Load(), CaughtUp: f.caughtUp.Load(), Down: f.down.Load()}
	if f.started.Load() && !f.closed.Load() {
		s.Backlog = f.cl.BufferedProduceRecords()
	}
	f.retryMu.Lock()
	s.Backlog += int64(len(f.retries))
	f.retryMu.Unlock()
	return s
}

// Stop publishes the engine's running upload totals, stops observing,
// waits up to Config.StopTimeout for the backlog to reach Kafka (what
// does not is counted as dropped) and closes the clients. The engine goes
// on alone.
func (f *Fleet) Stop() {
	if !f.started.Load() || f.closed.Load() {
		return
	}
	f.eng.PublishCounters()
	f.eng.SetObserver(nil)
	f.retry()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.StopTimeout)
	if err := f.cl.Flush(ctx); err != nil {
		f.log.Warn("Kafka did not take the fleet backlog before the stop; it is dropped", "backlog", f.cl.BufferedProduceRecords())
	}
	cancel()
	f.closed.Store(true)
	f.cancel()
	f.wg.Wait()
	f.cl.Close() // fails what is still buffered: counted as dropped
	f.retryMu.Lock()
	f.dropped.Add(uint64(len(f.retries)))
	f.retries = nil
	f.retryMu.Unlock()
}

// supervise publishes the running upload totals every PublishEvery,
// checks the topics at start and each time Kafka comes back, and
// produces again what Kafka gave back (produce.go).
func (f *Fleet) supervise(ctx context.Context) {
	defer f.wg.Done()
	t := time.NewTicker(f.cfg.PublishEvery)
	defer t.Stop()
	r := time.NewTicker(f.cfg.RetryEvery)
	defer r.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.eng.PublishCounters()
		case <-f.kick:
			if f.recreated.Swap(false) {
				// Records cannot go to a topic deleted and made again
				// (a cluster rebuilt) until the client forgets it: its
				// buffered records come back to the retry list.
				f.cl.PurgeTopicsFromProducing(f.topics[:]...)
			}
			if err := f.ensureTopics(ctx); err != nil && ctx.Err() == nil {
				f.once.do("topics", func() { f.log.Error(err.Error()) })
			}
			f.retry()
		case <-r.C:
			f.retry()
		}
	}
}

// hooks follow the client's connections, so a lost Kafka is logged once
// per outage and its return once, and a return re-checks the topics.
type hooks struct{ f *Fleet }

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h hooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.f.setDown(err)
		return
	}
	h.f.setUp()
}

func (f *Fleet) setDown(err error) {
	if f.down.CompareAndSwap(false, true) {
		f.log.Warn("Kafka is unreachable; the sensor goes on alone, keeps what it learns for later and retries",
			"brokers", f.cfg.Brokers, "err", err.Error())
	}
}

func (f *Fleet) setUp() {
	if f.down.CompareAndSwap(true, false) {
		f.log.Info("Kafka is reachable again; publishing the backlog and merging the fleet's observations",
			"backlog", f.cl.BufferedProduceRecords())
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
}

// onceLog logs each kind of trouble once per run: everything after is
// counted, not logged.
type onceLog struct{ seen sync.Map }

func (o *onceLog) do(key string, fn func()) {
	if _, loaded := o.seen.LoadOrStore(key, struct{}{}); !loaded {
		fn()
	}
}
