package testserver

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// sendSyslog writes one octet-counted RFC 5424 message to a TCP input.
func sendSyslog(addr, msgid, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	m := fmt.Sprintf("<134>1 2026-12-04T21:00:00.5Z testhost testapp 42 %s - %s", msgid, msg)
	_, err = fmt.Fprintf(c, "%d %s", len(m), m)
	return err
}

// An rsyslog whose TCP port was asked for before it started: nothing
// listens there until Start; it receives; after Stop nothing listens
// there again, and after a second Start it receives on the same port, its
// file keeping what came before.
func TestRsyslogOutage(t *testing.T) {
	r := NewRsyslog(t)
	addr := r.Addr(TCP)
	if err := sendSyslog(addr, "early", "x"); err == nil {
		t.Fatalf("%s: connected before rsyslogd started", addr)
	}
	r.Start()
	if err := sendSyslog(addr, "first", `{"id":"1","note":"é"}`); err != nil {
		t.Fatal(err)
	}
	got := r.Wait(TCP, 1)
	want := Message{"testhost", "testapp", "42", "first", "local0", "info", "2026-12-04T21:00:00.5Z", "-", `{"id":"1","note":"é"}`}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("rsyslog wrote %+v, want %+v", got, want)
	}
	r.Stop()
	if err := sendSyslog(addr, "down", "x"); err == nil {
		t.Fatalf("%s: connected while rsyslogd is stopped", addr)
	}
	r.Start()
	if r.Addr(TCP) != addr {
		t.Fatalf("restarted on %s, not %s", r.Addr(TCP), addr)
	}
	if err := sendSyslog(addr, "second", "y"); err != nil {
		t.Fatal(err)
	}
	got = r.Wait(TCP, 2)
	if len(got) != 2 || got[0] != want || got[1].MsgID != "second" || got[1].Msg != "y" {
		t.Fatalf("after the restart rsyslog holds %+v", got)
	}
}

// The PKI's server certificate verifies against its CA for 127.0.0.1, and
// against no other CA; rsyslog's TLS input presents it.
func TestRsyslogTLS(t *testing.T) {
	r := StartRsyslog(t)
	for _, tc := range []struct {
		ca string
		ok bool
	}{{r.PKI.CA, true}, {r.PKI.Other, false}} {
		pem, err := os.ReadFile(tc.ca)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", r.Addr(TLS), &tls.Config{RootCAs: pool})
		if (err == nil) != tc.ok {
			t.Fatalf("TLS to rsyslog with CA %s: %v", tc.ca, err)
		}
		if err == nil {
			m := "<134>1 - - - - tls - over tls"
			fmt.Fprintf(c, "%d %s", len(m), m)
			c.Close()
		}
	}
	if got := r.Wait(TLS, 1); got[0].Msg != "over tls" || got[0].MsgID != "tls" {
		t.Fatalf("rsyslog wrote %+v", got)
	}
}

// An nginx whose URL was asked for before it started: it keeps a POST's
// body, refuses a wrong token, and after Stop and Start takes POSTs on the
// same port.
func TestNginxOutage(t *testing.T) {
	n := NewNginx(t)
	url := n.URL("http", "/bearer")
	post := func(token, body string) (int, error) {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if _, err := post(n.Token, "x\n"); err == nil {
		t.Fatalf("%s answered before nginx started", url)
	}
	n.Start()
	if code, err := post(n.Token, "{\"id\":1}\n"); code != 200 || err != nil {
		t.Fatalf("POST: %d, %v", code, err)
	}
	if code, err := post("wrong", "{\"id\":2}\n"); code != 401 || err != nil {
		t.Fatalf("POST with a wrong token: %d, %v", code, err)
	}
	n.Stop()
	if _, err := post(n.Token, "x\n"); err == nil {
		t.Fatalf("%s answered while nginx is stopped", url)
	}
	n.Start()
	if code, err := post(n.Token, "{\"id\":3}\n"); code != 200 || err != nil {
		t.Fatalf("POST after the restart: %d, %v", code, err)
	}
	got := n.Requests("/bearer", 3) // 200, 401, 200
	var bodies [][]byte
	for _, r := range got {
		if r.Status == "200" {
			if r.ContentType != "application/x-ndjson" || r.Length != len(r.Body) {
				t.Errorf("nginx logged %v for a body of %d bytes", r, len(r.Body))
			}
			bodies = append(bodies, r.Body)
		}
	}
	if want := []byte("{\"id\":1}\n{\"id\":3}\n"); !bytes.Equal(bytes.Join(bodies, nil), want) {
		t.Fatalf("nginx kept %q, want %q", bytes.Join(bodies, nil), want)
	}
}
