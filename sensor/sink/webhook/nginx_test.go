package webhook

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxd is a real nginx, run as a child with its own prefix directory,
// as the webhook receiver. It listens on loopback, plain and TLS, and
// keeps every body it reads in a file of its own: /ok, /bearer and /basic
// read the body (client_body_in_file_only, then proxy_pass to a local
// server that answers 200); /bearer answers 401 unless the Authorization
// header is the token's, /basic checks a user and password against an
// htpasswd file; /small keeps bodies of 2 KiB at most and answers 413 to
// longer ones; /busy answers 503 with Retry-After: 7, /later 429 with a
// date, /bad 400 with a reason, /moved 308. Its access log says, per
// request, the status, URI, body file, Content-Type, Content-Encoding
// and Content-Length.
type nginxd struct {
	t              *testing.T
	bin, dir       string
	pki            *pki
	Token          string // /bearer's
	User, Password string // /basic's
	httpP, httpsP  int
	cmd            *exec.Cmd
	done           chan struct{}
}

func startNginx(t *testing.T) *nginxd {
	t.Helper()
	n := &nginxd{t: t, bin: need(t, "nginx"), dir: t.TempDir(), pki: newPKI(t), User: "outflow", Password: "pa ss:wörd"}
	tok := make([]byte, 16)
	rand.Read(tok)
	n.Token = hex.EncodeToString(tok)
	openssl := need(t, "openssl")
	hash, err := exec.Command(openssl, "passwd", "-apr1", n.Password).Output()
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
	t.Cleanup(n.stop)
	// A port found free may be taken before nginx binds it: try again.
	for try := 0; ; try++ {
		n.httpP, n.httpsP = freePort(t), freePort(t)
		err := n.start()
		if err == nil {
			break
		}
		if try == 2 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatal(err)
		}
	}
	return n
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (n *nginxd) path(name string) string { return filepath.Join(n.dir, name) }

// URL is the address of a location over http or https.
func (n *nginxd) URL(scheme, location string) string {
	port := n.httpP
	if scheme == "https" {
		port = n.httpsP
	}
	return fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, location)
}

func (n *nginxd) config() string {
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
		n.path("uwsgi"), n.path("scgi"), n.path("up.sock"), n.httpP, n.httpsP, n.pki.ServerCert, n.pki.ServerKey,
		keep, n.Token, keep, n.path("htpasswd"), keep, keep)
}

// start runs nginx and waits until it answers on both ports.
func (n *nginxd) start() error {
	conf := n.path("nginx.conf")
	if err := os.WriteFile(conf, []byte(n.config()), 0o644); err != nil {
		return err
	}
	os.Remove(n.path("up.sock"))
	out, err := os.OpenFile(n.path("nginx.out"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	n.cmd = exec.Command(n.bin, "-p", n.dir+"/", "-c", conf, "-g", "daemon off; pid "+n.path("nginx.pid")+";")
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("cannot start nginx: %v", err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(n.cmd, n.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-n.done:
			n.cmd = nil
			return fmt.Errorf("nginx exited at start: %s", n.output())
		default:
		}
		if n.answers(n.httpP) && n.answers(n.httpsP) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx does not listen after 30 s: %s", n.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *nginxd) answers(port int) bool {
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// stop ends nginx (SIGQUIT, its graceful stop) and waits for it.
func (n *nginxd) stop() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}

func (n *nginxd) output() string {
	a, _ := os.ReadFile(n.path("nginx.out"))
	b, _ := os.ReadFile(n.path("logs/error.log"))
	return string(a) + string(b)
}

// request is one line of nginx's access log, with the body it kept,
// gunzipped when it came gzipped.
type request struct {
	Status, URI, ContentType, Encoding string
	Length                             int // Content-Length
	Body                               []byte
}

// String is the request without its body.
func (r request) String() string {
	return fmt.Sprintf("%s %s type %q encoding %q length %d", r.Status, r.URI, r.ContentType, r.Encoding, r.Length)
}

// requests returns the requests nginx logged for uri once it has logged
// count, failing the test when it does not within a minute.
func (n *nginxd) requests(uri string, count int) []request {
	n.t.Helper()
	return n.until(uri, fmt.Sprintf("%d requests", count), func(got []request) bool { return len(got) >= count })
}

// bodies returns the requests nginx logged for uri once their bodies add
// up to size bytes.
func (n *nginxd) bodies(uri string, size int) []request {
	n.t.Helper()
	return n.until(uri, fmt.Sprintf("%d bytes of bodies", size), func(got []request) bool {
		sum := 0
		for _, r := range got {
			sum += len(r.Body)
		}
		return sum >= size
	})
}

func (n *nginxd) until(uri, what string, done func([]request) bool) []request {
	n.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := n.read(uri)
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nginx did not log %s for %s in a minute, but %d requests\n%s", what, uri, len(got), n.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *nginxd) read(uri string) []request {
	n.t.Helper()
	b, err := os.ReadFile(n.path("logs/access.log"))
	if err != nil && !os.IsNotExist(err) {
		n.t.Fatal(err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var got []request
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || f[1] != uri {
			continue
		}
		unset := func(s string) string { // nginx writes "-" for a header not sent
			if s = strings.Trim(s, `"`); s == "-" {
				return ""
			}
			return s
		}
		r := request{Status: f[0], URI: f[1], ContentType: unset(f[3]), Encoding: unset(f[4])}
		r.Length, _ = strconv.Atoi(f[5])
		if f[2] != "-" {
			if r.Body, err = os.ReadFile(f[2]); err != nil {
				n.t.Fatal(err)
			}
			if r.Encoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(r.Body))
				if err != nil {
					n.t.Fatalf("%s: not gzip: %v", f[2], err)
				}
				if r.Body, err = io.ReadAll(zr); err != nil {
					n.t.Fatalf("%s: broken gzip: %v", f[2], err)
				}
			}
		}
		got = append(got, r)
	}
	return got
}
