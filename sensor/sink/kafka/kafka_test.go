package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestOrderAndKeys: what a consumer reads back from the broker is every
// record, keyed by its host (no key without one), one host's records in
// one partition in the order they were sent.
func TestOrderAndKeys(t *testing.T) {
	c := cluster(t)
	tr := transport(t, dest(c, ""))
	recs := records(600, 7)
	for _, part := range [][2]int{{0, 256}, {256, 512}, {512, 600}} {
		n, err := tr.Send(context.Background(), recs[part[0]:part[1]])
		if err != nil || n != part[1]-part[0] {
			t.Fatalf("Send: %d, %v", n, err)
		}
	}
	got := consume(t, len(recs), kgo.SeedBrokers(c.ListenAddrs()...))
	if len(got) != len(recs) {
		t.Fatalf("read %d records back, sent %d", len(got), len(recs))
	}
	// Per host: the values in offset order, and the one partition.
	byHost := map[string][]string{}
	partition := map[string]int32{}
	slices.SortFunc(got, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
	for _, r := range got {
		k := string(r.Key)
		if r.Key == nil {
			k = "none"
		} else if p, ok := partition[k]; ok && p != r.Partition {
			t.Errorf("host %s in partitions %d and %d", k, p, r.Partition)
		}
		partition[k] = r.Partition
		byHost[k] = append(byHost[k], string(r.Value))
	}
	want := map[string][]string{}
	for _, r := range recs {
		k := "none"
		if r.Key.IsValid() {
			k = r.Key.String()
		}
		want[k] = append(want[k], string(r.Value))
	}
	for k, w := range want {
		g := byHost[k]
		if k == "none" {
			// Keyless records spread over partitions: all there, in
			// any order across them.
			slices.Sort(g)
			slices.Sort(w)
		}
		if !slices.Equal(g, w) {
			t.Errorf("host %s: read back %q, sent %q", k, g, w)
		}
	}
	if len(byHost) != len(want) {
		t.Errorf("%d keys read back, %d sent", len(byHost), len(want))
	}
}

// TestSASL: PLAIN and SCRAM against a cluster that requires them; a
// wrong password is an error that says SASL.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			c := cluster(t, kfake.EnableSASL(), kfake.Superuser(strings.ToUpper(mech), "sensor", "s3cret-pass"))
			good := writeFile(t, "pass", []byte("s3cret-pass\n"))
			tr := transport(t, dest(c, "sasl="+mech+"&user=sensor&password_file="+good))
			if strings.Contains(tr.Name(), "s3cret") {
				t.Errorf("name %q holds the password", tr.Name())
			}
			recs := records(20, 3)
			if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
				t.Fatalf("Send: %d, %v", n, err)
			}
			var m kgo.Opt
			switch mech {
			case "plain":
				m = kgo.SASL(plain.Auth{User: "sensor", Pass: "s3cret-pass"}.AsMechanism())
			case "scram-sha-256":
				m = kgo.SASL(scram.Auth{User: "sensor", Pass: "s3cret-pass"}.AsSha256Mechanism())
			default:
				m = kgo.SASL(scram.Auth{User: "sensor", Pass: "s3cret-pass"}.AsSha512Mechanism())
			}
			if got := consume(t, len(recs), kgo.SeedBrokers(c.ListenAddrs()...), m); len(got) != len(recs) {
				t.Errorf("read %d back", len(got))
			}

			bad := writeFile(t, "pass", []byte("not-the-password-Xq7"))
			tr = transport(t, dest(c, "sasl="+mech+"&user=sensor&password_file="+bad))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n, err := tr.Send(ctx, recs)
			if err == nil || n != 0 {
				t.Fatalf("wrong password: %d, %v", n, err)
			}
			if !strings.Contains(err.Error(), "SASL login") || strings.Contains(err.Error(), "Xq7") {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
}

// TestSASLRefused: a broker that answers a login with Kafka's
// SASL_AUTHENTICATION_FAILED (as Apache Kafka does) stops the Send at
// once with a sentence that says so.
func TestSASLRefused(t *testing.T) {
	c := cluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "sensor", "s3cret-pass"))
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		return resp, nil, true
	})
	pass := writeFile(t, "pass", []byte("s3cret-pass"))
	tr := transport(t, dest(c, "sasl=plain&user=sensor&password_file="+pass))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := tr.Send(ctx, records(5, 2))
	if n != 0 || !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), `SASL login as user "sensor" was refused`) {
		t.Errorf("refused: %d, %v", n, err)
	}
}

