//go:build !linux

package sensor

import (
	"context"
	"errors"
)

// liveSource stands in for AF_PACKET capture, which needs Linux.
type liveSource struct{ ws []*liveWorker }

type liveWorker struct{ *worker }

func openLive(LiveConfig, *core) (*liveSource, error) {
	return nil, errors.New("capture from interfaces needs Linux (AF_PACKET)")
}

func (*liveSource) run(context.Context)      {}
func (*liveSource) close() LiveStats         { return LiveStats{} }
func (*liveSource) closeSockets()            {}
func (*liveSource) snapshot() *CaptureCounts { return &CaptureCounts{} }
