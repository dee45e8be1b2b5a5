package feed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Source is where host events arrive from, as a URL:
//
//	/var/log/sysmon.json, file:///path   a file, followed across rotation
//	-, stdin:                            standard input
//	syslog+udp://:5514, syslog+tcp://:5514, syslog+tls://:6514
//	                                     syslog (RFC 5424 and 3164; TCP with
//	                                     octet counting or newline framing)
//	http://:8088/events, https://:8443/events
//	                                     HTTP POST of NDJSON (or any lines)
//	kafka://broker1:9092,broker2:9092/topic?group=outflow
//	                                     a Kafka topic, as a consumer group
//
// A listener without a host binds loopback (LoopbackIfNoHost). Listeners
// take query options: allow=PREFIX[,PREFIX] (every one: senders outside
// are refused and counted as ReasonNotAllowed); on syslog+tls and https,
// cert= and key= (the server's PEM files) and ca= (clients must present
// a certificate signed by it); on http and https, token_file= (requests
// must carry "Authorization: Bearer" with the file's token).
type Source struct {
	URL string
	// Ready, when set, is called with the bound address of a listening
	// source once it listens.
	Ready func(net.Addr)
	// MaxConns bounds the connections a TCP listener (syslog, HTTP) holds
	// at once (default 256), so a flood of connections cannot use up the
	// process's descriptors. When all are taken, a new connection closes
	// the quietest to make room (conns.go), counted as ReasonIdleClosed.
	MaxConns int
	// IdleTimeout closes a connection that sent nothing for this long
	// (default 2 minutes), so idle connections cannot keep a real sender
	// waiting for a place.
	IdleTimeout time.Duration
	// PendingBytes bounds the bytes of records begun and not finished,
	// over all of a TCP listener's connections (DefaultPendingBytes when
	// 0): with MaxConns alone, each connection could hold an unfinished
	// MaxLine record. Records with no room are read and dropped, counted
	// as ReasonBudget.
	PendingBytes int64
	pending      *Pending
	// Stats of the records read, summed over connections.
	mu    sync.Mutex
	stats Stats
}

// Stats returns what was read so far.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Errors = map[string]uint64{}
	for k, v := range s.stats.Errors {
		st.Errors[k] = v
	}
	return st
}

func (s *Source) add(r *Reader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Lines += r.Stats.Lines
	s.stats.Events += r.Stats.Events
	s.stats.Ignored += r.Stats.Ignored
	if s.stats.Errors == nil {
		s.stats.Errors = map[string]uint64{}
	}
	for k, v := range r.Stats.Errors {
		s.stats.Errors[k] += v
	}
	r.Stats = Stats{Errors: map[string]uint64{}}
}

// CheckSource says whether a host-event source is one Run can read: a
// file, "-", or a syslog+udp, syslog+tcp, syslog+tls, http, https or kafka
// URL with what it needs, its options' files readable. It is for start-up,
// so a typo is a refusal, not a log line.
func CheckSource(spec string) error {
	if spec == "-" || spec == "stdin:" {
		return nil
	}
	u, err := url.Parse(spec)
	if err != nil || u.Scheme == "" || u.Scheme == "file" {
		return nil // a path
	}
	switch u.Scheme {
	case "syslog+udp", "syslog+tcp", "syslog+tls", "http", "https":
		if u.Port() == "" {
			return fmt.Errorf("%q: give a port (%s://[HOST]:PORT)", spec, u.Scheme)
		}
		if _, err := parseListenOptions(u); err != nil {
			return fmt.Errorf("%q: %w", spec, err)
		}
	case "kafka":
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return fmt.Errorf("%q: want kafka://BROKER[,BROKER]/TOPIC", spec)
		}
	default:
		return fmt.Errorf("%q: not a file, -, syslog+udp://, syslog+tcp://, http:// or kafka://, nor their TLS forms syslog+tls:// and https://", spec)
	}
	return nil
}

// Run reads the source until ctx ends (or, for stdin, until EOF), handing
// every event to emit, which must be safe for concurrent use: listening
// sources read their connections in parallel.
func (s *Source) Run(ctx context.Context, emit func(*Event), onError func(*Error)) error {
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "-" || s.URL == "stdin:":
		return s.stream(ctx, os.Stdin, "stdin", emit, onError)
	case err != nil || u.Scheme == "" || u.Scheme == "file":
		path := s.URL
		if err == nil && u.Scheme == "file" {
			path = u.Path
		}
		return s.follow(ctx, path, emit, onError)
	case optionsOf[u.Scheme] != nil:
		opts, err := parseListenOptions(u)
		if err != nil {
			return fmt.Errorf("host events %s: %w", s.URL, err)
		}
		switch u.Scheme {
		case "syslog+udp":
			return s.syslogUDP(ctx, LoopbackIfNoHost(u.Host), &opts, emit, onError)
		case "syslog+tcp", "syslog+tls":
			return s.syslogTCP(ctx, LoopbackIfNoHost(u.Host), &opts, emit, onError)
		}
		return s.httpPost(ctx, u, &opts, emit, onError)
	case u.Scheme == "kafka":
		return s.kafka(ctx, u, emit, onError)
	}
	return fmt.Errorf("host events %q: unknown source", s.URL)
}

