package webhook

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/internal/fserr"
	"github.com/outflow-sensor/outflow/internal/neterr"
	"github.com/outflow-sensor/outflow/internal/tlsfiles"
)

// Config says where a Transport POSTs and how.
type Config struct {
	// URL is the receiver: https://HOST[:PORT]/PATH[?QUERY], or http://.
	// Its query is sent as it is but never shown (it may hold a key); a
	// user or password in it is refused: give them as below.
	URL string
	// TokenFile holds a bearer token (surrounding white space dropped),
	// sent as "Authorization: Bearer TOKEN". Or User and PasswordFile
	// (its one line, the line end dropped) for basic authentication. New
	// reads the files; a changed token takes a new Transport.
	TokenFile    string
	User         string
	PasswordFile string
	// CAFile, CertFile and KeyFile are PEM files for https: the CA that
	// signs the receiver's certificate (default: the system's roots) and
	// a client certificate, for receivers that ask for one.
	CAFile, CertFile, KeyFile string
	// TLS is the base TLS configuration, cloned; the files above are
	// added to it. Nil is Go's defaults with TLS 1.2 at least.
	TLS *tls.Config
	// Gzip compresses each POST's body (Content-Encoding: gzip), at the
	// fastest level: JSON lines shrink several times for little CPU.
	Gzip bool
	// MaxBatchBytes bounds one POST's body before compression (default
	// 1 MiB); a Send of more is several POSTs. A record longer than it
	// goes alone.
	MaxBatchBytes int
	// Timeout bounds one POST, from connecting to the end of the answer
	// (default 30 s); the Send's context bounds it too.
	Timeout time.Duration
	// Log receives the warning that records leave unencrypted, for an
	// http:// URL whose host is not loopback (default: discarded).
	Log *slog.Logger
}

// ParseURL returns the Config of a webhook URL, https://HOST[:PORT]/PATH
// or http://HOST[:PORT]/PATH, after the checks New makes of it. The rest
// of the Config (authentication, CA, gzip) is set by the caller.
func ParseURL(s string) (Config, error) {
	if _, _, err := checkURL(s); err != nil {
		return Config{}, err
	}
	return Config{URL: s}, nil
}

// checkURL checks a webhook URL and returns it parsed, with its name: the
// URL without its query, which may hold a secret.
func checkURL(s string) (*url.URL, string, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error would repeat the URL, secrets and all.
		return nil, "", fmt.Errorf("webhook URL: cannot parse it: %v", neterr.Plain(err))
	}
	name := redact(u)
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, "", fmt.Errorf("webhook URL %q: scheme %q: want https or http", name, u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, "", fmt.Errorf("webhook URL %q: give the receiver as %s://HOST[:PORT]/PATH", name, u.Scheme)
	case u.User != nil:
		return nil, "", fmt.Errorf("webhook URL %q: a user or password in the URL would show wherever it does: give User and PasswordFile", name)
	case u.Hostname() == "":
		return nil, "", fmt.Errorf("webhook URL %q: give a host", name)
	case u.Fragment != "":
		return nil, "", fmt.Errorf("webhook URL %q: fragment: a webhook URL has none", name)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Errorf("webhook URL %q: port %q: want 1-65535", name, p)
		}
	}
	return u, name, nil
}

// redact is u without its user and its query: what may be shown.
func redact(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	if u.RawQuery != "" || u.ForceQuery {
		return r.String() + "?…"
	}
	return r.String()
}

// loopback says whether host is this machine, so plain http stays in it.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorization reads the configured secret and returns the value of the
// Authorization header, "" without one.
func authorization(cfg Config) (string, error) {
	switch {
	case cfg.TokenFile != "" && (cfg.User != "" || cfg.PasswordFile != ""):
		return "", fmt.Errorf("give a TokenFile or a User and PasswordFile, not both")
	case cfg.TokenFile != "":
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return "", fmt.Errorf("token file %s: cannot read it: %w", cfg.TokenFile, fserr.Plain(err))
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("token file %s: holds no token", cfg.TokenFile)
		}
		// RFC 6750's token68: visible US-ASCII; never quote the token.
		for _, c := range []byte(tok) {
			if c < 0x21 || c > 0x7e {
				return "", fmt.Errorf("token file %s: the token holds a character a header cannot carry (space, control or non-ASCII)", cfg.TokenFile)
			}
		}
		return "Bearer " + tok, nil
	case cfg.User != "" || cfg.PasswordFile != "":
		if cfg.User == "" || cfg.PasswordFile == "" {
			return "", fmt.Errorf("basic authentication needs both User and PasswordFile")
		}
		if strings.ContainsAny(cfg.User, ":\r\n") {
			return "", fmt.Errorf("user %q: a basic-authentication user has no colon or line end", cfg.User)
		}
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("password file %s: cannot read it: %w", cfg.PasswordFile, fserr.Plain(err))
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if strings.ContainsAny(pw, "\r\n") {
			return "", fmt.Errorf("password file %s: holds more than one line", cfg.PasswordFile)
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+pw)), nil
	}
	return "", nil
}

// tlsConfig is cfg.TLS with the CA and the client certificate of cfg's
// files.
func tlsConfig(cfg Config) (*tls.Config, error) {
	return tlsfiles.Config(cfg.TLS, tlsfiles.Files{CA: cfg.CAFile, Cert: cfg.CertFile, Key: cfg.KeyFile})
}
