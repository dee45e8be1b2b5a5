package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ensureTopics creates the fleet's topics that are missing: compacted,
// so each key's latest record stays however long the fleet runs, and
// deleted past Retention, so a host not seen for the training period
// drops out of the topics as it does out of the state. Existing topics
// are left as they are.
func (f *Fleet) ensureTopics(ctx context.Context) error {
	if f.cfg.NoCreateTopics {
		return nil
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	retention := strconv.FormatInt(f.cfg.Retention.Milliseconds(), 10)
	for _, t := range f.topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, f.cfg.Partitions, f.cfg.ReplicationFactor
		for k, v := range map[string]string{"cleanup.policy": "compact,delete", "retention.ms": retention} {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, f.cl)
	if err != nil {
		return fmt.Errorf("fleet: cannot create the topics %v: %w", f.topics, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("fleet: cannot create topic %s (%w); create it compacted (cleanup.policy=compact,delete) or let the sensor", t.Topic, err)
		}
	}
	return nil
}

// tp is one partition of one topic.
type tp struct {
	topic     string
	partition int32
}

// span is where a partition's log starts and ends (the offset the next
// record will take).
type span struct{ start, end int64 }

// offsets asks where each partition of the fleet's topics starts and
// ends now: the catch-up reads up to those ends. A topic that does not
// exist yet has nothing to catch up on.
func (f *Fleet) offsets(ctx context.Context) (map[tp]span, error) {
	meta := kmsg.NewPtrMetadataRequest()
	for _, t := range f.topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(t)
		meta.Topics = append(meta.Topics, mt)
	}
	mresp, err := meta.RequestWith(ctx, f.cl)
	if err != nil {
		return nil, err
	}
	spans := map[tp]span{}
	lreq := kmsg.NewPtrListOffsetsRequest()
	for _, t := range mresp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			if f.cfg.NoCreateTopics && errors.Is(err, kerr.UnknownTopicOrPartition) {
				f.once.do("missing", func() {
					f.log.Error("a fleet topic does not exist and NoCreateTopics is set; observations wait for it in the backlog",
						"topic", *t.Topic)
				})
			}
			continue // missing or just made: nothing to catch up on
		}
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = *t.Topic
		for _, p := range t.Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition = p.Partition
			lt.Partitions = append(lt.Partitions, lp)
			spans[tp{*t.Topic, p.Partition}] = span{}
		}
		lreq.Topics = append(lreq.Topics, lt)
	}
	if len(spans) == 0 {
		return spans, nil
	}
	for _, ts := range []int64{-2, -1} { // earliest, then latest
		for i := range lreq.Topics {
			for j := range lreq.Topics[i].Partitions {
				lreq.Topics[i].Partitions[j].Timestamp = ts
			}
		}
		for _, shard := range f.cl.RequestSharded(ctx, lreq) {
			if shard.Err != nil {
				return nil, shard.Err
			}
			resp, ok := shard.Resp.(*kmsg.ListOffsetsResponse)
			if !ok {
				return nil, errors.New("fleet: the brokers answered a ListOffsets request with something else")
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						return nil, fmt.Errorf("fleet: offsets of %s/%d: %w", t.Topic, p.Partition, err)
					}
					k := tp{t.Topic, p.Partition}
					s := spans[k]
					if ts == -2 {
						s.start = p.Offset
					} else {
						s.end = p.Offset
					}
					spans[k] = s
				}
			}
		}
	}
	return spans, nil
}
