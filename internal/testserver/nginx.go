package testserver

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nginx is a real nginx, run as a child with its own prefix directory, as
// a webhook receiver. It listens on 127.0.0.1, plain and TLS, and keeps
// every body it reads in a file of its own. Its locations:
//
//   - /ok, /bearer and /basic read the body (client_body_in_file_only, then
//     proxy_pass to a local server that answers 200); /bearer answers 401
//     unless the Authorization header is "Bearer " and Token, /basic checks
//     User and Password against an htpasswd file;
//   - /small keeps bodies of 2 KiB at most and answers 413 to longer ones;
//   - /busy answers 503 with Retry-After: 7, /later 429 with a date, /bad
//     400 with a reason ("record 3: no ts"), /moved 308 to
//     https://elsewhere.example/hook.
//
// Its access log says, per request, the status, URI, body file,
// Content-Type, Content-Encoding and Content-Length.
type Nginx struct {
	// PKI made the server's certificate; clients verify it with PKI.CA.
	PKI            *PKI
	Token          string // /bearer's
	User, Password string // /basic's
	t              testing.TB
	bin, dir       string
	httpP, httpsP  int
	fixed          bool // the ports stay what they are
	proc           *child
}

// NewNginx prepares an nginx, not started: Start starts it, and it is
// stopped when the test ends.
func NewNginx(t testing.TB) *Nginx {
	t.Helper()
	n := &Nginx{t: t, bin: Need(t, "nginx"), dir: t.TempDir(), PKI: NewPKI(t), User: "outflow", Password: "pa ss:wörd"}
	tok := make([]byte, 16)
	rand.Read(tok)
	n.Token = hex.EncodeToString(tok)
	hash, err := exec.Command(Need(t, "openssl"), "passwd", "-apr1", n.Password).Output()
	if err != nil {
		t.Fatalf("openssl passwd: %v", err)
	}
	if err := os.WriteFile(n.path("htpasswd"), []byte(n.User+":"+strings.TrimSpace(string(hash))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(n.Stop)
	return n
}

// StartNginx is NewNginx and Start.
func StartNginx(t testing.TB) *Nginx {
	t.Helper()
	n := NewNginx(t)
	n.Start()
	return n
}

func (n *Nginx) path(name string) string { return filepath.Join(n.dir, name) }

// URL is the address of a location over http or https, the same across
// restarts. Asked before the first Start, it fixes the ports then (see
// FreePort), so a client can be pointed at a server that is not up yet.
func (n *Nginx) URL(scheme, location string) string {
	n.t.Helper()
	if n.httpP == 0 {
		n.choosePorts()
		n.fixed = true
	}
	port := n.httpP
	if scheme == "https" {
		port = n.httpsP
	}
	return fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, location)
}

func (n *Nginx) choosePorts() {
	n.httpP = FreePort(n.t, "tcp")
	for n.httpsP = n.httpP; n.httpsP == n.httpP; {
		n.httpsP = FreePort(n.t, "tcp")
	}
}

func (n *Nginx) config() string {
	user := ""
	if os.Geteuid() == 0 {
		// Workers as root can write the body files into the test's
		// directory, which only root may enter.
		user = "user root;"
	}
	up := "http://unix:" + n.path("up.sock") + ":/"
	keep := "client_body_in_file_only on; proxy_pass " + up + ";"
	return fmt.Sprintf(`%s
worker_processes 1;
error_log %s info;
events { worker_connections 64; }
http {
  log_format hook '$status $request_uri $request_body_file "$content_type" "$http_content_encoding" $content_length';
  access_log %s hook;
  client_body_temp_path %s;
  proxy_temp_path %s;
  fastcgi_temp_path %s;
  uwsgi_temp_path %s;
  scgi_temp_path %s;
  client_max_body_size 64m;
  server {
    listen unix:%s;
    access_log off;
    location / { return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location = /ok { %s }
    location = /bearer {
      if ($http_authorization != "Bearer %s") { return 401; }
      %s
    }
    location = /basic { auth_basic "outflow"; auth_basic_user_file %s; %s }
    location = /small { client_max_body_size 2k; %s }
    location = /busy { add_header Retry-After 7 always; return 503; }
    location = /later { add_header Retry-After "Wed, 21 Oct 2037 07:28:00 GMT" always; return 429; }
    location = /bad { default_type text/plain; return 400 "record 3: no ts\n"; }
    location = /moved { return 308 https://elsewhere.example/hook; }
  }
}
`, user, n.path("logs/error.log"), n.path("logs/access.log"), n.path("body"), n.path("proxy"), n.path("fastcgi"),
		n.path("uwsgi"), n.path("scgi"), n.path("up.sock"), n.httpP, n.httpsP, n.PKI.ServerCert, n.PKI.ServerKey,
		keep, n.Token, keep, n.path("htpasswd"), keep, keep)
}

// Start runs nginx and waits until it listens on both ports, failing the
// test when it does not within 30 s. At the first start, ports nobody
// asked for yet are chosen, again if another program takes one first;
// after a Stop, nginx listens on the same ports again.
func (n *Nginx) Start() {
	n.t.Helper()
	if n.proc != nil {
		n.t.Fatal("nginx is running already")
	}
	for try := 0; ; try++ {
		if n.httpP == 0 {
			n.choosePorts()
		}
		err := n.start()
		if err == nil {
			n.fixed = true
			return
		}
		if n.fixed || try == 2 || !strings.Contains(err.Error(), "Address already in use") {
			n.t.Fatal(err)
		}
		n.httpP, n.httpsP = 0, 0
	}
}

func (n *Nginx) start() error {
	conf := n.path("nginx.conf")
	if err := os.WriteFile(conf, []byte(n.config()), 0o644); err != nil {
		return err
	}
	os.Remove(n.path("up.sock"))
	os.Remove(n.path("nginx.out"))
	p, err := startChild(n.bin, []string{"-p", n.dir + "/", "-c", conf, "-g", "daemon off; pid " + n.path("nginx.pid") + ";"},
		n.path("nginx.out"))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("nginx exited at start: %s", n.Output())
		}
		http, err := listens(p.pid(), "tcp", "0A", n.httpP)
		if err != nil {
			p.stop(syscall.SIGQUIT)
			return err
		}
		https, _ := listens(p.pid(), "tcp", "0A", n.httpsP)
		if http && https {
			n.proc = p
			return nil
		}
		if time.Now().After(deadline) {
			p.stop(syscall.SIGQUIT)
			return fmt.Errorf("nginx does not listen after 30 s: %s", n.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends nginx (SIGQUIT, its graceful stop) and waits for it. Stopping
// a stopped server does nothing.
func (n *Nginx) Stop() {
	if n.proc == nil {
		return
	}
	n.proc.stop(syscall.SIGQUIT)
	n.proc = nil
}

// Output is what nginx said on stdout, stderr and in its error log, for
// failure messages.
func (n *Nginx) Output() string {
	a, _ := os.ReadFile(n.path("nginx.out"))
	b, _ := os.ReadFile(n.path("logs/error.log"))
	return string(a) + string(b)
}

// Request is one line of nginx's access log, with the body it kept,
// gunzipped when it came gzipped.
type Request struct {
	Status, URI, ContentType, Encoding string
	Length                             int // Content-Length
	Body                               []byte
}

// String is the request without its body.
func (r Request) String() string {
	return fmt.Sprintf("%s %s type %q encoding %q length %d", r.Status, r.URI, r.ContentType, r.Encoding, r.Length)
}

// Requests returns the requests nginx logged for uri once it has logged
// count, failing the test when it does not within a minute.
func (n *Nginx) Requests(uri string, count int) []Request {
	n.t.Helper()
	return n.until(uri, fmt.Sprintf("%d requests", count), func(got []Request) bool { return len(got) >= count })
}

// Bodies returns the requests nginx logged for uri once their bodies add
// up to size bytes, failing the test when they do not within a minute.
func (n *Nginx) Bodies(uri string, size int) []Request {
	n.t.Helper()
	return n.until(uri, fmt.Sprintf("%d bytes of bodies", size), func(got []Request) bool {
		sum := 0
		for _, r := range got {
			sum += len(r.Body)
		}
		return sum >= size
	})
}

func (n *Nginx) until(uri, what string, done func([]Request) bool) []Request {
	n.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := n.Read(uri)
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nginx did not log %s for %s in a minute, but %d requests\n%s", what, uri, len(got), n.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Read returns the requests nginx has logged so far for uri, in the order
// it logged them.
func (n *Nginx) Read(uri string) []Request {
	n.t.Helper()
	b, err := os.ReadFile(n.path("logs/access.log"))
	if err != nil && !os.IsNotExist(err) {
		n.t.Fatal(err)
	}
	lines, err := parseAccessLog(b)
	if err != nil {
		n.t.Fatalf("nginx's access log: %v", err)
	}
	var got []Request
	for _, l := range lines {
		if l.URI != uri {
			continue
		}
		r := l.Request
		if l.bodyFile != "" {
			if r.Body, err = os.ReadFile(l.bodyFile); err != nil {
				n.t.Fatal(err)
			}
			if r.Encoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(r.Body))
				if err != nil {
					n.t.Fatalf("%s: not gzip: %v", l.bodyFile, err)
				}
				if r.Body, err = io.ReadAll(zr); err != nil {
					n.t.Fatalf("%s: broken gzip: %v", l.bodyFile, err)
				}
			}
		}
		got = append(got, r)
	}
	return got
}
