// Command quicpeer is the QUIC client and server that pcaps/record-quic.sh
// runs in two network namespaces: HTTP/3 over quic-go, a real QUIC stack
// (Debian's curl 7.88 has no HTTP/3). It is its own module so that Outflow
// itself does not depend on quic-go.
//
//	quicpeer server ADDR CERT KEY REPORT
//	quicpeer client URL SERVERNAME UPLOADBYTES REPORT [v1|v2]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: quicpeer server|client ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = server(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	case "client":
		n, _ := strconv.Atoi(os.Args[4])
		v := quic.Version1
		if len(os.Args) > 6 && os.Args[6] == "v2" {
			v = quic.Version2
		}
		err = client(os.Args[2], os.Args[3], n, os.Args[5], v)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "quicpeer:", err)
		os.Exit(1)
	}
}

// report appends one JSON line: what this side saw, for the tests.
func report(path string, v any) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quicpeer:", err)
		return
	}
	defer f.Close()
	b, _ := json.Marshal(v)
	f.Write(append(b, '\n'))
}

func server(addr, cert, key, rep string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		body := bytes.Repeat([]byte("outflow quic page\n"), 57) // 1026 bytes of text
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
		report(rep, map[string]any{"path": r.URL.Path, "method": r.Method, "request_body": 0, "response_body": len(body),
			"sni": r.TLS.ServerName, "alpn": r.TLS.NegotiatedProtocol, "remote": r.RemoteAddr})
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		msg := []byte(fmt.Sprintf("stored %d bytes\n", n))
		w.Write(msg)
		report(rep, map[string]any{"path": r.URL.Path, "method": r.Method, "request_body": n, "response_body": len(msg),
			"sni": r.TLS.ServerName, "alpn": r.TLS.NegotiatedProtocol, "remote": r.RemoteAddr})
	})
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	srv := &http3.Server{Addr: addr, Handler: mux, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{c}})}
	return srv.ListenAndServe()
}

func client(url, name string, upload int, rep string, version quic.Version) error {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{ServerName: name, InsecureSkipVerify: true}, // the recording's own self-signed server
		QUICConfig:      &quic.Config{Versions: []quic.Version{version}},
	}
	defer tr.Close()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx := context.Background()

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/small", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	report(rep, map[string]any{"url": url + "/small", "method": "GET", "status": resp.StatusCode, "proto": resp.Proto,
		"quic_version": version.String(), "sni": name, "request_body": 0, "response_body": len(got)})

	body := make([]byte, upload)
	rand.Read(body)
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, url+"/upload", bytes.NewReader(body))
	resp, err = hc.Do(req)
	if err != nil {
		return err
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	report(rep, map[string]any{"url": url + "/upload", "method": "POST", "status": resp.StatusCode, "proto": resp.Proto,
		"quic_version": version.String(), "sni": name, "request_body": upload, "response_body": len(got)})
	return nil
}
