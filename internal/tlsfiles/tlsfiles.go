// Package tlsfiles builds a client's TLS configuration from the files a
// user names: a CA to check the server with, and a client certificate
// with its key. The syslog, webhook and Kafka sinks and the fleet share
// it, so a file is read, checked and worded the same way everywhere.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// Files are PEM files: CA (default: the system's roots), and Cert with
// Key for servers that ask for a client certificate.
type Files struct {
	CA, Cert, Key string
}

// Config returns base (cloned; nil: Go's defaults with TLS 1.2 at least)
// with the files' CA and client certificate.
func Config(base *tls.Config, f Files) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		c = base.Clone()
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: cannot read it: %w", f.CA, fserr.Plain(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: holds no PEM certificate", f.CA)
		}
		c.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a client certificate needs both a certificate file and a key file")
	}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s with key %s: %w", f.Cert, f.Key, fserr.Plain(err))
		}
		c.Certificates = append(c.Certificates, pair)
	}
	return c, nil
}
