// Package kafka is a sink.Transport that produces records to a Kafka
// topic with franz-go.
//
// A record's key is its internal host (Key.String(); no key when the
// record has none), so Kafka's partitioner puts one host's records in one
// partition, where they stay in order. Its value is the record's bytes.
//
// The producer is franz-go's idempotent one (its default, kept here): a
// retry inside the client, after a lost connection or a broker's timeout,
// never writes a record twice or out of order within a partition. Send
// produces a batch and waits for every record's acknowledgement, and says
// how many records from the start of the batch were all acknowledged.
// Across partitions records are acknowledged in any order, so when record
// k fails, later records in other partitions may already be written; the
// Delivery sink in front sends everything from k again, and those few are
// then written twice. So may records that were sent but not answered when
// Send's deadline passed: the broker may have written them. Records carry
// an id, by which a consumer drops the copies.
//
// After a failed Send the client is dropped and the next Send starts a
// new one (new connections, a new producer id), so nothing a failure left
// behind, such as a cluster that came back empty, outlives it.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/outflow-sensor/outflow/sensor/sink"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transport produces records to one Kafka topic. Send and Close may be
// called from any goroutine; Sends run one at a time.
type Transport struct {
	cfg  Config
	opts []kgo.Opt

	mu     sync.Mutex // held by Send and Close
	cl     *kgo.Client
	hook   *brokerErrors
	closed bool
	// closing counts clients given up after a failed Send, which close in
	// the background so that Send returns at its deadline.
	closing sync.WaitGroup
}

// New checks cfg, fills in its defaults and reads its files (CA, client
// certificate, password), so that anything missing is an error now. It
// connects to nothing: the first Send does.
func New(cfg Config) (*Transport, error) {
	if cfg.Compression == "" {
		cfg.Compression = DefaultCompression
	}
	if cfg.Acks == "" {
		cfg.Acks = "all"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("kafka %s: %w", name(cfg), err)
	}
	opts, err := clientOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w", name(cfg), err)
	}
	return &Transport{cfg: cfg, opts: opts}, nil
}

// Name is the destination as given, or as a URL when built from fields;
// it holds no secret.
func (t *Transport) Name() string { return name(t.cfg) }

func name(c Config) string {
	if c.URL != "" {
		return c.URL
	}
	return c.String()
}

// Send produces recs and waits until each is acknowledged, failed, or
// ctx (or the configured Timeout) ends. It returns how many records from
// the start of recs were all acknowledged; with an error, the rest are to
// be sent again (some of them may have been written too: see the package
// comment). recs are copied, so the caller may reuse them once Send
// returns, even if the client still holds records it could not abandon.
func (t *Transport) Send(ctx context.Context, recs []sink.Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, fmt.Errorf("kafka %s: the transport is closed", t.Name())
	}
	if t.cl == nil {
		h := &brokerErrors{user: t.cfg.User}
		cl, err := kgo.NewClient(append(t.opts, kgo.WithHooks(h))...)
		if err != nil {
			return 0, fmt.Errorf("kafka %s: %w", t.Name(), err)
		}
		t.cl, t.hook = cl, h
	}
	stop := t.hook.reset()
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()

	// A record too large for any batch is sent no further: the ones
	// before it are, and it is refused for good.
	limit := slices.IndexFunc(recs, func(r sink.Record) bool { return len(r.Value) > maxRecordBytes })
	if limit < 0 {
		limit = len(recs)
	}
	b := newBatch(limit)
	for i, r := range copyRecords(recs[:limit]) {
		if ctx.Err() != nil {
			break // Produce waited for room in vain: the rest can wait too
		}
		t.cl.Produce(ctx, r, b.promise(i))
	}
	select {
	case <-b.done:
	case <-ctx.Done():
	case <-stop:
	}
	n, recErr := b.result()
	if n == len(recs) {
		return n, nil
	}
	if n == limit && recErr == nil {
		return n, &sink.Rejected{Err: fmt.Errorf("kafka %s: record %d of %d is %d bytes, more than one Kafka batch holds (%d)", t.Name(), n+1, len(recs), len(recs[n].Value), maxRecordBytes)}
	}
	t.discard()
	if fatal := t.hook.fatalErr(); fatal != nil {
		return n, &sendError{fmt.Sprintf("kafka %s: %d of %d records were not delivered: %v", t.Name(), len(recs)-n, len(recs), fatal), fatal}
	}
	if recErr != nil && (ctx.Err() == nil || !errors.Is(recErr, ctx.Err())) {
		return n, &sendError{fmt.Sprintf("kafka %s: record %d of %d was not delivered: %v", t.Name(), n+1, len(recs), recErr), recErr}
	}
	when := "in time"
	if errors.Is(ctx.Err(), context.Canceled) {
		when = "before the send was cancelled"
	}
	msg := fmt.Sprintf("kafka %s: %d of %d records were not acknowledged %s", t.Name(), len(recs)-n, len(recs), when)
	if err := t.hook.lastErr(); err != nil {
		msg += fmt.Sprintf(" (the brokers: %v)", err)
	}
	return n, &sendError{msg, ctx.Err()}
}

