package feed

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/outflow-sensor/outflow/internal/allowlist"
	"github.com/outflow-sensor/outflow/internal/tlsfiles"
)

// Reasons a listener refuses a sender, counted in Stats.Errors beside the
// reasons a record is skipped.
const (
	ReasonNotAllowed   = "not_allowed"  // a sender outside the allow option's prefixes
	ReasonTLS          = "tls"          // a TLS handshake that failed (no or a wrong client certificate, not TLS)
	ReasonUnauthorized = "unauthorized" // an HTTP request without the bearer token
)

// listenOptions are what a listening source's URL query asks for.
type listenOptions struct {
	tls   *tls.Config    // nil: plain TCP or HTTP
	token *tokenFile     // the bearer token requests must carry; nil: none
	allow []netip.Prefix // empty: every sender
	// relays are client certificate names (lower case) that may send
	// events of any host; other certificates only their own hosts'.
	relays map[string]bool
}

// optionsOf says which query options each listening scheme takes.
var optionsOf = map[string][]string{
	"syslog+udp": {"allow"},
	"syslog+tcp": {"allow"},
	"syslog+tls": {"allow", "cert", "key", "ca", "relays"},
	"http":       {"allow", "token_file"},
	"https":      {"allow", "cert", "key", "ca", "token_file", "relays"},
}

// Listens reports whether a host-event source is a listener (syslog,
// HTTP), which says when it is bound (Source.Ready), and whether it
// listens on UDP, which holds no connections.
func Listens(spec string) (listens, udp bool) {
	u, err := url.Parse(spec)
	if err != nil {
		return false, false
	}
	_, listens = optionsOf[u.Scheme]
	return listens, u.Scheme == "syslog+udp"
}

// parseListenOptions reads a listening source's options, and the files they
// name, into what the listener enforces. Its errors are sentences naming
// the option.
func parseListenOptions(u *url.URL) (listenOptions, error) {
	var o listenOptions
	known := optionsOf[u.Scheme]
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return o, errors.New("the options after '?' do not parse as key=value&key=value")
	}
	get := map[string]string{}
	for k, v := range q {
		if !contains(known, k) {
			return o, fmt.Errorf("option %s: %s takes none of that name; it takes %s", k, u.Scheme, strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return o, fmt.Errorf("option %s: give it once", k)
		}
		if v[0] == "" {
			return o, fmt.Errorf("option %s: give it a value", k)
		}
		get[k] = v[0]
	}
	if a, ok := get["allow"]; ok {
		if o.allow, err = parseAllow(a); err != nil {
			return o, err
		}
	}
	if tf, ok := get["token_file"]; ok {
		if o.token, err = loadToken(tf); err != nil {
			return o, err
		}
	}
	if u.Scheme == "syslog+tls" || u.Scheme == "https" {
		if get["cert"] == "" || get["key"] == "" {
			return o, fmt.Errorf("options cert and key: %s needs both, the server's certificate and its key", u.Scheme)
		}
		o.tls, err = tlsfiles.ServerConfig(tlsfiles.Files{CA: get["ca"], Cert: get["cert"], Key: get["key"]})
		if err != nil {
			return o, fmt.Errorf("options cert, key and ca: %w", err)
		}
	}
	if r, ok := get["relays"]; ok {
		if get["ca"] == "" {
			return o, errors.New("option relays: it names client certificates, so it needs ca= to require them")
		}
		o.relays = map[string]bool{}
		for _, n := range strings.Split(r, ",") {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
				o.relays[n] = true
			}
		}
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parseAllow reads the allow option: prefixes (10.0.0.0/8) or single
// addresses, separated by commas.
func parseAllow(s string) ([]netip.Prefix, error) { return allowlist.Parse(s) }

// allowed says whether a sender's address is in the allow list (always,
// with no list). An IPv4 sender on a dual-stack socket arrives as
// ::ffff:a.b.c.d and is matched as a.b.c.d.
func (o *listenOptions) allowed(addr net.Addr) bool {
	if len(o.allow) == 0 {
		return true
	}
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range o.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// authorized says whether an Authorization header carries the bearer
// token, comparing digests in constant time so that neither the token's
// bytes nor its length show in the answer's timing.
func (o *listenOptions) authorized(header string) bool {
	if o.token == nil {
		return true
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := o.token.current()
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// refused counts a sender refused for reason and reports it.
func (s *Source) refused(reason, from string, err error, onError func(*Error)) {
	s.count(&Error{Source: s.URL + " from " + from, Reason: reason, Err: err}, onError)
}

// count counts e against the source, by its reason, and hands it to
// onError: what the source refused or failed on outside a record.
func (s *Source) count(e *Error, onError func(*Error)) {
	s.mu.Lock()
	if s.stats.Errors == nil {
		s.stats.Errors = map[string]uint64{}
	}
	s.stats.Errors[e.Reason]++
	s.mu.Unlock()
	if onError != nil {
		onError(e)
	}
}

// allowListener closes, and counts, connections from senders outside the
// allow list as it accepts them, so they cost nothing more and never take
// one of MaxConns' places.
type allowListener struct {
	net.Listener
	opts    *listenOptions
	src     *Source
	onError func(*Error)
}

func (l allowListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.opts.allowed(c.RemoteAddr()) {
			return c, err
		}
		from := c.RemoteAddr().String()
		c.Close()
		l.src.refused(ReasonNotAllowed, from, errors.New("sender outside the allow list; connection closed"), l.onError)
	}
}

// handshakeErrors takes what net/http logs about its connections: a TLS
// handshake that failed is a refused sender, counted as ReasonTLS; the
// rest is reported as it is.
type handshakeErrors struct {
	src     *Source
	onError func(*Error)
}

func (h handshakeErrors) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	const prefix = "http: TLS handshake error from "
	if rest, ok := strings.CutPrefix(msg, prefix); ok {
		from, why, _ := strings.Cut(rest, ": ")
		h.src.refused(ReasonTLS, from, errors.New(why), h.onError)
	} else if h.onError != nil {
		h.onError(&Error{Source: h.src.URL, Reason: "http", Err: errors.New(msg)})
	}
	return len(p), nil
}
