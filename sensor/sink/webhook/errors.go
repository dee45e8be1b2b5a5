package webhook

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/sensor/sink"
)

// StatusError is an answer other than 2xx. On its own (408, 429, 5xx,
// 3xx) it is worth retrying; in a *sink.Rejected it is not.
type StatusError struct {
	URL    string // the receiver, as Name gives it
	Code   int
	Status string // as the receiver gave it: "503 Service Unavailable"
	// Retry is what a Retry-After header asked us to wait; 0 without one.
	Retry time.Duration
	// Body is the start of what the receiver said, when it was text and
	// not an HTML error page: it often names the reason.
	Body string
}

// Error says what the receiver answered.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook %s: answered %s", e.URL, e.Status)
	if e.Retry > 0 {
		fmt.Fprintf(&b, ", retry after %v", e.Retry)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	return b.String()
}

var _ sink.RetryAfter = (*StatusError)(nil)

// RetryAfter is Retry; the Delivery sink waits at least that long
// (sink.RetryAfter).
func (e *StatusError) RetryAfter() time.Duration { return e.Retry }

// parseRetryAfter reads a Retry-After header (RFC 9110 section 10.2.3):
// seconds, or an HTTP date, which now is subtracted from. Anything else,
// or a date past, is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		// At most 2^32-1 s, which a Duration holds.
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
