package webhook

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/outflow-sensor/outflow/internal/neterr"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// Transport POSTs records to one HTTP receiver as NDJSON. It is safe for
// concurrent use; Sends run one at a time, so POSTs keep the records'
// order.
type Transport struct {
	cfg    Config
	url    string // as given, query and all
	name   string // without the query
	auth   string // the Authorization header's value; never shown
	client *http.Client

	mu     sync.Mutex
	closed bool
	limit  int // MaxBatchBytes, or less after a 413
	zw     *gzip.Writer
}

var _ sink.Transport = (*Transport)(nil)

// New checks cfg, reads its secret and TLS files and returns a Transport
// that connects on its first Send. Plain http to a host that is not
// loopback is allowed, as other shippers allow it, with a warning to
// cfg.Log: the records, and any credentials, cross the network readable.
func New(cfg Config) (*Transport, error) {
	u, name, err := checkURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	t := &Transport{url: cfg.URL, name: name}
	if t.auth, err = authorization(cfg); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", name, err)
	}
	if cfg.MaxBatchBytes < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("webhook %s: MaxBatchBytes and Timeout: want positive values, or 0 for the defaults", name)
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = 1 << 20
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	if u.Scheme == "https" {
		if tr.TLSClientConfig, err = tlsConfig(cfg); err != nil {
			return nil, fmt.Errorf("webhook %s: %w", name, err)
		}
	} else {
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.TLS != nil {
			return nil, fmt.Errorf("webhook %s: TLS settings given for http: only https uses them", name)
		}
		if !loopback(u.Hostname()) {
			cfg.Log.Warn("webhook posts records unencrypted: use https", "url", name, "credentials_in_clear", t.auth != "")
		}
	}
	t.client = &http.Client{
		Transport: tr,
		// A redirect is a URL to fix, and following it would carry the
		// records, and perhaps the credentials, somewhere not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.cfg, t.limit = cfg, cfg.MaxBatchBytes
	return t, nil
}

// Name is the receiver's URL without its query, which may hold a key.
func (t *Transport) Name() string { return t.name }

// Send POSTs recs in order, at most MaxBatchBytes of them a POST, and
// returns how many were in POSTs answered 2xx. A *sink.Rejected means
// the receiver refused the next POST's records for good (4xx but 408 and
// 429, and 413 for one record: a 413 for several halves the POSTs); a
// *StatusError (408, 429, 5xx, 3xx), a network error or a
// timeout, that they are worth sending again.
func (t *Transport) Send(ctx context.Context, recs []sink.Record) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, fmt.Errorf("webhook %s: the transport is closed", t.name)
	}
	done := 0
	for done < len(recs) {
		body, n, size := t.batch(recs[done:])
		err := t.post(ctx, body, n)
		var st *StatusError
		if n > 1 && errors.As(err, &st) && st.Code == http.StatusRequestEntityTooLarge {
			// The receiver takes smaller bodies, not fewer records: halve
			// the POSTs for this Transport's life and send these again.
			// One record too large for it is refused.
			t.limit = size / 2
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// Close lets the idle connections go.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.client.CloseIdleConnections()
	return nil
}

// batch lays out the first records of recs as one POST's NDJSON body, at
// most t.limit bytes unless the first record alone is longer, and says
// how many records it took and its size before compression. A body is
// never reused: the HTTP client may still read it after the answer came.
func (t *Transport) batch(recs []sink.Record) (body []byte, n, size int) {
	for _, r := range recs {
		if n > 0 && size+len(r.Value)+1 > t.limit {
			break
		}
		size += len(r.Value) + 1
		n++
	}
	body = make([]byte, 0, size)
	for _, r := range recs[:n] {
		body = append(append(body, r.Value...), '\n')
	}
	if !t.cfg.Gzip {
		return body, n, size
	}
	var z bytes.Buffer
	z.Grow(size / 4)
	if t.zw == nil {
		t.zw, _ = gzip.NewWriterLevel(&z, gzip.BestSpeed) // the level is valid
	} else {
		t.zw.Reset(&z)
	}
	t.zw.Write(body) // a bytes.Buffer takes everything
	t.zw.Close()
	return z.Bytes(), n, size
}

// post sends one body of n records and reads the answer.
func (t *Transport) post(ctx context.Context, body []byte, n int) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: cannot make the request: %v", t.name, neterr.Plain(err))
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("User-Agent", "outflow")
	if t.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: cannot POST: %w", t.name, neterr.Plain(err))
	}
	defer func() {
		// Read what is left, within reason, so the connection serves again.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	serr := &StatusError{URL: t.name, Code: resp.StatusCode, Status: resp.Status,
		Retry: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Body: excerpt(resp)}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		serr.Body = "a redirect: give the URL it names, " + strings.Map(printable, resp.Header.Get("Location"))
	}
	if resp.StatusCode >= 400 && resp.StatusCode <= 499 && !retryable4xx(resp.StatusCode) {
		return &sink.Rejected{Count: n, Err: serr}
	}
	return serr
}

// excerpt is the start of a text answer's body, on one line; "" for HTML
// (an error page says no more than the status) and other types.
func excerpt(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/plain" && mt != "application/json" && mt != "application/problem+json" {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	s := strings.Join(strings.Fields(strings.Map(printable, strings.ToValidUTF8(string(b), "?"))), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// printable keeps printable characters; others become spaces.
func printable(r rune) rune {
	if unicode.IsPrint(r) {
		return r
	}
	return ' '
}

// retryable4xx are the 4xx answers about the sender or the moment, not the
// records: a timeout, a rate limit, and credentials (an expired token, a
// key not yet allowed), which an operator fixes while the records wait:
// alerts must not be dropped for them.
func retryable4xx(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}
