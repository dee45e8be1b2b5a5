package sensor

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// limitedHandler keeps bad input from flooding the log: records that carry
// a "problem" attribute (a kind of bad input: a datagram that does not
// decode, a host-event record that does not parse) are logged the first
// few times per kind and interval; the rest are counted, and the count is
// logged when the kind next comes up after its interval. Everything else
// passes through. Counting every bad record stays the job of the stats.
type limitedHandler struct {
	slog.Handler
	st *limitState
}

type limitState struct {
	mu    sync.Mutex
	every time.Duration
	burst int
	kinds map[string]*limitKind
	now   func() time.Time
}

type limitKind struct {
	start      time.Time
	logged     int
	suppressed int
}

const (
	problemKey   = "problem"
	problemBurst = 5
)

func newLimitedHandler(h slog.Handler, burst int, every time.Duration) *limitedHandler {
	return &limitedHandler{Handler: h, st: &limitState{every: every, burst: burst, kinds: map[string]*limitKind{}, now: time.Now}}
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	kind := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == problemKey {
			kind = a.Value.String()
			return false
		}
		return true
	})
	if kind == "" {
		return h.Handler.Handle(ctx, r)
	}
	st := h.st
	st.mu.Lock()
	now := st.now()
	k := st.kinds[kind]
	if k == nil {
		k = &limitKind{start: now}
		st.kinds[kind] = k
	}
	var summary int
	if now.Sub(k.start) >= st.every {
		summary = k.suppressed
		k.start, k.logged, k.suppressed = now, 0, 0
	}
	allow := k.logged < st.burst
	if allow {
		k.logged++
	} else {
		k.suppressed++
	}
	st.mu.Unlock()
	if summary > 0 {
		s := slog.NewRecord(now, slog.LevelWarn, "more problems of this kind were not logged", 0)
		s.AddAttrs(slog.String(problemKey, kind), slog.Int("suppressed", summary), slog.Duration("within", st.every))
		if err := h.Handler.Handle(ctx, s); err != nil {
			return err
		}
	}
	if !allow {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *limitedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithAttrs(as), st: h.st}
}

func (h *limitedHandler) WithGroup(name string) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithGroup(name), st: h.st}
}
