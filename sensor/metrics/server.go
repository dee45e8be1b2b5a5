package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/internal/neterr"
	"github.com/outflow-sensor/outflow/sensor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options say how Serve listens.
type Options struct {
	// AllowRemote lets the address be other than loopback. The metrics
	// name hosts' interfaces, directories, outputs and analytics: by
	// default only this host may read them.
	AllowRemote bool
	// Log receives the server's errors once it serves (default: none).
	Log *slog.Logger
	// Pprof also serves Go's profiles under /debug/pprof/ (heap,
	// goroutines, CPU), to find where memory or time goes in a running
	// sensor; off by default, as Packetbeat's http.pprof.enabled is.
	Pprof bool
}

// Server serves a sensor's metrics over HTTP:
//
//   - /metrics: the sensor's counts (Collector), with the Go runtime's
//     and the process's, in Prometheus' text format;
//   - /healthz: 200 while the process serves;
//   - /readyz: 200 once the sensor's sources are open (Snapshots was
//     called) and until Stopped, 503 before and after.
//
// Its methods may be called on a nil *Server, which does nothing, so a
// caller without --metrics needs no test.
type Server struct {
	ln      net.Listener
	srv     *http.Server
	take    atomic.Pointer[func() sensor.Snapshot]
	stopped atomic.Bool
	done    chan struct{}
	once    sync.Once
	log     *slog.Logger
}

// Serve listens on addr (HOST:PORT) and serves in the background until ctx
// ends or Close. An address that is not loopback is refused unless
// opts.AllowRemote; an address that cannot be bound is an error naming it.
//
// The sensor's counts arrive later: pass s.Snapshots as
// sensor.RunOptions.Snapshots, and call s.Stopped when sensor.Run has
// returned. Until then /metrics serves the runtime's metrics alone.
func Serve(ctx context.Context, addr string, opts Options) (*Server, error) {
	if !opts.AllowRemote {
		if err := checkLoopback(addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: unable to listen on %s: %w", addr, neterr.Plain(err))
	}
	if !opts.AllowRemote && !isLoopback(ln.Addr()) {
		// A name such as localhost that resolved to another address.
		ln.Close()
		return nil, notLoopback(addr)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: ln, done: make(chan struct{}), log: log}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(s.snapshot))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogLogger{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case s.stopped.Load():
			http.Error(w, "stopped: the sensor's sources are closed", http.StatusServiceUnavailable)
		case s.take.Load() == nil:
			http.Error(w, "starting: the sensor's sources are not open yet", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	if opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics: the server stopped", "address", s.ln.Addr().String(), "err", err.Error())
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// Addr is the address the server listens on (the port chosen, for :0).
func (s *Server) Addr() net.Addr {
	if s == nil {
		return nil
	}
	return s.ln.Addr()
}

// Snapshots takes the function that snapshots the running sensor: it is
// a sensor.RunOptions.Snapshots. From now on /metrics serves the sensor's
// counts and /readyz answers 200.
func (s *Server) Snapshots(take func() sensor.Snapshot) {
	if s != nil && take != nil {
		s.take.Store(&take)
	}
}

// Stopped says the sensor's sources have stopped (sensor.Run returned):
// /readyz answers 503 from now on, and /metrics serves the final counts.
func (s *Server) Stopped() {
	if s != nil {
		s.stopped.Store(true)
	}
}

// Close stops the server: requests under way get 5 seconds to finish.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	var err error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = s.srv.Shutdown(ctx); err != nil {
			err = fmt.Errorf("metrics: stopping the server on %s: %w", s.ln.Addr(), err)
			s.srv.Close()
		}
		<-s.done
	})
	return err
}

// snapshot is the sensor's snapshot, or nothing before Snapshots.
func (s *Server) snapshot() sensor.Snapshot {
	if take := s.take.Load(); take != nil {
		return (*take)()
	}
	return sensor.Snapshot{}
}

// checkLoopback refuses an address whose host is not a loopback address
// or localhost: an empty host, 0.0.0.0 or [::] listens on every
// interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics: address %q is not HOST:PORT, such as 127.0.0.1:9464", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return notLoopback(addr)
}

func notLoopback(addr string) error {
	return fmt.Errorf("metrics: %s is not a loopback address, so any host that reaches it could read the sensor's metrics; "+
		"listen on 127.0.0.1 or [::1], or allow other addresses explicitly", addr)
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// slogLogger gives promhttp's error log to a slog.Logger.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }
