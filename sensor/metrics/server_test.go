package metrics_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/metrics"
)

// status GETs url and returns its status code.
func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServerLifecycle: /healthz answers while the process serves;
// /readyz only between the sources opening and their stop; /metrics
// serves the runtime's metrics from the start and the sensor's once it
// runs, and the final counts after it stopped.
func TestServerLifecycle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := metrics.Serve(ctx, "127.0.0.1:0", metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr().String()
	if c := status(t, base+"/healthz"); c != http.StatusOK {
		t.Errorf("healthz before the run: %d", c)
	}
	if c := status(t, base+"/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("readyz before the run: %d", c)
	}
	e := scrape(t, base+"/metrics")
	if _, ok := e.types["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, ok := e.types["process_cpu_seconds_total"]; !ok {
		t.Error("no process metrics")
	}
	for name := range e.types {
		if strings.HasPrefix(name, "outflow_") {
			t.Errorf("%s before the sensor runs", name)
		}
	}

	s := handMade()
	srv.Snapshots(func() sensor.Snapshot { return s })
	if c := status(t, base+"/readyz"); c != http.StatusOK {
		t.Errorf("readyz while running: %d", c)
	}
	e = scrape(t, base+"/metrics")
	if v := e.values[`outflow_capture_packets_total{interface="eth0"}`]; v != 1000 {
		t.Errorf("packets on eth0: %v", v)
	}

	srv.Stopped()
	if c := status(t, base+"/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("readyz after the stop: %d", c)
	}
	if c := status(t, base+"/healthz"); c != http.StatusOK {
		t.Errorf("healthz after the stop: %d", c)
	}
	if c := status(t, base+"/nothing"); c != http.StatusNotFound {
		t.Errorf("an unknown path: %d", c)
	}
	if e := scrape(t, base+"/metrics"); e.values[`outflow_detect_flows_total{}`] != 97 {
		t.Error("the final counts are not served after the stop")
	}

	// The server stops with its context.
	cancel()
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after its context ended")
	}
}

// TestServeLoopbackOnly: an address another host could reach is refused
// with a sentence that names it, before anything is bound; loopback
// addresses are taken.
func TestServeLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{":9464", "0.0.0.0:9464", "[::]:9464", "192.0.2.7:9464", "metrics.example.com:9464"} {
		srv, err := metrics.Serve(ctx, addr, metrics.Options{})
		if err == nil {
			srv.Close()
			t.Errorf("%s: served", addr)
			continue
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "127.0.0.2:0"} {
		srv, err := metrics.Serve(ctx, addr, metrics.Options{})
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		srv.Close()
	}
	if _, err := metrics.Serve(ctx, "9464", metrics.Options{}); err == nil || !strings.Contains(err.Error(), `"9464" is not HOST:PORT`) {
		t.Errorf("an address without a port: %v", err)
	}
}

// TestServeAllowRemote: with the allow option the loopback check is
// the caller's, and the server binds what it is told. The address is
// TEST-NET (RFC 5737), which no interface here has: the bind fails, which
// shows the check was skipped without listening beyond this host.
func TestServeAllowRemote(t *testing.T) {
	_, err := metrics.Serve(context.Background(), "192.0.2.7:9464", metrics.Options{AllowRemote: true})
	if err == nil || err.Error() != "metrics: unable to listen on 192.0.2.7:9464: cannot assign requested address" {
		t.Errorf("%v", err)
	}
}

// TestServeBusyAddress: an address already taken is an error naming it,
// in plain words.
func TestServeBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = metrics.Serve(context.Background(), addr, metrics.Options{})
	if err == nil {
		t.Fatal("served on a busy address")
	}
	if want := "metrics: unable to listen on " + addr + ": address already in use"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

// TestNilServer: a caller without a metrics address passes a nil server.
func TestNilServer(t *testing.T) {
	var srv *metrics.Server
	srv.Snapshots(func() sensor.Snapshot { return sensor.Snapshot{} })
	srv.Stopped()
	if srv.Addr() != nil || srv.Close() != nil {
		t.Error("a nil server does something")
	}
}
