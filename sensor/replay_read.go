package sensor

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor/capture"
)

// frameHandler decodes one frame and hands its packets to the workers.
type frameHandler func(data []byte, wire int, lt flows.LinkType, ts int64, stable bool)

// readFiles reads the replay's captures in order, each to its end.
func readFiles(ctx context.Context, cfg ReplayConfig, sh *core, st *ReplayStats, done *int64, total int64,
	handle frameHandler, active func() int, keep func(release func())) error {
	var clock readClock
	for _, path := range cfg.Files {
		src, err := capture.OpenFileContext(ctx, path, capture.FileOptions{})
		if ctx.Err() != nil {
			if src != nil {
				src.Close()
			}
			return ctx.Err()
		}
		if err != nil {
			st.FileErrors++
			cfg.Log.Warn(err.Error())
			continue
		}
		st.Files++
		if readFile(ctx, cfg, sh, st, done, total, src, handle, active, keep, &clock) {
			st.FileErrors++
			cfg.Log.Warn(fmt.Sprintf("%s: the file shrank while it was read; the rest of it is lost", path))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if cfg.Progress != nil {
		cfg.Progress(*done, total, st.Frames, 0)
	}
	return nil
}

// readFile reads one open capture to its end, and closes it.
func readFile(ctx context.Context, cfg ReplayConfig, sh *core, st *ReplayStats, done *int64, total int64, src *capture.FileSource,
	handle frameHandler, active func() int, keep func(release func()), c *readClock) (faulted bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	r := fileReader{ctx: ctx, cfg: cfg, sh: sh, st: st, total: total, src: src, handle: handle, active: active, c: c,
		base: *done, stable: src.Stable()}
	if r.stable {
		// Workers may still hold frames of this file when it is
		// closed; the mapping goes when they are done.
		if release := src.KeepMapped(); release != nil {
			keep(release)
		}
	}
	for again := true; again; {
		again, faulted = r.frames()
	}
	if faulted {
		return true
	}
	*done = r.base + src.Size()
	if n := src.Stats().Untimed; n > 0 {
		cfg.Log.Info(fmt.Sprintf("%s: %d packets in simple packet blocks carry no time; each was given the time of the packet before it", src.Path(), n))
	}
	src.Close()
	return false
}

// fileReader is one file's reading, which frames resumes after a frame
// that reached a bug.
type fileReader struct {
	ctx    context.Context
	cfg    ReplayConfig
	sh     *core
	st     *ReplayStats
	total  int64
	src    *capture.FileSource
	handle frameHandler
	active func() int
	c      *readClock
	base   int64
	stable bool
	n      int
	pkt    capture.Packet
}

// frames reads frames to the end of the file. A mapped file cut short
// under the reader (a tcpdump -W ring) faults when its lost pages are
// touched, in the capture source or in the decoder; the fault ends the
// file, reported by faulted, instead of the process. Any other panic is a
// bug the frame reached: it is counted (st.Bugs) and reported with the
// file and offset, which reproduce it, and again says to go on with the
// next frame.
func (r *fileReader) frames() (again, faulted bool) {
	defer func() {
		if v := recover(); v != nil {
			if capture.IsFault(v) {
				faulted = true
				r.src.Close()
				return
			}
			r.st.frameBugs++
			r.sh.bug(fmt.Sprintf("%s at offset %d", r.src.Path(), r.src.Offset()), v, debug.Stack(), nil, nil)
			again = true
		}
	}()
	// The per-frame loop reads locals, not r's fields.
	src, st, handle, pkt, realtime, stable := r.src, r.st, r.handle, &r.pkt, r.cfg.Realtime, r.stable
	for ; ; r.n++ {
		err := src.Next(pkt)
		if err == io.EOF || err == capture.ErrInterrupted {
			return false, false
		}
		if err != nil {
			st.FileErrors++
			r.cfg.Log.Warn(err.Error())
			return false, false
		}
		ts := pkt.CaptureInfo.Timestamp.UnixNano()
		if realtime {
			if r.c.lastTS != 0 && ts > r.c.lastTS {
				if d := time.Duration(ts-r.c.lastTS) - time.Since(r.c.lastWall); d > 0 && !sleepCtx(r.ctx, d) {
					return false, false
				}
			}
			r.c.lastTS, r.c.lastWall = ts, time.Now()
		}
		st.Frames++
		st.Bytes += uint64(len(pkt.Data))
		handle(pkt.Data, pkt.CaptureInfo.Length, pkt.LinkType, ts, stable)
		if r.n&0x3f == 0 {
			if r.ctx.Err() != nil {
				return false, false
			}
			if r.cfg.Progress != nil && time.Since(r.c.lastPrint) > 100*time.Millisecond {
				r.c.lastPrint = time.Now()
				a := 0
				if r.active != nil {
					a = r.active()
				}
				r.cfg.Progress(r.base+r.src.BytesRead(), r.total, r.st.Frames, a)
			}
		}
	}
}

// sleepCtx sleeps for d, or less if ctx ends first; it reports whether it
// slept the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readClock is what pacing and progress remember from file to file.
type readClock struct {
	lastTS              int64
	lastWall, lastPrint time.Time
}
