package feed

import (
	"crypto/tls"
	"errors"
	"strings"
)

// ReasonHostNotCertified is an event refused because it claims a host the
// sender's client certificate does not name, on a listener that requires
// client certificates (ca=).
const ReasonHostNotCertified = "host_not_certified"

// certifiedHosts is what a client certificate lets its sender speak for:
// the host names it holds (common name and DNS names, compared as
// ShortHost), or any host when it is one of the listener's relays.
type certifiedHosts struct {
	names map[string]bool
	any   bool
}

// certified reads a verified TLS connection's client certificate against
// the listener's relays; nil when the listener takes no client
// certificates, so every host goes.
func (o *listenOptions) certified(cs *tls.ConnectionState) *certifiedHosts {
	if o.tls == nil || o.tls.ClientCAs == nil || cs == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	c := &certifiedHosts{names: map[string]bool{}}
	for _, n := range append([]string{leaf.Subject.CommonName}, leaf.DNSNames...) {
		if n == "" {
			continue
		}
		if o.relays[strings.ToLower(n)] {
			c.any = true
		}
		c.names[ShortHost(n)] = true
	}
	return c
}

// allows says whether the sender may report events of host.
func (c *certifiedHosts) allows(host string) bool {
	return c == nil || c.any || host != "" && c.names[ShortHost(host)]
}

// guard wraps emit so that events of hosts the certificate does not name
// are refused and counted, not handed on.
func (s *Source) guard(c *certifiedHosts, from string, emit func(*Event), onError func(*Error)) func(*Event) {
	if c == nil || c.any {
		return emit
	}
	return func(e *Event) {
		if c.allows(e.Host) {
			emit(e)
			return
		}
		s.refused(ReasonHostNotCertified, from, errors.New("an event of host "+quoteHost(e.Host)+", which the sender's certificate does not name"), onError)
	}
}

func quoteHost(h string) string {
	if h == "" {
		return "(none)"
	}
	return "\"" + h + "\""
}
