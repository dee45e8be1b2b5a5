package main

import (
	"context"
	"fmt"

	"github.com/outflow-sensor/outflow/sensor"
	"github.com/outflow-sensor/outflow/sensor/metrics"
)

// startMetrics serves the run's metrics when the config asks for them
// (nil otherwise). The server outlives the signal that stops the run, so
// /readyz says 503 while the sensor drains and the last counts can still
// be scraped until the process exits.
func startMetrics(e *env, rc *sensor.RunConfig) (*metrics.Server, error) {
	if rc.Metrics.Listen == "" {
		return nil, nil
	}
	addr, named, err := sensor.MetricsAddr(rc.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	srv, err := metrics.Serve(context.Background(), addr, metrics.Options{AllowRemote: named, Log: e.log, Pprof: rc.Metrics.Pprof})
	if err != nil {
		return nil, err
	}
	e.log.Info("serving metrics", "address", srv.Addr().String())
	return srv, nil
}