func (s *Source) stream(ctx context.Context, in io.Reader, name string, emit func(*Event), onError func(*Error)) error {
	r := NewReader(name)
	r.OnError = onError
	err := r.Read(in, emit)
	s.add(r)
	return err
}

// follow reads a file and then what is appended to it, like tail -F: when
// the path comes to name another file (rotated), the old one is read to
// its end and the new one from its start; a file cut shorter (truncated)
// is read again from its start.
func (s *Source) follow(ctx context.Context, path string, emit func(*Event), onError func(*Error)) error {
	r := NewReader(path)
	r.OnError = onError
	defer s.add(r)
	var f *os.File
	var ino uint64
	var off int64
	var pending []byte
	open := func() error {
		nf, err := os.Open(path)
		if err != nil {
			return err
		}
		fi, err := nf.Stat()
		if err != nil {
			nf.Close()
			return err
		}
		if f != nil {
			f.Close()
		}
		f, ino, off, pending = nf, inode(fi), 0, pending[:0]
		return nil
	}
	if err := open(); err != nil {
		return fmt.Errorf("host events: %w", err)
	}
	defer func() { f.Close() }()
	buf := make([]byte, 1<<16)
	drain := func() {
		for {
			n, err := f.Read(buf)
			if n > 0 {
				pending = append(pending, buf[:n]...)
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					r.Line(pending[:i], off, emit)
					off += int64(i + 1)
					pending = pending[i+1:]
				}
				s.add(r)
			}
			if err != nil || n == 0 {
				return
			}
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		drain()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // between a rotation's rename and the new file
		}
		if inode(fi) != ino {
			drain() // the rest of the rotated file
			if err := open(); err != nil {
				continue
			}
		} else if fi.Size() < off+int64(len(pending)) {
			if _, err := f.Seek(0, io.SeekStart); err == nil {
				off, pending = 0, pending[:0]
			}
		}
	}
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func (s *Source) syslogUDP(ctx context.Context, addr string, opts *listenOptions, emit func(*Event), onError func(*Error)) error {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("host events %s: %w", s.URL, err)
	}
	if uc, ok := c.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(8 << 20)
	}
	if s.Ready != nil {
		s.Ready(c.LocalAddr())
	}
	go func() { <-ctx.Done(); c.Close() }()
	r := NewReader(s.URL)
	r.OnError = onError
	buf := make([]byte, 65536)
	var off int64
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := c.ReadFrom(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			r.Flush(emit) // quiet: an audit event waiting for its EOE is whole
			s.add(r)
			continue
		}
		if err != nil {
			s.add(r)
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !opts.allowed(from) {
			s.refused(ReasonNotAllowed, from.String(), errors.New("sender outside the allow list; datagram dropped"), onError)
			continue
		}
		s.datagram(r, buf[:n], from, off, emit, onError)
		off++
		s.add(r)
	}
}

// datagram reads the syslog messages of one datagram. A bug the framing
// reaches costs the datagram, counted and reported with it; parsers are
// guarded by Reader.Line.
func (s *Source) datagram(r *Reader, dg []byte, from net.Addr, off int64, emit func(*Event), onError func(*Error)) {
	defer func() {
		if v := recover(); v != nil {
			s.bug(from.String(), v, dg, onError)
		}
	}()
	for l := range bytes.SplitSeq(dg, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			syslogLine(r, l, off, emit)
		}
	}
}

// bug counts and reports a panic in a connection's framing or TLS, or in
// a datagram's, with the datagram (input; nil for a connection).
func (s *Source) bug(from string, v any, input []byte, onError func(*Error)) {
	s.count(&Error{Source: s.URL + " from " + from, Reason: ReasonPanic, Err: fmt.Errorf("%v", v),
		Input: bytes.Clone(input), Stack: debug.Stack()}, onError)
}

// DefaultMaxConns is the connections a TCP listener holds at once when
// Source.MaxConns is not set.
const DefaultMaxConns = 256

// limits returns the connection bound and idle timeout in force.
func (s *Source) limits() (int, time.Duration) {
	n, idle := s.MaxConns, s.IdleTimeout
	if n <= 0 {
		n = DefaultMaxConns
	}
	if idle <= 0 {
		idle = 2 * time.Minute
	}
	return n, idle
}

// idleConn is a connection whose every read must come within idle.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

