package sensor

import "sync/atomic"

// Policy is what a queue between two stages does when it is full.
type Policy uint8

const (
	// Block makes the sender wait: nothing is lost, and the pressure
	// travels back to the source (a replay reads slower; a capture ring
	// fills and the kernel counts its drops; a socket buffer fills).
	Block Policy = iota
	// Drop discards what does not fit, and counts it.
	Drop
)

func (p Policy) String() string {
	if p == Drop {
		return "drop"
	}
	return "block"
}

// queue is a bounded channel between two stages that says what it does
// when full and counts what passed, what waited and what was dropped.
type queue[T any] struct {
	name   string
	policy Policy
	ch     chan T
	stats  queueCounters
}

type queueCounters struct {
	sent, blocked, dropped atomic.Uint64
}

// QueueStats is what one queue counted.
type QueueStats struct {
	Name     string
	Policy   string
	Capacity int
	Depth    int    // items waiting now
	Sent     uint64 // items that went through
	Blocked  uint64 // sends that had to wait for room (Block)
	Dropped  uint64 // items discarded for want of room (Drop)
}

func newQueue[T any](name string, policy Policy, capacity int) *queue[T] {
	return &queue[T]{name: name, policy: policy, ch: make(chan T, capacity)}
}

// send hands v to the next stage; it reports false when v was dropped.
func (q *queue[T]) send(v T) bool {
	select {
	case q.ch <- v:
		q.stats.sent.Add(1)
		return true
	default:
	}
	if q.policy == Drop {
		q.stats.dropped.Add(1)
		return false
	}
	q.stats.blocked.Add(1)
	q.ch <- v
	q.stats.sent.Add(1)
	return true
}

// close ends the queue: the receiver's range ends once it is drained.
func (q *queue[T]) close() { close(q.ch) }

// len is how many items wait.
func (q *queue[T]) len() int { return len(q.ch) }

func (q *queue[T]) snapshot() QueueStats {
	return QueueStats{Name: q.name, Policy: q.policy.String(), Capacity: cap(q.ch), Depth: len(q.ch),
		Sent: q.stats.sent.Load(), Blocked: q.stats.blocked.Load(), Dropped: q.stats.dropped.Load()}
}
