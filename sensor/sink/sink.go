package sink

import (
	"context"
	"net/netip"
)

// Sink is one destination of encoded records: a file, syslog, a webhook,
// Kafka. New (inert), Start, then WriteBatch from any goroutine, Reopen on
// SIGHUP, and Stop, which flushes. A sink never returns its destination's
// errors to a writer, who could do nothing about them: it counts them, and
// keeps, retries or drops by its own policy, each drop counted.
type Sink interface {
	Name() string
	Start() error
	// WriteBatch takes whole records; b is only read during the call.
	WriteBatch(b *Batch)
	Reopen() error
	Stop() error
	Stats() Stats
}

// Record is one encoded record: its bytes without the line's newline, and
// the internal host it concerns, which a partitioned destination (Kafka)
// keys it by (not valid when there is none).
type Record struct {
	Key   netip.Addr
	Value []byte
}

// Batch is records of one format laid one after another in Data, each a
// line ending in '\n'; Ends[i] is where record i ends and Keys[i] is its
// key. A stage reuses one Batch, so a sink copies what it keeps.
type Batch struct {
	Data []byte
	Ends []int
	Keys []netip.Addr
}

// End marks the bytes appended to Data since the last record as one
// record, keyed by key. Data must end in '\n'.
func (b *Batch) End(key netip.Addr) {
	b.Ends = append(b.Ends, len(b.Data))
	b.Keys = append(b.Keys, key)
}

// Len is the number of records.
func (b *Batch) Len() int { return len(b.Ends) }

// Record returns record i, its value without the newline; the value
// aliases Data.
func (b *Batch) Record(i int) Record {
	start := 0
	if i > 0 {
		start = b.Ends[i-1]
	}
	return Record{Key: b.Keys[i], Value: b.Data[start : b.Ends[i]-1]}
}

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.Data, b.Ends, b.Keys = b.Data[:0], b.Ends[:0], b.Keys[:0]
}

// Transport carries records to one network receiver (syslog, a webhook,
// Kafka). It knows its protocol and nothing of queues: a Delivery sink
// in front of it holds records, retries and spools.
type Transport interface {
	// Name is the destination as the user gave it, with no secret in it.
	Name() string
	// Send delivers recs in order and returns how many the receiver has
	// taken; an error means the rest were not delivered and will be sent
	// again. Send must return soon after ctx is done.
	Send(ctx context.Context, recs []Record) (int, error)
	// Close releases connections; Send is not called after it.
	Close() error
}
