package detect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/VictoriaMetrics/fastcache"
)

// State holds baselines, prevalence, windows and dedup keys off the Go
// heap, in fastcache. Every value starts with its deadline (Unix
// nanoseconds in packet time): a value past it reads as absent, so state
// expires by the traffic's clock, not the machine's, and a replay of a
// month ages as a month would.
type State struct {
	c        *fastcache.Cache
	maxBytes int
	buf      []byte
	wbuf     []byte
	kb       []byte
}

// NewState returns an empty state of at most maxBytes.
func NewState(maxBytes int) *State {
	return &State{c: fastcache.New(maxBytes), maxBytes: maxBytes}
}

// ErrNoState is LoadState's error when no state was saved at the path
// yet: a first start, not a problem.
var ErrNoState = errors.New("no saved state")

// loadCache turns a panic on a corrupt file, should fastcache raise
// one, into an error.
func loadCache(path string, maxBytes int) (c *fastcache.Cache, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("corrupt: %v", r)
		}
	}()
	return fastcache.LoadFromFileMaxBytes(path, maxBytes)
}

// Entries is the number of values held, expired ones included until they
// are overwritten.
func (s *State) Entries() uint64 {
	var st fastcache.Stats
	s.c.UpdateStats(&st)
	return st.EntriesCount
}

// Bytes is the memory the cache holds.
func (s *State) Bytes() uint64 {
	var st fastcache.Stats
	s.c.UpdateStats(&st)
	return st.BytesSize
}

// get returns the value under key, valid until the next call, if it has
// not expired at now.
func (s *State) get(key string, now time.Time) ([]byte, bool) {
	s.kb = append(s.kb[:0], key...)
	return s.getKey(s.kb, now)
}

// getKey is get with the key in a byte slice.
func (s *State) getKey(key []byte, now time.Time) ([]byte, bool) {
	v := s.c.Get(s.buf[:0], key)
	s.buf = v
	if len(v) < 8 || int64(binary.LittleEndian.Uint64(v)) < now.UnixNano() {
		return nil, false
	}
	return v[8:], true
}

// set stores val under key until deadline.
func (s *State) set(key string, deadline time.Time, val []byte) {
	s.kb = append(s.kb[:0], key...)
	s.setKey(s.kb, deadline, val)
}

// setKey is set with the key in a byte slice.
func (s *State) setKey(key []byte, deadline time.Time, val []byte) {
	s.wbuf = binary.LittleEndian.AppendUint64(s.wbuf[:0], uint64(deadline.UnixNano()))
	s.wbuf = append(s.wbuf, val...)
	s.c.Set(key, s.wbuf) // fastcache copies
}

func (s *State) del(key string) { s.c.Del([]byte(key)) }

// forever is the deadline of values that only a newer value replaces.
var forever = time.Unix(0, math.MaxInt64)

// rec is a small record of numbers and strings, the values the analytics
// keep: counters, times and Community IDs.
type rec struct {
	b []byte
}

func (r *rec) u64(v uint64) *rec { r.b = binary.AppendUvarint(r.b, v); return r }
func (r *rec) i64(v int64) *rec  { r.b = binary.AppendVarint(r.b, v); return r }
func (r *rec) str(v string) *rec {
	r.b = binary.AppendUvarint(r.b, uint64(len(v)))
	r.b = append(r.b, v...)
	return r
}

type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("state value cut short")

func (r *reader) u64() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errShort, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) i64() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errShort, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.u64()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err, r.b = errShort, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
