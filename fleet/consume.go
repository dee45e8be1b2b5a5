package fleet

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consume reads the fleet's topics from the start of their retention,
// with no consumer group: every sensor reads every partition. Where the
// partitions end when it begins is the catch-up's goal; this sensor's
// own messages before that point are restored into the engine (what it
// published before a restart that lost its state), the later ones are
// its own echo and skipped. The other sensors' are merged.
func (f *Fleet) consume(ctx context.Context) {
	defer f.wg.Done()
	goal, ok := f.catchUpGoal(ctx)
	if !ok {
		return
	}
	cc, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(f.cfg.Brokers...),
		kgo.ClientID("outflow-fleet"),
		kgo.ConsumeTopics(f.topics[:]...),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		// Kafka lost data (a cluster rebuilt): read it all again; merging
		// is idempotent, so what was merged already changes nothing.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithHooks(hooks{f}),
	}, f.commonOpts()...)...)
	if err != nil {
		f.log.Error("fleet: cannot make the Kafka consumer; the sensor goes on alone", "err", err.Error())
		return
	}
	defer cc.Close()
	c := catchUp{goal: goal, pos: map[tp]int64{}, hwm: map[tp]int64{}}
	f.checkCaughtUp(&c)
	var o detect.Observation
	for {
		fetches := cc.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		recreated := false
		fetches.EachError(func(topic string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			switch {
			case errors.Is(err, kerr.UnknownTopicID):
				recreated = true
			case errors.As(err, &loss):
				f.once.do("loss", func() {
					f.log.Info("the fleet's topics lost data (a Kafka cluster rebuilt?); reading them again from the start",
						"topic", topic, "partition", p)
				})
			case errors.Is(err, context.Canceled):
			default:
				f.once.do("fetch", func() {
					f.log.Warn("reading the fleet's topics failed; retrying", "topic", topic, "partition", p, "err", err.Error())
				})
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			k := tp{p.Topic, p.Partition}
			for _, r := range p.Records {
				f.handle(r, &o, c.restoring(k, r.Offset))
				c.pos[k] = r.Offset + 1
			}
			if p.HighWatermark > 0 {
				c.hwm[k] = p.HighWatermark
			}
		})
		f.lag.Store(c.lag())
		f.noteRead(c.pos)
		f.checkCaughtUp(&c)
		if recreated {
			// A topic was deleted and made again (a cluster rebuilt):
			// the client reads it only once it forgets the old one, and
			// then from the start.
			f.once.do("recreated", func() {
				f.log.Info("the fleet's topics were made again (a Kafka cluster rebuilt?); reading them from the start")
			})
			cc.PurgeTopicsFromConsuming(f.topics[:]...)
			cc.AddConsumeTopics(f.topics[:]...)
			clear(c.pos)
			clear(c.hwm)
			c.goal = nil // what was there at start is gone: nothing to wait for
			f.checkCaughtUp(&c)
		}
	}
}

// catchUpGoal makes sure the topics exist and asks where they end,
// retrying every RetryEvery while Kafka does not answer. It reports false
// when the fleet stops first.
func (f *Fleet) catchUpGoal(ctx context.Context) (map[tp]span, bool) {
	for {
		err := f.ensureTopics(ctx)
		if err != nil && ctx.Err() == nil {
			f.once.do("topics", func() { f.log.Error(err.Error()) })
		}
		goal, err := f.offsets(ctx)
		if err == nil {
			return goal, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		f.setDown(err)
		t := time.NewTimer(f.cfg.RetryEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
		}
	}
}

// handle decodes one message and folds it into the engine.
func (f *Fleet) handle(r *kgo.Record, o *detect.Observation, restoring bool) {
	f.consumed.Add(1)
	if r.Value == nil {
		return // a tombstone: an operator's deletion, nothing to fold
	}
	if err := Decode(r.Value, o); err != nil {
		f.bad.Add(1)
		f.once.do("bad", func() {
			f.log.Warn("skipping a bad message on the fleet's topics; the next ones are only counted",
				"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err.Error())
		})
		return
	}
	if o.Sensor == f.cfg.SensorID {
		if restoring {
			f.eng.Restore(o)
			f.restored.Add(1)
		}
		return
	}
	f.eng.Merge(o)
	f.merged.Add(1)
}

// catchUp follows the consumer's progress toward the goal.
type catchUp struct {
	goal map[tp]span
	pos  map[tp]int64 // the next offset to read, per partition read from
	hwm  map[tp]int64 // the high watermark of the latest fetch
	done bool
}

// restoring reports whether a record at offset of k was there before
// the sensor started: this sensor's own such records are restored.
func (c *catchUp) restoring(k tp, offset int64) bool {
	g, ok := c.goal[k]
	return !c.done && ok && offset < g.end
}

// reached reports whether every partition has been read to its goal.
func (c *catchUp) reached() bool {
	for k, g := range c.goal {
		if g.end > g.start && c.pos[k] < g.end {
			return false
		}
	}
	return true
}

func (c *catchUp) lag() int64 {
	var n int64
	for k, h := range c.hwm {
		if d := h - c.pos[k]; d > 0 {
			n += d
		}
	}
	return n
}

func (f *Fleet) checkCaughtUp(c *catchUp) {
	if c.done || !c.reached() {
		return
	}
	c.done = true
	f.caughtUp.Store(true)
	close(f.ready)
	f.log.Info("caught up with the fleet", "merged", f.merged.Load(), "restored", f.restored.Load(), "bad", f.bad.Load())
}

// noteRead keeps a copy of where the consumer is, for readTo.
func (f *Fleet) noteRead(pos map[tp]int64) {
	f.readMu.Lock()
	f.read = maps.Clone(pos)
	f.readMu.Unlock()
}

// readTo reports whether the consumer has read every partition up to
// goal's ends.
func (f *Fleet) readTo(goal map[tp]span) bool {
	f.readMu.Lock()
	defer f.readMu.Unlock()
	for k, g := range goal {
		if g.end > g.start && f.read[k] < g.end {
			return false
		}
	}
	return true
}
