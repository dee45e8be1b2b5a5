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

// Add records that client was told name resolves to addr, valid for ttl
// seconds from ts (Unix nanoseconds, packet time).
func (c *Cache) Add(client, addr []byte, name []byte, ttl uint32, ts int64) {
	var kb [33]byte
	var v [8 + 255]byte
	deadline := ts + int64(ttl)*int64(time.Second) + c.grace
	binary.BigEndian.PutUint64(v[:8], uint64(deadline))
	n := copy(v[8:], name)
	c.c.Set(key(&kb, client, addr), v[:8+n])
}

// Lookup appends the name client resolved for addr, as of ts, to dst. ok is
// false when none is known or it expired.
func (c *Cache) Lookup(dst []byte, client, addr []byte, ts int64) (name []byte, ok bool) {
	var kb [33]byte
	var v [8 + 255]byte
	got, found := c.c.HasGet(v[:0], key(&kb, client, addr))
	if !found || len(got) < 8 {
		return dst, false
	}
	if int64(binary.BigEndian.Uint64(got[:8])) < ts {
		return dst, false
	}
	return append(dst, got[8:]...), true
}

// Reset empties the cache.
func (c *Cache) Reset() { c.c.Reset() }
