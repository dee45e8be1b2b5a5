package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/internal/neterr"
	"github.com/outflow-sensor/outflow/internal/tlsfiles"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// writeChunk is how many bytes of frames a stream gathers before one
// write: few system calls, and a failed write costs few records a resend.
const writeChunk = 64 << 10

// keepBuffer is the most buffer memory a Transport keeps between Sends: a
// huge record's buffer is let go.
const keepBuffer = 1 << 20

// Transport sends records to one syslog receiver, one message each (see
// the package comment for what "delivered" means on each network). It is
// safe for concurrent use; Sends run one at a time.
type Transport struct {
	cfg      Config
	name     string
	facility Facility
	tls      *tls.Config
	max      int    // MaxMessage, 0: none
	tail     []byte // " HOSTNAME APP-NAME PROCID MSGID - "

	mu     sync.Mutex
	conn   net.Conn // nil until dialled, and after a failure
	raw    net.Conn // the TCP connection under conn's TLS, or conn
	closed bool
	buf    []byte // frames (stream) or one message (udp)
	hdr    []byte
	ts     []byte
	rbuf   []byte // what a receiver sent us, read and discarded
}

var _ sink.Transport = (*Transport)(nil)

// New checks cfg, reads its TLS files and returns a Transport that
// connects on its first Send.
func New(cfg Config) (*Transport, error) {
	name := "syslog+" + cfg.Network + "://" + cfg.Addr
	if cfg.Network != "udp" && cfg.Network != "tcp" && cfg.Network != "tls" {
		return nil, fmt.Errorf("syslog: network %q: want udp, tcp or tls", cfg.Network)
	}
	if host, port, err := net.SplitHostPort(cfg.Addr); err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("%s: address %q: want HOST:PORT", name, cfg.Addr)
	}
	t := &Transport{name: name, facility: Local0}
	if cfg.Facility != "" {
		f, err := ParseFacility(cfg.Facility)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.facility = f
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname() // "" (NILVALUE) when it fails
	}
	if cfg.AppName == "" {
		cfg.AppName = "outflow"
	}
	if cfg.MsgID == "" {
		cfg.MsgID = "flow"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	switch {
	case cfg.MaxMessage < 0:
		return nil, fmt.Errorf("%s: MaxMessage %d: want a positive number of bytes, or 0", name, cfg.MaxMessage)
	case cfg.Network == "udp" && cfg.MaxMessage > MaxDatagram:
		return nil, fmt.Errorf("%s: MaxMessage %d: a UDP datagram carries at most %d bytes", name, cfg.MaxMessage, MaxDatagram)
	case cfg.Network == "udp" && cfg.MaxMessage == 0:
		t.max = MaxDatagram
	default:
		t.max = cfg.MaxMessage
	}
	if cfg.Network == "tls" {
		c, err := tlsConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.tls = c
	} else if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.ServerName != "" || cfg.TLS != nil {
		return nil, fmt.Errorf("%s: TLS settings given for %s: only tls uses them", name, cfg.Network)
	}
	t.cfg = cfg
	t.tail = appendHeaderTail(nil, cfg.Hostname, cfg.AppName, strconv.Itoa(os.Getpid()), cfg.MsgID)
	return t, nil
}

// tlsConfig is cfg.TLS with the CA and the client certificate of cfg's
// files, and its server name.
func tlsConfig(cfg Config) (*tls.Config, error) {
	c, err := tlsfiles.Config(cfg.TLS, tlsfiles.Files{CA: cfg.CAFile, Cert: cfg.CertFile, Key: cfg.KeyFile})
	if err == nil && cfg.ServerName != "" {
		c.ServerName = cfg.ServerName
	}
	return c, err
}

// Name is the receiver, as syslog+NETWORK://HOST:PORT.
func (t *Transport) Name() string { return t.name }

// Send sends recs in order, each record one message, and returns how many
// were delivered (see the package comment). A *sink.Rejected means the
// record after those is too long for MaxMessage; any other error, that
// the receiver could not be reached or the connection broke: the next
// Send connects again.
func (t *Transport) Send(ctx context.Context, recs []sink.Record) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, fmt.Errorf("%s: the transport is closed", t.name)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: stopped: %w", t.name, err)
	}
	// One timestamp for the batch: the records carry their own times.
	t.ts = appendTimestamp(t.ts[:0], time.Now())
	var n int
	var err error
	if t.cfg.Network == "udp" {
		n, err = t.sendDatagrams(ctx, recs)
	} else {
		n, err = t.sendStream(ctx, recs)
	}
	if cap(t.buf) > keepBuffer {
		t.buf = nil
	}
	return n, err
}

