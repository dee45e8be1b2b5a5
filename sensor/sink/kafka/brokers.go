package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerErrors watches the client's connections for what its records'
// errors do not say: franz-go retries a broker it cannot reach or log in
// to until the records time out. It keeps the last connection error, to
// explain a timeout, and stops a Send at once on one that retrying will
// not cure: refused SASL credentials, a TLS certificate either side
// rejects.
type brokerErrors struct {
	user string // the SASL user, for the sentence; "" without SASL

	mu    sync.Mutex
	last  error
	fatal error
	stop  chan struct{} // closed at the first fatal error since reset
}

var (
	_ kgo.HookBrokerConnect = (*brokerErrors)(nil)
	_ kgo.HookBrokerE2E     = (*brokerErrors)(nil)
)

// reset starts a Send: earlier errors are forgotten, and the channel
// returned is closed at the first fatal one.
func (h *brokerErrors) reset() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.fatal, h.stop = nil, nil, make(chan struct{})
	return h.stop
}

// lastErr is the last connection error since reset.
func (h *brokerErrors) lastErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// fatalErr is the first fatal connection error since reset, in a sentence.
func (h *brokerErrors) fatalErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fatal
}

func (h *brokerErrors) note(err, fatal error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = err
	if fatal != nil && h.fatal == nil && h.stop != nil {
		h.fatal = fatal
		close(h.stop)
	}
}

// OnBrokerConnect is franz-go's hook, called after each connection
// attempt, which includes the TLS handshake and SASL.
func (h *brokerErrors) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.note(err, h.classify(-1, err))
	}
}

// OnBrokerE2E is franz-go's hook, called after each request; it tells
// which request a connection failed in.
func (h *brokerErrors) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if err := e2e.Err(); err != nil {
		h.note(err, h.classify(key, err))
	}
}

// classify returns the sentence of an error no retry will cure, or nil.
// key is the request it happened in, -1 when unknown.
func (h *brokerErrors) classify(key int16, err error) error {
	if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState) {
		return fmt.Errorf("SASL login as user %q was refused: %w", h.user, err)
	}
	// A broker that only hangs up mid-authentication (as some do on a
	// wrong password) says no more than that.
	sasl := key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate)
	if sasl && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)) {
		return &sendError{fmt.Sprintf("SASL login as user %q failed: the broker closed the connection (a wrong user or password?)", h.user), err}
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return fmt.Errorf("TLS: the broker's certificate is not trusted (give its CA with ca=): %w", err)
	}
	// crypto/tls reports an alert from the peer as a net.OpError with
	// this Op: the broker refused the handshake, our certificate most
	// often.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return fmt.Errorf("TLS: the broker refused the connection (is our client certificate, cert=, one it trusts?): %w", err)
	}
	return nil
}