// TestCompression: each codec's batches are read back whole, and were
// compressed with it (the attributes of the batch as the broker stored
// it).
func TestCompression(t *testing.T) {
	codes := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for _, codec := range compressions {
		t.Run(codec, func(t *testing.T) {
			c := cluster(t)
			tr := transport(t, dest(c, "compression="+codec))
			// Values that any codec shrinks even alone: franz-go sends
			// a batch that compression would make larger as it is.
			recs := records(300, 5)
			for i := range recs {
				recs[i].Value = fmt.Appendf(nil, `{"id":%d,"note":%q}`, i, strings.Repeat("flow ", 100))
			}
			if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
				t.Fatalf("Send: %d, %v", n, err)
			}
			got := consume(t, len(recs), kgo.SeedBrokers(c.ListenAddrs()...))
			var sent, read []string
			for i := range recs {
				sent = append(sent, string(recs[i].Value))
				read = append(read, string(got[i].Value))
				if ct := got[i].Attrs.CompressionType(); ct != codes[codec] {
					t.Fatalf("record %d compressed with codec %d, want %d", i, ct, codes[codec])
				}
			}
			slices.Sort(sent)
			slices.Sort(read)
			if !slices.Equal(sent, read) {
				t.Error("records read back differ from those sent")
			}
		})
	}
}

// TestBrokerDown: with the cluster gone, Send returns by its context's
// deadline with an error, delivering nothing; a cluster back on the same
// port takes the next Send.
func TestBrokerDown(t *testing.T) {
	c := cluster(t)
	addr := c.ListenAddrs()[0]
	tr := transport(t, dest(c, ""))
	recs := records(256, 5)
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send: %d, %v", n, err)
	}
	c.Close()

	// The bound is the point of the test: Send must not outlive ctx.
	const deadline = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	n, err := tr.Send(ctx, recs)
	took := time.Since(start)
	if err == nil || n >= len(recs) {
		t.Fatalf("broker down: %d, %v", n, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not acknowledged in time") {
		t.Errorf("broker down: %v", err)
	}
	if took > deadline+time.Second {
		t.Errorf("Send took %v with a %v deadline", took, deadline)
	}
	t.Log(err)

	// The same port again, a new (empty) cluster.
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	c2 := cluster(t, kfake.Ports(p))
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send after the broker came back: %d, %v", n, err)
	}
	if got := consume(t, len(recs), kgo.SeedBrokers(c2.ListenAddrs()...)); len(got) != len(recs) {
		t.Errorf("read %d back", len(got))
	}
}

// TestBrokerHangs: a broker that takes a produce request and never
// answers holds Send only until its deadline; once it answers again, the
// next Send goes through.
func TestBrokerHangs(t *testing.T) {
	c := cluster(t)
	tr := transport(t, dest(c, ""))
	recs := records(100, 5)
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send: %d, %v", n, err)
	}
	hung := make(chan struct{}, 1)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		hung <- struct{}{}
		return nil, nil, true // no answer
	})
	const deadline = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	n, err := tr.Send(ctx, recs)
	if took := time.Since(start); took > deadline+time.Second {
		t.Errorf("Send took %v with a %v deadline", took, deadline)
	}
	<-hung
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung broker: %d, %v", n, err)
	}
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send after the broker answered again: %d, %v", n, err)
	}
}

// TestCancel: a cancelled Send says so, and returns.
func TestCancel(t *testing.T) {
	c := cluster(t)
	tr := transport(t, dest(c, ""))
	c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := tr.Send(ctx, records(10, 2))
	if n != 0 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("cancelled: %d, %v", n, err)
	}
}

// TestUnknownTopic: a topic the cluster does not have is an error naming
// the cause, not a hang.
func TestUnknownTopic(t *testing.T) {
	c := cluster(t)
	tr := transport(t, strings.Replace(dest(c, ""), "/"+topic, "/nosuch", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := tr.Send(ctx, records(5, 2))
	if n != 0 || err == nil || !strings.Contains(err.Error(), "UNKNOWN_TOPIC") {
		t.Errorf("unknown topic: %d, %v", n, err)
	}
}

// TestReuse: Send copies what it sends: the caller's bytes may change as
// soon as it returns, and what was acknowledged is what was passed.
func TestReuse(t *testing.T) {
	c := cluster(t)
	tr := transport(t, dest(c, ""))
	recs := records(50, 3)
	want := make([]string, len(recs))
	for i := range recs {
		want[i] = string(recs[i].Value)
	}
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send: %d, %v", n, err)
	}
	for i := range recs {
		clear(recs[i].Value)
	}
	var read []string
	for _, r := range consume(t, len(recs), kgo.SeedBrokers(c.ListenAddrs()...)) {
		read = append(read, string(r.Value))
	}
	slices.Sort(read)
	slices.Sort(want)
	if !slices.Equal(read, want) {
		t.Error("records read back differ from those sent")
	}
}

// TestClosed: Send after Close is an error, and Close twice is fine.
func TestClosed(t *testing.T) {
	c := cluster(t)
	tr := transport(t, dest(c, ""))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := tr.Send(context.Background(), records(1, 1)); n != 0 || err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after Close: %d, %v", n, err)
	}
	if n, err := tr.Send(context.Background(), nil); n != 0 || err != nil {
		t.Errorf("nothing to send: %d, %v", n, err)
	}
}

