// Package dnscache remembers which name a client resolved to reach an
// address, from the DNS answers the sensor saw, so that a flow without SNI or
// Host can still be named. Entries live in fastcache, off the Go heap, with
// their deadline inside the value: the answer's TTL plus a grace period,
// because clients keep using an address after its TTL.
//
// Many names can share one address (a CDN, virtual hosting), so each
// (client, address) keeps a short history of answers ordered by time, and
// a flow is named by the answer the client had when the flow started: a
// name the client looked up later never names it, however late the flow's
// record is written.
package dnscache

import (
	"encoding/binary"
	"time"

	"github.com/VictoriaMetrics/fastcache"
)

// Config sizes the cache.
type Config struct {
	// MaxBytes bounds the cache's memory (fastcache rounds up to 32 MiB).
	MaxBytes int
	// Grace is added to every TTL.
	Grace time.Duration
	// ClockSkew is how much later than a flow's start an answer may be
	// timestamped and still name it, when no answer came before the flow:
	// the answer and the flow's first packet may be stamped by clocks
	// that differ a little (another interface, an exporter's millisecond
	// clock). Zero: an answer must come at or before the flow's start.
	ClockSkew time.Duration
}

// DefaultConfig returns 64 MiB, a 10-minute grace and a 2 ms clock skew:
// a program cannot both start a flow and then resolve a name and get the
// answer back within 2 ms on any real network, while capture clocks agree
// to better than that.
func DefaultConfig() Config {
	return Config{MaxBytes: 64 << 20, Grace: 10 * time.Minute, ClockSkew: 2 * time.Millisecond}
}

// Cache maps (client, address) to the names the client asked for, each
// with when. Safe for concurrent use; Add and Lookup allocate nothing.
type Cache struct {
	c     *fastcache.Cache
	grace int64
	skew  int64
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultConfig().MaxBytes
	}
	return &Cache{c: fastcache.New(cfg.MaxBytes), grace: int64(cfg.Grace), skew: max(int64(cfg.ClockSkew), 0)}
}

func key(dst *[33]byte, client, addr []byte) []byte {
	k := dst[:0]
	k = append(k, byte(len(client)))
	k = append(k, client...)
	k = append(k, addr...)
	return k
}

// MaxValueBytes bounds one (client, address)'s history of answers: 4 KiB
// holds about 70 names of usual length (14 of the longest), the oldest
// dropped first. A client that resolves more names than that to one
// address before a flow's record is written leaves that flow unnamed,
// never misnamed.
const MaxValueBytes = 4096

// An entry is one name's run of answers with no other name's answer
// between them (in the order they were added): first answered (8), last
// answered (8), deadline (8), name length (1), name. Entries are ordered
// by first answered.
const (
	entryHead  = 25
	maxName    = 255
	maxEntries = MaxValueBytes / entryHead
)

// entry is a parsed entry; name borrows the value it was read from.
type entry struct {
	first, last, deadline int64
	name                  []byte
}

// next parses the entry at the start of v; ok is false at the end of v
// or at a malformed tail. name borrows v.
func next(v []byte) (e entry, rest []byte, ok bool) {
	if len(v) < entryHead {
		return e, v, false
	}
	l := entryHead + int(v[24])
	if l > len(v) {
		return e, v, false
	}
	return entry{
		first:    int64(binary.BigEndian.Uint64(v[0:8])),
		last:     int64(binary.BigEndian.Uint64(v[8:16])),
		deadline: int64(binary.BigEndian.Uint64(v[16:24])),
		name:     v[entryHead:l],
	}, v[l:], true
}

// Add records that client was told name resolves to addr, valid for ttl
// seconds from ts (Unix nanoseconds, packet time). Answers may be added
// out of time order (workers race); they are kept ordered by time.
func (c *Cache) Add(client, addr []byte, name []byte, ttl uint32, ts int64) {
	var kb [33]byte
	var old [MaxValueBytes]byte
	var v [MaxValueBytes]byte
	// Where each entry starts in prev: offsets, not slices, keep both
	// buffers on the stack.
	var offs [maxEntries + 1]int
	if len(name) > maxName {
		name = name[:maxName]
	}
	k := key(&kb, client, addr)
	deadline := ts + int64(ttl)*int64(time.Second) + c.grace
	prev, _ := c.c.HasGet(old[:0], k)
	n, size := 0, 0
	for rest := prev; n < maxEntries; n++ {
		_, r, ok := next(rest)
		if !ok {
			break
		}
		offs[n], rest = len(prev)-len(rest), r
		size = len(prev) - len(r)
	}
	offs[n] = size
	// The answer goes after every entry first answered at or before ts,
	// or joins the last of them when it is the same name still valid.
	i := n
	for i > 0 && int64(binary.BigEndian.Uint64(prev[offs[i-1]:])) > ts {
		i--
	}
	joined := false
	if i > 0 {
		o := offs[i-1]
		if p, _, _ := next(prev[o:]); string(p.name) == string(name) && p.deadline >= ts {
			binary.BigEndian.PutUint64(prev[o+8:], uint64(max(p.last, ts)))
			binary.BigEndian.PutUint64(prev[o+16:], uint64(max(p.deadline, deadline)))
			joined = true
		}
	}
	if !joined {
		size += entryHead + len(name)
	}
	// Over budget, the oldest entries go first.
	m := 0
	for j := 0; j <= n; j++ {
		if j == i && !joined {
			if size > MaxValueBytes {
				size -= entryHead + len(name)
			} else {
				binary.BigEndian.PutUint64(v[m:], uint64(ts))
				binary.BigEndian.PutUint64(v[m+8:], uint64(ts))
				binary.BigEndian.PutUint64(v[m+16:], uint64(deadline))
				v[m+24] = byte(len(name))
				m += entryHead + copy(v[m+entryHead:], name)
			}
		}
		if j == n {
			break
		}
		if l := offs[j+1] - offs[j]; size > MaxValueBytes {
			size -= l
		} else {
			m += copy(v[m:], prev[offs[j]:offs[j+1]])
		}
	}
	c.c.Set(k, v[:m])
}

// Lookup appends to dst the name client resolved for addr most recently
// at or before ts (a flow's start, Unix nanoseconds) among the answers
// still valid at ts. Only when none came at or before ts does an answer
// within the clock skew after ts count. ok is false when none is known.
func (c *Cache) Lookup(dst []byte, client, addr []byte, ts int64) (name []byte, ok bool) {
	var kb [33]byte
	var v [MaxValueBytes]byte
	got, found := c.c.HasGet(v[:0], key(&kb, client, addr))
	if !found {
		return dst, false
	}
	var best, after []byte
	var bestAt, afterAt int64
	for e, rest, ok := next(got); ok; e, rest, ok = next(rest) {
		switch {
		case e.deadline < ts:
		case e.first <= ts:
			// A run's answers in between are not kept: when its last
			// answer is after ts, its first is the latest known before.
			at := e.first
			if e.last <= ts {
				at = e.last
			}
			if best == nil || at >= bestAt {
				best, bestAt = e.name, at
			}
		case e.first-ts <= c.skew && (after == nil || e.first < afterAt):
			after, afterAt = e.name, e.first
		}
	}
	if best == nil {
		best = after
	}
	if best == nil {
		return dst, false
	}
	return append(dst, best...), true
}

// Reset empties the cache.
func (c *Cache) Reset() { c.c.Reset() }
