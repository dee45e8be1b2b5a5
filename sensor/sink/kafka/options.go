package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/internal/fserr"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Bounds of what one client holds for the brokers. Send waits for its
// batch, so only one batch is ever buffered; these keep a huge one (or a
// slow broker) from holding unbounded memory: Produce waits for room.
const (
	maxBufferedRecords = 16384
	maxBufferedBytes   = 32 << 20
)

// maxBatchBytes is the largest record batch produced, Kafka's default
// max.message.bytes (a topic may be set lower or higher). A record that
// cannot fit alone, its value more than maxRecordBytes (the margin is a
// batch's and a record's headers), is refused before it is produced.
const (
	maxBatchBytes  = 1000012
	maxRecordBytes = maxBatchBytes - 256
)

// clientOptions turns c into franz-go options, reading its files (CA,
// client certificate, password) now, so a missing one is a start-up error.
func clientOptions(c Config) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.ClientID(c.ClientID),
		kgo.ProducerBatchCompression(codec(c.Compression)),
		kgo.MaxBufferedRecords(maxBufferedRecords),
		kgo.MaxBufferedBytes(maxBufferedBytes),
		kgo.ProducerBatchMaxBytes(maxBatchBytes),
		// Send waits for its batch's acks; a linger would only delay
		// the batch's last records.
		kgo.ProducerLinger(0),
		// A backstop: Send abandons what is unacknowledged when its
		// context ends, which franz-go can only do for records not yet
		// sent (the idempotent producer must see a reply first).
		kgo.RecordDeliveryTimeout(c.Timeout),
		kgo.ProduceRequestTimeout(min(c.Timeout, 10*time.Second)),
	}
	// The idempotent producer is franz-go's default and is kept: each
	// record carries a sequence number per partition, so a retry inside
	// the client never writes it twice and a partition keeps the order
	// records were produced in. It needs acks from all in-sync replicas.
	if c.Acks == "leader" {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if c.TLS {
		tc, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL != "" {
		m, err := mechanism(c)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.SnappyCompression()
}

// tlsConfig checks brokers against the CA file (or the system's roots)
// and presents the client certificate if there is one. franz-go sets the
// server name to each broker's host.
func tlsConfig(c Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fileError("ca", c.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca=%s: no PEM certificate in the file", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		for k, f := range map[string]string{"cert": c.CertFile, "key": c.KeyFile} {
			if _, err := os.Stat(f); err != nil {
				return nil, fileError(k, f, err)
			}
		}
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert=%s and key=%s are not a PEM certificate and its private key", c.CertFile, c.KeyFile)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism reads the password file and returns the SASL mechanism. The
// password lives only in the mechanism's closure.
func mechanism(c Config) (sasl.Mechanism, error) {
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return nil, fileError("password_file", c.PasswordFile, err)
	}
	pass := strings.TrimRight(string(b), "\r\n")
	if pass == "" {
		return nil, fmt.Errorf("password_file=%s is empty", c.PasswordFile)
	}
	if strings.ContainsAny(pass, "\r\n") {
		return nil, fmt.Errorf("password_file=%s has more than one line", c.PasswordFile)
	}
	switch c.SASL {
	case "plain":
		return plain.Auth{User: c.User, Pass: pass}.AsMechanism(), nil
	case "scram-sha-256":
		return scram.Sha256(func(context.Context) (scram.Auth, error) {
			return scram.Auth{User: c.User, Pass: pass}, nil
		}), nil
	}
	return scram.Sha512(func(context.Context) (scram.Auth, error) {
		return scram.Auth{User: c.User, Pass: pass}, nil
	}), nil
}

// fileError words a file that cannot be read, naming its option.
func fileError(key, path string, err error) error {
	return fmt.Errorf("%s=%s: cannot read it: %w", key, path, fserr.Plain(err))
}

// Security is what a Config asks of the connection: its TLS config (nil
// without tls) and its SASL mechanism (nil without sasl), with the files
// read. The fleet's client, which is not a sink, connects with them.
func (c Config) Security() (*tls.Config, sasl.Mechanism, error) {
	var tc *tls.Config
	var m sasl.Mechanism
	var err error
	if c.TLS {
		if tc, err = tlsConfig(c); err != nil {
			return nil, nil, err
		}
	}
	if c.SASL != "" {
		if m, err = mechanism(c); err != nil {
			return nil, nil, err
		}
	}
	return tc, m, nil
}
