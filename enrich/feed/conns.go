package feed

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ReasonIdleClosed is a connection closed to make room for a new one when
// a TCP listener held MaxConns: the one that sent nothing for the longest.
const ReasonIdleClosed = "idle_closed"

// A connection may be closed to make room once it has been quiet this
// long: minQuiet since its last byte (a sender between records keeps its
// place a while), firstBytes since it was accepted when it never sent one
// (real senders speak at once: logger, rsyslog, curl and a TLS client's
// hello all send right after connecting).
const (
	minQuiet   = time.Second
	firstBytes = 250 * time.Millisecond
)

// roomListener holds at most max connections. When all places are taken,
// a new connection does not wait behind them (20,000 idle connections,
// each closed only after IdleTimeout, kept a real POST waiting 36 s): the
// listener closes the connection that has been quiet longest to make
// room, those that never sent a byte first (what a flood of idle
// connections is) and were accepted longest ago, then those quiet longest
// since their last byte. Only when none is quiet enough (firstBytes,
// minQuiet) does the new one wait for a place.
type roomListener struct {
	net.Listener
	max    int
	closed func(from string) // counts a connection closed for room
	mu     sync.Mutex
	conns  map[*roomConn]struct{}
	freed  chan struct{}
}

func newRoomListener(ln net.Listener, max int, closed func(from string)) *roomListener {
	return &roomListener{Listener: ln, max: max, closed: closed, conns: map[*roomConn]struct{}{},
		freed: make(chan struct{}, 1)}
}

// roomConn is a connection that says when it last read a byte.
type roomConn struct {
	net.Conn
	l        *roomListener
	accepted int64
	last     atomic.Int64 // unix nanoseconds of the last read that gave bytes; 0: none yet
	once     sync.Once
}

func (c *roomConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *roomConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		select {
		case c.l.freed <- struct{}{}:
		default:
		}
	})
	return err
}

// waiting reports whether the kernel holds bytes for the connection that
// were not read yet.
func (c *roomConn) waiting() bool {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	raw.Control(func(fd uintptr) { n = pendingBytes(fd) })
	return n > 0
}

func (l *roomListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &roomConn{Conn: c, l: l, accepted: time.Now().UnixNano()}
	for {
		l.mu.Lock()
		if len(l.conns) < l.max {
			l.conns[rc] = struct{}{}
			l.mu.Unlock()
			return rc, nil
		}
		victim := l.quietest()
		l.mu.Unlock()
		if victim != nil {
			from := victim.RemoteAddr().String()
			victim.Close()
			l.closed(from)
			continue
		}
		select {
		case <-l.freed:
		case <-time.After(firstBytes / 5):
		}
	}
}

// quietest is the connection to close for room, or nil when none has been
// quiet long enough. Called with mu held.
func (l *roomListener) quietest() *roomConn {
	now := time.Now().UnixNano()
	var best *roomConn
	bestSilent, bestSince := false, int64(0)
	for c := range l.conns {
		last := c.last.Load()
		silent := last == 0
		since, grace := last, minQuiet
		if silent {
			since, grace = c.accepted, firstBytes
		}
		if now-since < int64(grace) {
			continue
		}
		if c.waiting() {
			// Bytes have come that the sensor has not read yet (a busy
			// machine): the sender is not quiet.
			c.last.Store(now)
			continue
		}
		// Never-sent beats sent; then the longest quiet.
		if best == nil || silent && !bestSilent || silent == bestSilent && since < bestSince {
			best, bestSilent, bestSince = c, silent, since
		}
	}
	return best
}
