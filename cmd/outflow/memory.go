package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/outflow-sensor/outflow/sensor"
)

// applyMemoryBudget makes the sum of the config's store budgets the Go
// runtime's soft memory limit, unless GOMEMLIMIT already sets one: with
// GOGC alone the heap may reach twice the live data before a collection,
// so a sensor whose stores are all bounded could still take double what
// its config promises. logMemoryBudget says so once the sources are open.
func applyMemoryBudget(rc *sensor.RunConfig) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(rc.MemoryBudget().Heap)
	}
}

// logMemoryBudget logs the budget part by part.
func logMemoryBudget(e *env, rc *sensor.RunConfig) {
	b := rc.MemoryBudget()
	attrs := []any{"heap_bytes", b.Heap, "off_heap_bytes", b.OffHeap}
	for _, p := range b.Parts {
		attrs = append(attrs, slog.Int64(p.Name, p.Bytes))
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		e.log.Info("memory budget (GOMEMLIMIT set: the runtime's limit is that)", attrs...)
		return
	}
	e.log.Info("memory budget (the heap's share is the runtime's soft limit)", attrs...)
}
