package sensor

import (
	"testing"
	"time"
)

// TestQueuePolicies: a blocking queue makes the sender wait and loses
// nothing; a dropping one never waits and counts what it discarded.
func TestQueuePolicies(t *testing.T) {
	d := newQueue[int]("test", Drop, 2)
	for i := 0; i < 5; i++ {
		d.send(i)
	}
	if s := d.snapshot(); s.Sent != 2 || s.Dropped != 3 || s.Depth != 2 || s.Policy != "drop" {
		t.Fatalf("%+v", s)
	}
	b := newQueue[int]("test", Block, 1)
	got := make(chan int, 10)
	go func() {
		for v := range b.ch {
			time.Sleep(time.Millisecond)
			got <- v
		}
		close(got)
	}()
	for i := 0; i < 10; i++ {
		b.send(i)
	}
	b.close()
	n := 0
	for v := range got {
		if v != n {
			t.Fatalf("got %d, want %d", v, n)
		}
		n++
	}
	if s := b.snapshot(); n != 10 || s.Sent != 10 || s.Dropped != 0 || s.Blocked == 0 {
		t.Fatalf("received %d, %+v", n, s)
	}
}
