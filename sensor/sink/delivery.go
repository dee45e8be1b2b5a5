package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Delivery is a sink in front of a network Transport (syslog, a webhook,
// Kafka). Writers never wait for the receiver: records go to a queue, and
// one goroutine sends them in order, in batches, retrying with backoff
// while the receiver is down.
//
// The queue is either memory, bounded in bytes, where records past the
// bound are dropped and counted (flows: a slow SIEM must not stall
// capture), or a Spool on disk (alerts): a record is on disk before
// WriteBatch returns, survives a crash or SIGKILL, and is sent when the
// receiver is back, oldest first. A record the receiver took but whose
// acknowledgement was lost to a crash is sent again: receivers dedupe on
// the alert id.
type Delivery struct {
	cfg  DeliveryConfig
	mu   sync.Mutex
	mem  memQueue
	view [][]byte // the sender's batch of memory entries, reused
	st   Stats
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	// sendCtx ends the send in progress at Stop, once StopTimeout passed.
	sendCtx    context.Context
	sendCancel context.CancelFunc
	failing    error
	spoolFull  bool // the spool refused records: they wait in memory
}

// Spool is a durable queue of entries on disk (sink/spool.Spool).
type Spool interface {
	Append(entries ...[]byte) error
	Peek(max, maxBytes int) ([][]byte, error)
	Ack(n int) error
	Len() int
	Bytes() int64
	Close() error
}

// DeliveryConfig says what a Delivery sends to and how it holds records.
type DeliveryConfig struct {
	Transport Transport
	// Name is the sink's name in logs and counts (default: the
	// transport's).
	Name string
	// Spool, when set, holds every record on disk until the receiver has
	// it; the Delivery closes it at Stop. Nil: memory, MaxQueue bytes.
	Spool Spool
	// MaxQueue bounds the bytes of records waiting in memory (default 16
	// MiB); with a Spool, it bounds what waits when the spool is full.
	MaxQueue int
	// BatchRecords and BatchBytes bound one Send (default 512 records,
	// 1 MiB).
	BatchRecords int
	BatchBytes   int
	// MinBackoff and MaxBackoff bound the wait after a failed send
	// (default 250 ms and 10 s; it doubles with each failure in a row).
	MinBackoff, MaxBackoff time.Duration
	// SendTimeout bounds one Send (default 15 s).
	SendTimeout time.Duration
	// StopTimeout is how long Stop keeps sending what waits (default 5
	// s). What a spool holds then stays there for the next start; what
	// memory holds is dropped and counted.
	StopTimeout time.Duration
	Log         *slog.Logger
}

// Rejected marks an error of Send for records the receiver refuses
// outright (an HTTP 400, a record too large for it): sending them again
// cannot help, so the Count records after those delivered (1 when Count
// is 0) are counted as rejected and skipped. A transport may return its
// own error type instead, with a Rejected() int method.
type Rejected struct {
	Err   error
	Count int
}

func (r *Rejected) Error() string { return r.Err.Error() }
func (r *Rejected) Unwrap() error { return r.Err }

// Rejected is how many records are refused.
func (r *Rejected) Rejected() int { return max(r.Count, 1) }

// RetryAfter is implemented by an error of Send whose receiver said when
// to come back (HTTP Retry-After).
type RetryAfter interface{ RetryAfter() time.Duration }

// NewDelivery returns an inert Delivery.
func NewDelivery(cfg DeliveryConfig) *Delivery {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 16 << 20
	}
	if cfg.BatchRecords <= 0 {
		cfg.BatchRecords = 512
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 15 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Transport.Name()
	}
	return &Delivery{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Name is the receiver, as the user gave it.
func (d *Delivery) Name() string { return d.cfg.Name }

// Start starts the sender. Records a spool kept from an earlier run go
// first.
func (d *Delivery) Start() error {
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	d.sendCtx, d.sendCancel = context.WithCancel(context.Background())
	go d.run()
	d.poke()
	return nil
}

// appendEntry appends a record as the queues hold it: the key's length,
// the key, then the value, so a spool keeps keys across restarts.
func appendEntry(dst []byte, r Record) []byte {
	switch {
	case r.Key.Is4():
		k := r.Key.As4()
		dst = append(append(dst, 4), k[:]...)
	case r.Key.Is6():
		k := r.Key.As16()
		dst = append(append(dst, 16), k[:]...)
	default:
		dst = append(dst, 0)
	}
	return append(dst, r.Value...)
}

func entry(r Record) []byte { return appendEntry(make([]byte, 0, 17+len(r.Value)), r) }

// recordOf undoes entry. A malformed entry (a spool damaged on disk) has
// no key and its bytes as the value.
func recordOf(e []byte) Record {
	if len(e) > 0 {
		switch n := int(e[0]); {
		case n == 0:
			return Record{Value: e[1:]}
		case n == 4 && len(e) >= 5:
			return Record{Key: netip.AddrFrom4([4]byte(e[1:5])), Value: e[5:]}
		case n == 16 && len(e) >= 17:
			return Record{Key: netip.AddrFrom16([16]byte(e[1:17])), Value: e[17:]}
		}
	}
	return Record{Value: e}
}

// WriteBatch queues the records of b. With a spool, they are on disk when
// it returns.
func (d *Delivery) WriteBatch(b *Batch) {
	if b.Len() == 0 {
		return
	}
	d.mu.Lock()
	if d.cfg.Spool != nil && d.mem.len() == 0 {
		// Memory holds records only while the spool is full; once it has
		// some, later records wait behind them, so order is kept.
		es := make([][]byte, b.Len())
		for i := range es {
			es[i] = entry(b.Record(i))
		}
		err := d.cfg.Spool.Append(es...)
		if err == nil {
			d.mu.Unlock()
			d.poke()
			return
		}
		if !d.spoolFull {
			d.cfg.Log.Error("output spool cannot take more; records wait in memory, then are dropped and counted",
				"output", d.Name(), "err", err.Error())
			d.spoolFull = true
		}
	}
	for i := range b.Len() {
		r := b.Record(i)
		if d.mem.bytes()+17+len(r.Value) > d.cfg.MaxQueue {
			d.st.Dropped++
			continue
		}
		d.mem.push(r)
	}
	d.mu.Unlock()
	d.poke()
}

func (d *Delivery) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// next returns the oldest records waiting, at most a batch, and whether
// they come from the spool.
func (d *Delivery) next() ([][]byte, bool, error) {
	if d.cfg.Spool != nil && d.cfg.Spool.Len() > 0 {
		es, err := d.cfg.Spool.Peek(d.cfg.BatchRecords, d.cfg.BatchBytes)
		return es, true, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.view = d.mem.peek(d.view[:0], d.cfg.BatchRecords, d.cfg.BatchBytes)
	return d.view, false, nil
}

// taken drops the n oldest records of where they came from.
func (d *Delivery) taken(n int, spooled bool) error {
	if n == 0 {
		return nil
	}
	if spooled {
		return d.cfg.Spool.Ack(n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mem.pop(n)
	if d.mem.len() == 0 {
		d.spoolFull = false
	}
	return nil
}

func (d *Delivery) run() {
	defer close(d.done)
	backoff := time.Duration(0)
	recs := make([]Record, 0, d.cfg.BatchRecords)
	for {
		if backoff > 0 {
			select {
			case <-d.stop:
				return
			case <-time.After(backoff):
			}
		}
		es, spooled, err := d.next()
		if err != nil {
			d.count(func(st *Stats) { st.Errors++ })
			d.cfg.Log.Error("reading the output spool failed", "output", d.Name(), "err", err.Error())
			backoff = d.nextBackoff(backoff)
			continue
		}
		if len(es) == 0 {
			backoff = 0
			select {
			case <-d.stop:
				return
			case <-d.wake:
			}
			continue
		}
		recs = recs[:0]
		for _, e := range es {
			recs = append(recs, recordOf(e))
		}
		ctx, cancel := context.WithTimeout(d.sendCtx, d.cfg.SendTimeout)
		n, err := d.cfg.Transport.Send(ctx, recs)
		cancel()
		n = min(max(n, 0), len(recs))
		var rej interface{ Rejected() int }
		skip := 0
		if err != nil && errors.As(err, &rej) {
			skip = min(max(rej.Rejected(), 0), len(recs)-n) // refused for good
		}
		var bytes uint64
		for _, r := range recs[:n] {
			bytes += uint64(len(r.Value))
		}
		if aerr := d.taken(n+skip, spooled); aerr != nil {
			d.cfg.Log.Error("acknowledging records in the output spool failed; they may be sent again",
				"output", d.Name(), "err", aerr.Error())
		}
		d.count(func(st *Stats) {
			st.Lines += uint64(n)
			st.Bytes += bytes
			st.Rejected += uint64(skip)
		})
		switch {
		case err == nil:
			d.recovered()
			backoff = 0
		case skip > 0:
			d.cfg.Log.Warn("the receiver refused a record; it is skipped", "output", d.Name(), "err", err.Error())
			backoff = 0
		default:
			d.failed(err)
			backoff = d.nextBackoff(backoff)
			var ra RetryAfter
			if errors.As(err, &ra) && ra.RetryAfter() > backoff {
				backoff = min(ra.RetryAfter(), d.cfg.MaxBackoff)
			}
		}
	}
}

func (d *Delivery) nextBackoff(b time.Duration) time.Duration {
	if b == 0 {
		return d.cfg.MinBackoff
	}
	return min(2*b, d.cfg.MaxBackoff)
}

func (d *Delivery) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.st)
	d.mu.Unlock()
}

// failed counts a failed send and logs the first of a run of failures.
func (d *Delivery) failed(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.Errors++
	d.st.Retries++
	if d.failing == nil {
		how := "records wait in memory up to a bound, then are dropped and counted"
		if d.cfg.Spool != nil {
			how = "records wait in the spool on disk"
		}
		d.cfg.Log.Error("output failing; "+how, "output", d.Name(), "err", err.Error())
	}
	d.failing = err
}

func (d *Delivery) recovered() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failing != nil {
		d.cfg.Log.Info("output works again", "output", d.Name(), "dropped", d.st.Dropped)
		d.failing = nil
	}
}

// Reopen does nothing: a network receiver is reconnected on failure.
func (d *Delivery) Reopen() error { return nil }

// Stop sends what waits for up to StopTimeout, then stops. Records left
// in memory are dropped, counted, and make the error; a spool keeps its
// own for the next start.
func (d *Delivery) Stop() error {
	if d.stop == nil {
		return nil
	}
	deadline := time.Now().Add(d.cfg.StopTimeout)
	for time.Now().Before(deadline) && d.pending() > 0 && d.healthy() {
		time.Sleep(10 * time.Millisecond)
	}
	close(d.stop)
	d.sendCancel()
	<-d.done
	d.stop = nil
	var errs []error
	d.mu.Lock()
	if n := d.mem.len(); n > 0 {
		d.st.Dropped += uint64(n)
		d.mem = memQueue{}
		errs = append(errs, fmt.Errorf("%s: %d records were not delivered", d.Name(), n))
	}
	d.mu.Unlock()
	if d.cfg.Spool != nil {
		if n := d.cfg.Spool.Len(); n > 0 {
			d.cfg.Log.Warn("records stay in the output spool for the next start", "output", d.Name(), "records", n)
		}
		errs = append(errs, d.cfg.Spool.Close())
	}
	errs = append(errs, d.cfg.Transport.Close())
	return errors.Join(errs...)
}

// pending is the records not yet delivered.
func (d *Delivery) pending() int {
	d.mu.Lock()
	n := d.mem.len()
	d.mu.Unlock()
	if d.cfg.Spool != nil {
		n += d.cfg.Spool.Len()
	}
	return n
}

func (d *Delivery) healthy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failing == nil
}

// Stats returns the counts so far.
func (d *Delivery) Stats() Stats {
	d.mu.Lock()
	s := d.st
	s.Queued = d.mem.len()
	s.Pending = d.mem.bytes()
	d.mu.Unlock()
	s.Name = d.Name()
	if d.cfg.Spool != nil {
		s.Spooled, s.SpoolBytes = d.cfg.Spool.Len(), d.cfg.Spool.Bytes()
	}
	return s
}

// memQueue holds entries one after another in one buffer, so queueing a
// record allocates nothing once the buffer has grown to its working size.
// The sender's views alias buf: entries are only moved (compacted) in pop,
// which the sender calls when it is done with its view, and appends past
// the capacity move to a new array, leaving the old one to the view.
type memQueue struct {
	buf   []byte
	ends  []int // where each entry ends in buf
	start int   // where the oldest entry starts
	first int   // the oldest entry's index in ends
}

func (q *memQueue) len() int   { return len(q.ends) - q.first }
func (q *memQueue) bytes() int { return len(q.buf) - q.start }

func (q *memQueue) push(r Record) {
	q.buf = appendEntry(q.buf, r)
	q.ends = append(q.ends, len(q.buf))
}

// peek appends to view the oldest entries, at most maxN and, past the
// first, maxBytes.
func (q *memQueue) peek(view [][]byte, maxN, maxBytes int) [][]byte {
	at, size := q.start, 0
	for i := q.first; i < len(q.ends) && len(view) < maxN; i++ {
		n := q.ends[i] - at
		if len(view) > 0 && size+n > maxBytes {
			break
		}
		view = append(view, q.buf[at:q.ends[i]:q.ends[i]])
		size += n
		at = q.ends[i]
	}
	return view
}

// pop drops the n oldest entries.
func (q *memQueue) pop(n int) {
	n = min(n, q.len())
	if n == 0 {
		return
	}
	q.first += n
	q.start = q.ends[q.first-1]
	switch {
	case q.first == len(q.ends):
		if cap(q.buf) > 64<<20 {
			q.buf = nil // a burst's buffer is not kept for good
		}
		q.buf, q.ends, q.start, q.first = q.buf[:0], q.ends[:0], 0, 0
	case q.start > len(q.buf)/2:
		// Most of the buffer is spent: move the rest to the front.
		m := copy(q.buf, q.buf[q.start:])
		q.buf = q.buf[:m]
		k := copy(q.ends, q.ends[q.first:])
		q.ends = q.ends[:k]
		for i := range q.ends {
			q.ends[i] -= q.start
		}
		q.start, q.first = 0, 0
	}
}
