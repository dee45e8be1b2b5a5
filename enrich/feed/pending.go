package feed

import "sync/atomic"

// ReasonBudget is a record skipped because the listener's records in
// progress, over all its connections, would pass its byte budget.
const ReasonBudget = "budget"

// DefaultPendingBytes is a listener's default budget for records in
// progress: 256 connections each sending an unfinished 4 MiB frame held
// over a gigabyte before there was one.
const DefaultPendingBytes = 64 << 20

// Pending is a byte budget that the connections of one listener share for
// the records they have begun and not finished (a syslog frame, an HTTP
// body's line). Every record has its first OwnBytes of its own, outside
// the budget, so real events (a few KiB) are read whatever a flood holds;
// past that a record takes bytes from the budget as it grows and gives
// them back when it ends, and one that cannot have more is read to its end
// without being kept, and counted as ReasonBudget. A listener so holds at
// most MaxConns × OwnBytes plus the budget. Safe for concurrent use.
type Pending struct {
	max  int64
	used atomic.Int64
}

// NewPending returns a budget of max bytes (DefaultPendingBytes when 0 or
// less).
func NewPending(max int64) *Pending {
	if max <= 0 {
		max = DefaultPendingBytes
	}
	return &Pending{max: max}
}

// OwnBytes is the part of each record in progress outside the budget.
const OwnBytes = 64 << 10

// grow takes what a record growing from have to have+n bytes needs from
// the budget beyond its own OwnBytes, returning the bytes taken and
// whether they fit.
func (p *Pending) grow(have, n int) (int64, bool) {
	need := int64(max(have+n-OwnBytes, 0) - max(have-OwnBytes, 0))
	if !p.take(need) {
		return 0, false
	}
	return need, true
}

// take reserves n more bytes, or none and false when they do not fit. A
// nil budget has room for anything.
func (p *Pending) take(n int64) bool {
	if p == nil || n <= 0 {
		return true
	}
	if p.used.Add(n) > p.max {
		p.used.Add(-n)
		return false
	}
	return true
}

// give returns n bytes taken earlier.
func (p *Pending) give(n int64) {
	if p != nil && n > 0 {
		p.used.Add(-n)
	}
}

// Used is the bytes held now; Max the budget.
func (p *Pending) Used() int64 { return p.used.Load() }

// Max is the budget in bytes.
func (p *Pending) Max() int64 { return p.max }
