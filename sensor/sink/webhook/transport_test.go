package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/testserver"
	"github.com/outflow-sensor/outflow/sensor/sink"
)

// records makes n JSON lines with ids prefix00000…, non-ASCII text and
// escapes, and pad bytes of padding.
func records(prefix string, n, pad int) []sink.Record {
	recs := make([]sink.Record, n)
	for i := range recs {
		v, err := json.Marshal(map[string]any{
			"id":   fmt.Sprintf("%s%05d", prefix, i),
			"note": "é 日本 \"quoted\" back\\slash tab\t",
			"pad":  strings.Repeat("x", pad),
		})
		if err != nil {
			panic(err)
		}
		recs[i] = sink.Record{Value: v}
	}
	return recs
}

// ndjson is recs as one NDJSON text.
func ndjson(recs []sink.Record) []byte {
	var b []byte
	for _, r := range recs {
		b = append(append(b, r.Value...), '\n')
	}
	return b
}

func mustNew(t testing.TB, cfg Config) *Transport {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func secret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// delivered checks that nginx kept, in POSTs answered 200, each at most
// max bytes of NDJSON, exactly recs.
func delivered(t *testing.T, reqs []testserver.Request, recs []sink.Record, max int, encoding string) {
	t.Helper()
	var all []byte
	for i, r := range reqs {
		if r.Status != "200" || r.ContentType != "application/x-ndjson" || r.Encoding != encoding {
			t.Fatalf("POST %d: %v", i, r)
		}
		if len(r.Body) > max && bytes.Count(r.Body, []byte("\n")) > 1 {
			t.Fatalf("POST %d: a body of %d bytes, over %d", i, len(r.Body), max)
		}
		all = append(all, r.Body...)
	}
	if want := ndjson(recs); !bytes.Equal(all, want) {
		t.Fatalf("nginx kept %d bytes in %d POSTs, not the %d of the records", len(all), len(reqs), len(want))
	}
}

// Records reach a real nginx whole and in order, over http and https, in
// POSTs of at most MaxBatchBytes, gzipped or not; the credentials nginx
// checks get in, wrong ones get a refusal the caller can tell from a
// failure worth retrying; and nginx's other answers read as they should.
func TestNginx(t *testing.T) {
	ng := testserver.StartNginx(t)
	ctx := context.Background()

	t.Run("split", func(t *testing.T) {
		tr := mustNew(t, Config{URL: ng.URL("http", "/ok"), MaxBatchBytes: 16 << 10})
		recs := slices.Concat(records("a", 300, 400), records("big", 1, 40<<10), records("b", 10, 0))
		n, err := tr.Send(ctx, recs)
		if n != len(recs) || err != nil {
			t.Fatalf("Send: %d of %d, %v", n, len(recs), err)
		}
		reqs := ng.Bodies("/ok", len(ndjson(recs)))
		if len(reqs) < 9 {
			t.Fatalf("%d POSTs for %d bytes in POSTs of 16 KiB at most", len(reqs), len(ndjson(recs)))
		}
		delivered(t, reqs, recs, 16<<10, "")
	})

	t.Run("gzip over https", func(t *testing.T) {
		tr := mustNew(t, Config{URL: ng.URL("https", "/bearer"), CAFile: ng.PKI.CA, TokenFile: secret(t, ng.Token+"\n"), Gzip: true})
		recs := records("g", 2000, 100)
		if n, err := tr.Send(ctx, recs); n != len(recs) || err != nil {
			t.Fatalf("Send: %d of %d, %v", n, len(recs), err)
		}
		reqs := ng.Bodies("/bearer", len(ndjson(recs)))
		delivered(t, reqs, recs, 1<<20, "gzip")
		if reqs[0].Length >= len(ndjson(recs))/3 {
			t.Fatalf("gzip took %d bytes to %d", len(ndjson(recs)), reqs[0].Length)
		}
	})

	t.Run("basic", func(t *testing.T) {
		tr := mustNew(t, Config{URL: ng.URL("https", "/basic"), CAFile: ng.PKI.CA, User: ng.User,
			PasswordFile: secret(t, ng.Password+"\n")})
		recs := records("p", 5, 10)
		if n, err := tr.Send(ctx, recs); n != len(recs) || err != nil {
			t.Fatalf("Send: %d of %d, %v", n, len(recs), err)
		}
		delivered(t, ng.Bodies("/basic", len(ndjson(recs))), recs, 1<<20, "")
	})

	t.Run("wrong credentials", func(t *testing.T) {
		// A wrong token or password is the operator's to fix: the records
		// wait (the spool holds alerts), nothing is refused.
		for _, cfg := range []Config{
			{URL: ng.URL("http", "/bearer"), TokenFile: secret(t, "not-"+ng.Token)},
			{URL: ng.URL("https", "/basic"), CAFile: ng.PKI.CA, User: ng.User, PasswordFile: secret(t, "guess")},
		} {
			tr := mustNew(t, cfg)
			n, err := tr.Send(ctx, records("c", 3, 100))
			var perm *sink.Rejected
			var st *StatusError
			if n != 0 || errors.As(err, &perm) || !errors.As(err, &st) || st.Code != 401 {
				t.Fatalf("%s: Send: %d, %v; want 0 and a 401 to retry", cfg.URL, n, err)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		// A record nginx calls bad: the records of the first POST are
		// refused for good.
		for _, cfg := range []Config{
			{URL: ng.URL("http", "/bad")},
		} {
			cfg.MaxBatchBytes = 1000
			tr := mustNew(t, cfg)
			recs := records("r", 20, 100) // equal lengths, several to a POST
			uri := cfg.URL[strings.LastIndexByte(cfg.URL, '/'):]
			before := len(ng.Read(uri))
			n, err := tr.Send(ctx, recs)
			var perm *sink.Rejected
			var st *StatusError
			if n != 0 || !errors.As(err, &perm) || !errors.As(err, &st) {
				t.Fatalf("%s: Send: %d, %v; want 0 and a sink.Rejected", cfg.URL, n, err)
			}
			reqs := ng.Requests(uri, before+1)
			if len(reqs) != before+1 {
				t.Fatalf("%s: %d POSTs after a refusal", uri, len(reqs)-before)
			}
			last := reqs[before]
			// nginx's count of the POST's bytes says how many records it held.
			if last.Status != fmt.Sprint(st.Code) || last.Length/(len(recs[0].Value)+1) != perm.Rejected() || perm.Rejected() >= len(recs) {
				t.Fatalf("%s: nginx logged %v; the error says %d refused: %v", uri, last, perm.Rejected(), err)
			}
		}
	})

	t.Run("too large", func(t *testing.T) {
		// nginx takes 2 KiB; the POSTs shrink until it takes them, and a
		// record longer than that alone is refused.
		tr := mustNew(t, Config{URL: ng.URL("http", "/small")})
		recs := records("l", 40, 200)
		huge := records("L", 1, 3000)
		n, err := tr.Send(ctx, slices.Concat(recs, huge, recs[:1]))
		var perm *sink.Rejected
		if n != len(recs) || !errors.As(err, &perm) || perm.Rejected() != 1 {
			t.Fatalf("Send: %d, %v; want %d and 1 refused", n, err, len(recs))
		}
		reqs := ng.Bodies("/small", len(ndjson(recs)))
		var ok []testserver.Request
		for _, r := range reqs {
			if r.Status == "200" {
				ok = append(ok, r)
			} else if r.Status != "413" {
				t.Fatalf("nginx answered %v", r)
			}
		}
		delivered(t, ok, recs, 2<<10, "")
	})

	t.Run("bad says why", func(t *testing.T) {
		tr := mustNew(t, Config{URL: ng.URL("http", "/bad")})
		_, err := tr.Send(ctx, records("w", 1, 0))
		if err == nil || !strings.HasSuffix(err.Error(), ": answered 400 Bad Request: record 3: no ts") {
			t.Fatalf("%v", err)
		}
	})

	t.Run("retry", func(t *testing.T) {
		for _, tc := range []struct {
			location string
			code     int
			min, max time.Duration
		}{
			{"/busy", 503, 7 * time.Second, 7 * time.Second},
			{"/later", 429, time.Until(time.Date(2037, 10, 21, 7, 27, 0, 0, time.UTC)), time.Until(time.Date(2037, 10, 21, 7, 28, 0, 0, time.UTC))},
			{"/moved", 308, 0, 0},
		} {
			tr := mustNew(t, Config{URL: ng.URL("http", tc.location)})
			n, err := tr.Send(ctx, records("y", 3, 0))
			var perm *sink.Rejected
			var st *StatusError
			if n != 0 || errors.As(err, &perm) || !errors.As(err, &st) || st.Code != tc.code ||
				st.RetryAfter() < tc.min || st.RetryAfter() > tc.max {
				t.Fatalf("%s: Send: %d, %v; want 0 and a StatusError %d to retry after %v", tc.location, n, err, tc.code, tc.min)
			}
			if tc.code == 308 && !strings.Contains(err.Error(), "https://elsewhere.example/hook") {
				t.Fatalf("the redirect does not say where: %v", err)
			}
		}
	})

	t.Run("unknown CA", func(t *testing.T) {
		for _, ca := range []string{"", ng.PKI.Other} { // the system's roots, another CA
			tr := mustNew(t, Config{URL: ng.URL("https", "/ok"), CAFile: ca})
			n, err := tr.Send(ctx, records("c", 1, 0))
			var perm *sink.Rejected
			if n != 0 || err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("CA %q: Send: %d, %v", ca, n, err)
			}
		}
	})

	t.Run("no secret shown", func(t *testing.T) {
		tok := secret(t, ng.Token)
		tr := mustNew(t, Config{URL: ng.URL("http", "/busy") + "?api_key=k3y-in-query", TokenFile: tok})
		_, err := tr.Send(ctx, records("z", 1, 0))
		for _, s := range []string{tr.Name(), err.Error()} {
			if strings.Contains(s, "k3y") || strings.Contains(s, ng.Token) || !strings.Contains(s, "/busy?…") {
				t.Fatalf("%q shows a secret, or not where it was sent", s)
			}
		}
	})
}

// When nginx stops, Send fails with an error to retry; once it is back,
// the next Send delivers.
func TestNginxRestart(t *testing.T) {
	ng := testserver.StartNginx(t)
	ctx := context.Background()
	tr := mustNew(t, Config{URL: ng.URL("https", "/ok"), CAFile: ng.PKI.CA})
	a, b := records("a", 10, 10), records("b", 10, 10)
	if n, err := tr.Send(ctx, a); n != len(a) || err != nil {
		t.Fatalf("Send: %d, %v", n, err)
	}
	ng.Stop()
	n, err := tr.Send(ctx, b)
	var perm *sink.Rejected
	if n != 0 || err == nil || errors.As(err, &perm) {
		t.Fatalf("Send with nginx stopped: %d, %v; want 0 and an error to retry", n, err)
	}
	t.Logf("nginx stopped: %v", err)
	ng.Start()
	if n, err := tr.Send(ctx, b); n != len(b) || err != nil {
		t.Fatalf("Send after nginx's restart: %d, %v", n, err)
	}
	delivered(t, ng.Bodies("/ok", 2*len(ndjson(a))), slices.Concat(a, b), 1<<20, "")
}