// TestPartitionRefused: when one broker refuses its partition's records,
// Send counts the records from the start up to the first of them; those
// before it are on the brokers, read back; some after it, in partitions
// of other brokers, may be there too (the Delivery sink resends them,
// and their ids tell the copies apart).
func TestPartitionRefused(t *testing.T) {
	c := cluster(t, kfake.NumBrokers(3))
	for p := range int32(3) { // partition p on broker p
		if err := c.MoveTopicPartition(topic, p, p); err != nil {
			t.Fatal(err)
		}
	}
	tr := transport(t, dest(c, ""))
	var recs []sink.Record
	for _, r := range records(300, 9) {
		if r.Key.IsValid() { // keyed: a key's partition is fixed
			recs = append(recs, r)
		}
	}
	// Learn each key's partition from the brokers, and each partition's
	// leader.
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send: %d, %v", n, err)
	}
	leader := map[string]int32{}
	for _, r := range consume(t, len(recs), kgo.SeedBrokers(c.ListenAddrs()...)) {
		leader[string(r.Key)] = c.LeaderFor(topic, r.Partition)
	}
	// The broker of the first record that record 0's broker does not
	// lead refuses every produce.
	first := leader[recs[0].Key.String()]
	want := slices.IndexFunc(recs, func(r sink.Record) bool { return leader[r.Key.String()] != first })
	if want < 0 {
		t.Fatal("one broker leads every partition")
	}
	bad := leader[recs[want].Key.String()]
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() != bad {
			return nil, nil, false
		}
		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	ids := func(rs []sink.Record) (s []string) {
		for _, r := range rs {
			s = append(s, string(r.Value))
		}
		return s
	}
	// A second copy of the records, told apart from the first.
	again := make([]sink.Record, len(recs))
	for i, r := range recs {
		again[i] = sink.Record{Key: r.Key, Value: append([]byte("again "), r.Value...)}
	}
	n, err := tr.Send(context.Background(), again)
	if n != want || !errors.Is(err, kerr.InvalidRecord) || !strings.Contains(err.Error(), "record "+strconv.Itoa(want+1)+" of ") {
		t.Fatalf("refused partition: %d (want %d), %v", n, want, err)
	}
	// Read until every record counted as delivered is seen.
	delivered := map[string]bool{}
	for _, v := range ids(again[:n]) {
		delivered[v] = true
	}
	var read []string
	consumeUntil(t, func(r *kgo.Record) bool {
		read = append(read, string(r.Value))
		delete(delivered, string(r.Value))
		return len(delivered) == 0
	}, kgo.SeedBrokers(c.ListenAddrs()...))
	for i, v := range ids(again) {
		if leader[recs[i].Key.String()] == bad && slices.Contains(read, v) {
			t.Errorf("%s on the broker that refused it", v)
		}
	}
}

// TestLargeBatch: a batch larger than the client may buffer goes through
// (Produce waits for room), whole and counted.
func TestLargeBatch(t *testing.T) {
	c := cluster(t)
	tr := transport(t, dest(c, ""))
	recs := records(3*maxBufferedRecords/2, 50)
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send: %d, %v", n, err)
	}
	if got := consume(t, len(recs), kgo.SeedBrokers(c.ListenAddrs()...)); len(got) != len(recs) {
		t.Errorf("read %d back, sent %d", len(got), len(recs))
	}
}

// TestTooLarge: a record larger than a Kafka batch holds is refused for
// good (the Delivery sink skips it); Send counts those before it.
func TestTooLarge(t *testing.T) {
	c := cluster(t)
	tr := transport(t, dest(c, "compression=none"))
	recs := records(20, 3)
	recs[7].Value = make([]byte, 2<<20)
	n, err := tr.Send(context.Background(), recs)
	var rej *sink.Rejected
	if n != 7 || !errors.As(err, &rej) || !strings.Contains(err.Error(), "record 8 of 20 is 2097152 bytes") {
		t.Errorf("too large: %d, %v", n, err)
	}
	// First in its batch: nothing is sent, at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := tr.Send(ctx, recs[7:]); n != 0 || !errors.As(err, &rej) || ctx.Err() != nil {
		t.Errorf("too large first: %d, %v", n, err)
	}
	// The largest record that fits goes.
	recs[7].Value = make([]byte, maxRecordBytes)
	if n, err := tr.Send(context.Background(), recs[7:]); n != len(recs)-7 || err != nil {
		t.Errorf("largest: %d, %v", n, err)
	}
}
