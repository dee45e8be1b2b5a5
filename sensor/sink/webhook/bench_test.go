package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Records per second over loopback, 1000 records of about 400 bytes a
// Send (one POST), to a Go server that reads each body and answers 200.
func BenchmarkSend(b *testing.B) {
	recs := records("b", 1000, 340)
	size := len(ndjson(recs))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	for _, tc := range []struct {
		name      string
		tls, gzip bool
	}{{"http", false, false}, {"http gzip", false, true}, {"https", true, false}} {
		b.Run(tc.name, func(b *testing.B) {
			var srv *httptest.Server
			cfg := Config{Gzip: tc.gzip}
			if tc.tls {
				srv = httptest.NewTLSServer(handler)
				pool := x509.NewCertPool()
				pool.AddCert(srv.Certificate())
				cfg.TLS = &tls.Config{RootCAs: pool}
			} else {
				srv = httptest.NewServer(handler)
			}
			defer srv.Close()
			cfg.URL = srv.URL + "/hook"
			tr := mustNew(b, cfg)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := tr.Send(ctx, recs); err != nil || n != len(recs) {
					b.Fatalf("%d: %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
