package kafka

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const topic = "flows"

// cluster starts franz-go's in-process Kafka (it speaks the wire
// protocol on a loopback port) with the topic in three partitions.
func cluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dest is the kafka:// URL of the cluster's topic with the options.
func dest(c *kfake.Cluster, options string) string {
	u := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/" + topic
	if options != "" {
		u += "?" + options
	}
	return u
}

// transport parses u and makes its transport, closed at the end.
func transport(t testing.TB, u string) *Transport {
	t.Helper()
	cfg, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// records makes n records of hosts' flows: record i is host i%hosts's,
// and every tenth has no host.
func records(n, hosts int) []sink.Record {
	recs := make([]sink.Record, n)
	for i := range recs {
		key := netip.AddrFrom4([4]byte{10, 0, byte(i % hosts), 1})
		if i%10 == 9 {
			key = netip.Addr{}
		}
		if i%7 == 3 {
			key = netip.MustParseAddr(fmt.Sprintf("fd00::%x", i%hosts))
		}
		recs[i] = sink.Record{Key: key, Value: fmt.Appendf(nil, `{"id":%d,"orig_h":%q}`, i, key)}
	}
	return recs
}

// consume reads n records of the topic back with a separate franz-go
// consumer, the way a reader of the topic would.
func consume(t testing.TB, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	if n > 0 {
		consumeUntil(t, func(r *kgo.Record) bool {
			got = append(got, r)
			return len(got) == n
		}, opts...)
	}
	return got
}

// consumeUntil reads the topic's records, handing each to done, until
// done says it has them all.
func consumeUntil(t testing.TB, done func(*kgo.Record) bool, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Not a timing: a bound so that a missing record fails the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	read := 0
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("what was sent is not all there after reading %d records back", read)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("reading partition %d back: %v", p, err) })
		for _, r := range fs.Records() {
			read++
			if done(r) {
				return
			}
		}
	}
}

// writeFile writes a file in the test's directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