// discard gives up the client after a failed Send: it abandons what the
// client still buffers, even records already sent (franz-go then moves
// to a new producer epoch, so sequence numbers stay valid), and closes it
// in the background. The next Send starts a new client, with a new
// producer id and fresh connections, whatever state the old one was left
// in (a broker that came back empty, a half-done SASL exchange).
func (t *Transport) discard() {
	cl := t.cl
	t.cl = nil
	cl.UnsafeAbortBufferedRecords()
	t.closing.Add(1)
	go func() {
		defer t.closing.Done()
		cl.Close()
	}()
}

// Close closes the client's connections. Records not yet acknowledged
// are not waited for: Send has already said they were not delivered.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		if t.cl != nil {
			t.cl.Close()
			t.cl = nil
		}
	}
	t.closing.Wait()
	return nil
}

// copyRecords makes the franz-go records of recs, keys and values copied
// into one block: a record the client could not abandon (sent, with no
// reply yet) may still be read after Send returns, when the caller's
// bytes are someone else's.
func copyRecords(recs []sink.Record) []*kgo.Record {
	size := 0
	for _, r := range recs {
		size += len(r.Value) + len("255.255.255.255")
	}
	buf := make([]byte, 0, size)
	krecs := make([]kgo.Record, len(recs))
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr := &krecs[i]
		if r.Key.IsValid() {
			// An IPv6 key may outgrow its share of buf; append then
			// moves later bytes to a new block, leaving these in place.
			start := len(buf)
			buf = r.Key.AppendTo(buf)
			kr.Key = buf[start:len(buf):len(buf)]
		}
		start := len(buf)
		buf = append(buf, r.Value...)
		kr.Value = buf[start:len(buf):len(buf)]
		out[i] = kr
	}
	return out
}

// batch is what one Send knows of its records' outcomes. Promises arrive
// from franz-go's promise goroutine, possibly after Send has returned.
type batch struct {
	mu    sync.Mutex
	acked []bool
	errs  []error
	left  int
	done  chan struct{}
}

func newBatch(n int) *batch {
	b := &batch{acked: make([]bool, n), errs: make([]error, n), left: n, done: make(chan struct{})}
	if n == 0 {
		close(b.done)
	}
	return b
}

func (b *batch) promise(i int) func(*kgo.Record, error) {
	return func(_ *kgo.Record, err error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if err == nil {
			b.acked[i] = true
		} else {
			b.errs[i] = err
		}
		if b.left--; b.left == 0 {
			close(b.done)
		}
	}
}

// result is the number of records from the start all acknowledged, and
// the error of the first one that was not, if franz-go has given one.
func (b *batch) result() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, ok := range b.acked {
		if !ok {
			return i, b.errs[i]
		}
	}
	return len(b.acked), nil
}

// sendError is Send's sentence, over the cause it wraps (a franz-go or
// Kafka error, or the context's).
type sendError struct {
	msg string
	err error
}

func (e *sendError) Error() string { return e.msg }
func (e *sendError) Unwrap() error { return e.err }