// Close closes the connection.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.drop()
	return nil
}

// sendDatagrams sends one datagram per record. UDP says nothing of
// delivery: a datagram the kernel took is delivered.
func (t *Transport) sendDatagrams(ctx context.Context, recs []sink.Record) (int, error) {
	if t.conn == nil {
		if err := t.dial(ctx); err != nil {
			return 0, err
		}
	}
	d := &deadline{conn: t.conn}
	defer context.AfterFunc(ctx, d.cancel)()
	done := ctx.Done()
	for i, r := range recs {
		select {
		case <-done:
			return i, fmt.Errorf("%s: stopped: %w", t.name, ctx.Err())
		default:
		}
		t.hdr = t.appendHeader(t.hdr[:0], r)
		if err := t.fits(len(t.hdr), r); err != nil {
			return i, err
		}
		t.buf = append(append(t.buf[:0], t.hdr...), r.Value...)
		d.set(time.Now().Add(t.cfg.WriteTimeout))
		if _, err := t.conn.Write(t.buf); err != nil {
			return i, t.failed(ctx, "cannot send", err)
		}
	}
	return len(recs), nil
}

// sendStream writes octet-counted frames, writeChunk bytes at a time; a
// record is delivered when the write holding the end of its frame
// returned.
func (t *Transport) sendStream(ctx context.Context, recs []sink.Record) (int, error) {
	if t.conn != nil && t.peerGone() {
		t.drop()
	}
	if t.conn == nil {
		if err := t.dial(ctx); err != nil {
			return 0, err
		}
	}
	d := &deadline{conn: t.conn}
	defer context.AfterFunc(ctx, d.cancel)()
	sent, queued := 0, 0
	flush := func() error {
		if len(t.buf) == 0 {
			return nil
		}
		d.set(time.Now().Add(t.cfg.WriteTimeout))
		if _, err := t.conn.Write(t.buf); err != nil {
			return t.failed(ctx, "cannot write", err)
		}
		sent += queued
		queued, t.buf = 0, t.buf[:0]
		return nil
	}
	t.buf = t.buf[:0]
	for _, r := range recs {
		t.hdr = t.appendHeader(t.hdr[:0], r)
		if err := t.fits(len(t.hdr), r); err != nil {
			if ferr := flush(); ferr != nil {
				return sent, ferr
			}
			return sent, err
		}
		t.buf = strconv.AppendInt(t.buf, int64(len(t.hdr)+len(r.Value)), 10)
		t.buf = append(t.buf, ' ')
		t.buf = append(t.buf, t.hdr...)
		t.buf = append(t.buf, r.Value...)
		queued++
		if len(t.buf) >= writeChunk {
			if err := flush(); err != nil {
				return sent, err
			}
		}
	}
	if err := flush(); err != nil {
		return sent, err
	}
	return sent, nil
}

// appendHeader appends a record's header: "<PRI>1 TIMESTAMP HOSTNAME
// APP-NAME PROCID MSGID - ".
func (t *Transport) appendHeader(dst []byte, r sink.Record) []byte {
	sev := Info
	if t.cfg.Severity != nil {
		if s := t.cfg.Severity(r); s >= Emergency && s <= Debug {
			sev = s
		}
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(t.facility)*8+int64(sev), 10)
	dst = append(dst, ">1 "...)
	dst = append(dst, t.ts...)
	return append(dst, t.tail...)
}

// fits refuses, for good, a record whose message would pass MaxMessage.
func (t *Transport) fits(header int, r sink.Record) error {
	if t.max == 0 || header+len(r.Value) <= t.max {
		return nil
	}
	return &sink.Rejected{Count: 1, Err: fmt.Errorf("%s: a record of %d bytes makes a message of %d, over the %d the receiver takes",
		t.name, len(r.Value), header+len(r.Value), t.max)}
}

// A new stream connection waits as long as its set-up took, within these
// bounds, before its first write (see settle).
var (
	settleMin = 50 * time.Millisecond
	settleMax = time.Second
)

