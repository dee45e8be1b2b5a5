package kafka

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	benchRecordSize = 500
	benchBatch      = 256
)

// flowJSON makes n flow records much like the sensor's, each 500 bytes,
// from a fixed seed: their compressibility is that of real ones (repeated
// keys, varying numbers, addresses and hashes).
func flowJSON(tb testing.TB, n int) []sink.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	snis := []string{"www.example.com", "api.github.com", "login.microsoftonline.com", "cdn.jsdelivr.net", "updates.example.org"}
	recs := make([]sink.Record, n)
	for i := range recs {
		host := netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(4)), byte(rng.IntN(250))})
		var cid [20]byte
		for j := range cid {
			cid[j] = byte(rng.Uint32())
		}
		start := 1795000000 + i
		v := fmt.Appendf(nil, `{"ts":"2026-11-19T10:%02d:%02d.%06dZ","duration":%.6f,"proto":"tcp","orig_h":"%s","orig_p":%d,"resp_h":"%d.%d.%d.%d","resp_p":443,"orig_pkts":%d,"resp_pkts":%d,"orig_ip_bytes":%d,"resp_ip_bytes":%d,"orig_bytes":%d,"resp_bytes":%d,"missed_bytes":0,"history":"ShADadFf","state":"SF","final":true,"community_id":"1:%s","id":"%016x","entropy":%.3f,"tls":{"sni":"%s"},"sensor":"`,
			start/60%60, start%60, rng.IntN(1e6), rng.Float64()*30,
			host, 1024+rng.IntN(64000), rng.IntN(224)+1, rng.IntN(256), rng.IntN(256), rng.IntN(256),
			rng.IntN(5000), rng.IntN(5000), rng.IntN(1e7), rng.IntN(1e7), rng.IntN(1e7), rng.IntN(1e7),
			base64.StdEncoding.EncodeToString(cid[:]), rng.Uint64(), 7+rng.Float64(), snis[rng.IntN(len(snis))])
		if len(v)+2 > benchRecordSize {
			tb.Fatalf("flow record of %d bytes: %s", len(v), v)
		}
		v = append(v, strings.Repeat("sensor-01.dc1.", 40)[:benchRecordSize-len(v)-2]+`"}`...)
		recs[i] = sink.Record{Key: host, Value: v}
	}
	return recs
}

// batchSizes adds up what the client wrote, before and after compression.
type batchSizes struct{ raw, wire atomic.Int64 }

func (s *batchSizes) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	s.raw.Add(int64(m.UncompressedBytes))
	s.wire.Add(int64(m.CompressedBytes))
}

// BenchmarkSend: 500-byte JSON records in batches of 256 to a Kafka (the
// in-process kfake, answering on loopback and keeping nothing), each
// Send waiting for its acknowledgements, by codec. bytes/s are the
// records' bytes; wire/raw is what compression left of them.
func BenchmarkSend(b *testing.B) {
	recs := flowJSON(b, 64*benchBatch)
	for _, codec := range compressions {
		b.Run(codec, func(b *testing.B) {
			c := cluster(b, kfake.BlackholeProduce())
			tr := transport(b, dest(c, "compression="+codec))
			sizes := &batchSizes{}
			tr.opts = append(tr.opts, kgo.WithHooks(sizes))
			ctx := context.Background()
			if _, err := tr.Send(ctx, recs[:benchBatch]); err != nil {
				b.Fatal(err) // connected, topic known
			}
			b.SetBytes(benchBatch * benchRecordSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				off := i % 64 * benchBatch
				if n, err := tr.Send(ctx, recs[off:off+benchBatch]); err != nil || n != benchBatch {
					b.Fatalf("Send: %d, %v", n, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "records/s")
			if raw := sizes.raw.Load(); raw > 0 {
				b.ReportMetric(float64(sizes.wire.Load())/float64(raw), "wire/raw")
			}
		})
	}
}
