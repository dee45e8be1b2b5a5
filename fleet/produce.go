package fleet

import (
	"context"
	"errors"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Observe publishes one of the engine's observations (detect.Observer).
// It is called under the engine's lock and never waits: the record joins
// franz-go's buffer, or is dropped and counted when the buffer is full.
func (f *Fleet) Observe(o *detect.Observation) {
	if f.closed.Load() || o.Kind < detect.ObsPrevalence || o.Kind > detect.ObsFirstUpload {
		f.dropped.Add(1)
		return
	}
	r := &kgo.Record{Topic: f.topics[o.Kind-1], Key: AppendKey(nil, f.cfg.SensorID, o), Value: Append(nil, f.cfg.SensorID, o)}
	f.cl.TryProduce(context.Background(), r, f.delivered)
}

// delivered is every record's promise. franz-go retries a record as long
// as Kafka is unreachable; the records it gives back anyway (a topic
// deleted and made again, a cluster rebuilt) join the retry list, within
// the same bound as the backlog, unless Kafka refused them for good.
func (f *Fleet) delivered(r *kgo.Record, err error) {
	switch {
	case err == nil:
		f.produced.Add(1)
	case errors.Is(err, kgo.ErrMaxBuffered):
		f.dropped.Add(1)
		f.once.do("full", func() {
			f.log.Warn("the fleet backlog is full; new observations are dropped and counted until Kafka takes the backlog",
				"backlog", f.cfg.Backlog)
		})
	case errors.Is(err, kgo.ErrClientClosed):
		f.dropped.Add(1)
	case refused(err):
		f.dropped.Add(1)
		f.once.do("refused", func() {
			f.log.Error("Kafka refused a fleet observation; it is dropped and counted, and so are the next ones", "err", err.Error())
		})
	default:
		if errors.Is(err, kerr.UnknownTopicID) {
			f.recreated.Store(true)
			select {
			case f.kick <- struct{}{}:
			default:
			}
		}
		f.retryMu.Lock()
		if len(f.retries) < f.cfg.Backlog {
			f.retries = append(f.retries, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value})
		} else {
			f.dropped.Add(1)
		}
		f.retryMu.Unlock()
	}
}

// refused reports whether Kafka refused a record in a way trying again
// will not change: no right to write the topic, a record too large.
func refused(err error) bool {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return false
	}
	return !ke.Retriable && ke != kerr.UnknownTopicID && ke != kerr.UnknownTopicOrPartition
}

// retry produces the records given back again.
func (f *Fleet) retry() {
	f.retryMu.Lock()
	rs := f.retries
	f.retries = nil
	f.retryMu.Unlock()
	for _, r := range rs {
		f.cl.TryProduce(context.Background(), r, f.delivered)
	}
}