// dial connects; TLS's handshake is part of it.
func (t *Transport) dial(ctx context.Context) error {
	nd := &net.Dialer{Timeout: t.cfg.DialTimeout}
	start := time.Now()
	var err error
	switch t.cfg.Network {
	case "tls":
		var c net.Conn
		c, err = (&tls.Dialer{NetDialer: nd, Config: t.tls}).DialContext(ctx, "tcp", t.cfg.Addr)
		if err == nil {
			t.conn, t.raw = c, c.(*tls.Conn).NetConn()
		}
	default:
		t.conn, err = nd.DialContext(ctx, t.cfg.Network, t.cfg.Addr)
		t.raw = t.conn
	}
	if err != nil {
		t.conn, t.raw = nil, nil
		if ctx.Err() != nil {
			return fmt.Errorf("%s: stopped: %w", t.name, ctx.Err())
		}
		return fmt.Errorf("%s: cannot connect: %w", t.name, neterr.Plain(err))
	}
	if t.cfg.Network != "udp" {
		if err := t.settle(ctx, min(max(time.Since(start), settleMin), settleMax)); err != nil {
			t.drop()
			return err
		}
	}
	return nil
}

// settle waits a while on a new connection for a receiver that refuses it
// once it has accepted it: rsyslog checks a client certificate, and the
// sender's address, after the handshake, and closes. Records written
// before that close would be counted and lost, on every connection. The
// close takes about a round trip, which the set-up took too. What the
// receiver sends meanwhile (TLS session tickets) is read and discarded.
func (t *Transport) settle(ctx context.Context, wait time.Duration) error {
	if t.rbuf == nil {
		t.rbuf = make([]byte, 4096)
	}
	c := t.conn
	c.SetReadDeadline(time.Now().Add(wait))
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	for {
		_, err := c.Read(t.rbuf)
		if err == nil {
			continue
		}
		stop()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: stopped: %w", t.name, ctx.Err())
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// A deadline past also fails peek's look at the socket.
			c.SetReadDeadline(time.Time{})
			return nil
		}
		return fmt.Errorf("%s: the receiver closed the connection once made (does it take our address and client certificate?): %w",
			t.name, neterr.Plain(err))
	}
}

// failed closes the connection after a failed write and words the error.
func (t *Transport) failed(ctx context.Context, what string, err error) error {
	t.drop()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: stopped: %w", t.name, ctx.Err())
	}
	return fmt.Errorf("%s: %s: %w", t.name, what, neterr.Plain(err))
}

// drop closes the connection, if any; the next Send dials again.
func (t *Transport) drop() {
	if t.conn != nil {
		t.conn.Close()
	}
	t.conn, t.raw = nil, nil
}

// peerGone reports whether the receiver closed or reset the connection
// since the last Send. A syslog receiver sends nothing, so its FIN or RST
// is what waits on the socket when it went away: without this look, the
// first write after a receiver's restart would succeed into our kernel
// and be lost with the RST it draws. What it did send (TLS session
// tickets, an alert) is read and discarded.
func (t *Transport) peerGone() bool {
	for range 4 {
		switch peek(t.raw) {
		case peerIdle:
			return false
		case peerClosed:
			return true
		case peerSent:
			if t.rbuf == nil {
				t.rbuf = make([]byte, 4096)
			}
			// Bytes are waiting, so the read returns at once; through TLS
			// it goes on to wait for a next record, hence the deadline.
			t.conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			_, err := t.conn.Read(t.rbuf)
			t.conn.SetReadDeadline(time.Time{})
			var ne net.Error
			if err != nil && (!errors.As(err, &ne) || !ne.Timeout()) {
				return true
			}
		default:
			return false
		}
	}
	return false
}

// deadline holds a connection's write deadline, which the end of a Send's
// context moves to the past for good, so a blocked write returns.
type deadline struct {
	mu        sync.Mutex
	conn      net.Conn
	cancelled bool
}

func (d *deadline) set(at time.Time) {
	d.mu.Lock()
	if !d.cancelled {
		d.conn.SetWriteDeadline(at)
	}
	d.mu.Unlock()
}

func (d *deadline) cancel() {
	d.mu.Lock()
	d.cancelled = true
	d.conn.SetWriteDeadline(time.Unix(1, 0))
	d.mu.Unlock()
}
