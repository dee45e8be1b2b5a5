// Package dnscache remembers which name a client resolved to reach an
// address, from the DNS answers the sensor saw, so that a flow without SNI or
// Host can still be named. Entries live in fastcache, off the Go heap, with
// their deadline inside the value: the answer's TTL plus a grace period,
// because clients keep using an address after its TTL and the flow record is
// written when the flow ends.
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
}

// DefaultConfig returns 64 MiB and a 10-minute grace.
func DefaultConfig() Config { return Config{MaxBytes: 64 << 20, Grace: 10 * time.Minute} }

// Cache maps (client, address) to the name the client asked for. Safe for
// concurrent use.
type Cache struct {
	c     *fastcache.Cache
	grace int64
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultConfig().MaxBytes
	}
	return &Cache{c: fastcache.New(cfg.MaxBytes), grace: int64(cfg.Grace)}
}

func key(dst *[33]byte, client, addr []byte) []byte {
	k := dst[:0]
	k = append(k, byte(len(client)))
	k = append(k, client...)
	k = append(k, addr...)
	return k
}

// history is how many answers are kept per client and address: where
// many names share an address (a CDN, virtual hosting), a flow is named
// by the answer the client had just before it, not by a later one.
const history = 4

// entry layout: answered at (8), deadline (8), name length (1), name.
const entryHead = 17

// Add records that client was told name resolves to addr, valid for ttl
// seconds from ts (Unix nanoseconds, packet time).
func (c *Cache) Add(client, addr []byte, name []byte, ttl uint32, ts int64) {
	var kb [33]byte
	var old, v [history * (entryHead + 255)]byte
	if len(name) > 255 {
		name = name[:255]
	}
	k := key(&kb, client, addr)
	deadline := ts + int64(ttl)*int64(time.Second) + c.grace
	binary.BigEndian.PutUint64(v[0:8], uint64(ts))
	binary.BigEndian.PutUint64(v[8:16], uint64(deadline))
	v[16] = byte(len(name))
	n := entryHead + copy(v[entryHead:], name)
	prev, _ := c.c.HasGet(old[:0], k)
	kept := 1
	for len(prev) >= entryHead && kept < history {
		l := entryHead + int(prev[16])
		if l > len(prev) {
			break
		}
		// The same name again replaces its older answer.
		if string(prev[entryHead:l]) != string(name) && int64(binary.BigEndian.Uint64(prev[8:16])) >= ts {
			n += copy(v[n:], prev[:l])
			kept++
		}
		prev = prev[l:]
	}
	c.c.Set(k, v[:n])
}

// Lookup appends the name client resolved for addr, as of ts, to dst: of
// the answers still valid at ts, the latest given at or before ts, else
// the earliest given after it (the capture's clocks may disagree by a
// little). ok is false when none is known or all expired.
func (c *Cache) Lookup(dst []byte, client, addr []byte, ts int64) (name []byte, ok bool) {
	var kb [33]byte
	var v [history * (entryHead + 255)]byte
	got, found := c.c.HasGet(v[:0], key(&kb, client, addr))
	if !found {
		return dst, false
	}
	var best, after []byte
	var bestAt, afterAt int64
	for len(got) >= entryHead {
		l := entryHead + int(got[16])
		if l > len(got) {
			break
		}
		at, deadline := int64(binary.BigEndian.Uint64(got[0:8])), int64(binary.BigEndian.Uint64(got[8:16]))
		if deadline >= ts {
			switch {
			case at <= ts && (best == nil || at > bestAt):
				best, bestAt = got[entryHead:l], at
			case at > ts && (after == nil || at < afterAt):
				after, afterAt = got[entryHead:l], at
			}
		}
		got = got[l:]
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