// listenTCP opens a TCP listener for connections of events: senders
// outside allow= refused as they come, room made by closing the quietest
// connection, one budget for the records in progress. It calls Ready.
func (s *Source) listenTCP(addr string, opts *listenOptions, onError func(*Error)) (net.Listener, time.Duration, error) {
	ln0, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("host events %s: %w", s.URL, err)
	}
	maxConns, idle := s.limits()
	ln := newRoomListener(allowListener{ln0, opts, s, onError}, maxConns, func(from string) {
		s.refused(ReasonIdleClosed, from, errors.New("quiet connection closed to make room for a new one"), onError)
	})
	s.pending = NewPending(s.PendingBytes)
	if s.Ready != nil {
		s.Ready(ln.Addr())
	}
	return ln, idle, nil
}

func (s *Source) syslogTCP(ctx context.Context, addr string, opts *listenOptions, emit func(*Event), onError func(*Error)) error {
	ln, idle, err := s.listenTCP(addr, opts, onError)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			// Closed at the stop, and no later waiter left behind: a
			// goroutine per connection waiting for the stop kept every
			// closed connection (and its goroutine) until the process
			// ended, 100,000 of them in a 10-minute soak.
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			from := c.RemoteAddr().String()
			// A record's parser is guarded by Reader.Line; this guards
			// the framing and TLS around it: a bug they reach costs
			// this connection, counted and reported, not the process.
			defer func() {
				if v := recover(); v != nil {
					s.bug(from, fmt.Sprintf("%v; the connection was closed", v), nil, onError)
				}
			}()
			var certified *certifiedHosts
			if opts.tls != nil {
				tc := tls.Server(c, opts.tls)
				_ = tc.SetDeadline(time.Now().Add(idle))
				if err := tc.HandshakeContext(ctx); err != nil {
					s.refused(ReasonTLS, from, err, onError)
					return
				}
				_ = tc.SetDeadline(time.Time{})
				c = tc
				cs := tc.ConnectionState()
				certified = opts.certified(&cs)
			}
			r := NewReader(s.URL + " from " + from)
			r.OnError, r.Pending = onError, s.pending
			out := s.guard(certified, from, emit, onError)
			readFramed(bufio.NewReaderSize(idleConn{c, idle}, 1<<16), r, out)
			r.Flush(out)
			s.add(r)
		}()
	}
}

func (s *Source) httpPost(ctx context.Context, u *url.URL, opts *listenOptions, emit func(*Event), onError func(*Error)) error {
	ln, idle, err := s.listenTCP(LoopbackIfNoHost(u.Host), opts, onError)
	if err != nil {
		return err
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "POST NDJSON here", http.StatusMethodNotAllowed)
			return
		}
		if !opts.authorized(req.Header.Get("Authorization")) {
			s.refused(ReasonUnauthorized, req.RemoteAddr, errors.New("request without the bearer token"), onError)
			w.Header().Set("WWW-Authenticate", `Bearer realm="outflow host events"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		r := NewReader(s.URL + " from " + req.RemoteAddr)
		r.OnError, r.Pending = onError, s.pending
		out := s.guard(opts.certified(req.TLS), req.RemoteAddr, emit, onError)
		if err := r.Read(http.MaxBytesReader(w, req.Body, 256<<20), out); err != nil {
			s.add(r)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d events, %d skipped\n", r.Stats.Events, r.Stats.Lines-r.Stats.Events-r.Stats.Ignored)
		s.add(r)
	})
	// Headers are bounded in time and size, a kept-alive connection in
	// idleness; the connections themselves by MaxConns.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle, MaxHeaderBytes: 64 << 10,
		ErrorLog: log.New(handshakeErrors{s, onError}, "", 0)}
	go func() { <-ctx.Done(); srv.Close() }()
	if opts.tls != nil {
		srv.TLSConfig = opts.tls
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Source) kafka(ctx context.Context, u *url.URL, emit func(*Event), onError func(*Error)) error {
	topic := strings.Trim(u.Path, "/")
	if topic == "" {
		return fmt.Errorf("host events %s: no topic", s.URL)
	}
	group := u.Query().Get("group")
	if group == "" {
		group = "outflow"
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(u.Host, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("host events %s: %w", s.URL, err)
	}
	defer cl.Close()
	r := NewReader(s.URL)
	r.OnError = onError
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			s.add(r)
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if onError != nil {
				onError(&Error{Source: fmt.Sprintf("%s partition %d", s.URL, p), Reason: "kafka", Err: err})
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			for l := range bytes.SplitSeq(rec.Value, []byte("\n")) {
				if len(bytes.TrimSpace(l)) > 0 {
					r.Line(l, rec.Offset, emit)
				}
			}
		})
		s.add(r)
	}
}

// LoopbackIfNoHost is a listener's address as Outflow binds it: with no
// host ("[:PORT]"), the loopback address, so that nothing listens beyond
// the machine unless an address says so (0.0.0.0, [::], or one of the
// machine's own).
func LoopbackIfNoHost(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host != "" {
		return hostport
	}
	return net.JoinHostPort("127.0.0.1", port)
}
