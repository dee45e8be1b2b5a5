// Package tlsfiles builds TLS configurations from the files a user names:
// for a client, a CA to check the server with and a client certificate
// with its key; for a server (the host-event listeners), its certificate
// with its key and a CA its clients' certificates must chain to. The
// syslog, webhook and Kafka sinks, the fleet and the listeners share it,
// so a file is read, checked and worded the same way everywhere.
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
		pool, err := caPool(f.CA)
		if err != nil {
			return nil, err
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

// ServerConfig returns a server's configuration (TLS 1.2 at least) that
// presents Cert with Key and, when CA is given, requires every client to
// present a certificate that chains to it.
func ServerConfig(f Files) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("a TLS server needs both a certificate file and a key file")
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("server certificate %s with key %s: %w", f.Cert, f.Key, fserr.Plain(err))
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if f.CA != "" {
		if c.ClientCAs, err = caPool(f.CA); err != nil {
			return nil, err
		}
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// caPool reads a PEM file of CA certificates.
func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file %s: cannot read it: %w", path, fserr.Plain(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: holds no PEM certificate", path)
	}
	return pool, nil
}
