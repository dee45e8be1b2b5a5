package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for loopback signed by the CA, for a server
// or a client, and returns it with its key in PEM.
func (ca *testCA) issue(t testing.TB, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsCluster starts a cluster that speaks only TLS with a certificate of
// ca, and asks for a client certificate signed by clientCA if there is
// one.
func tlsCluster(t testing.TB, ca, clientCA *testCA) *kfake.Cluster {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, x509.ExtKeyUsageServerAuth)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = x509.NewCertPool()
		tc.ClientCAs.AddCert(clientCA.cert)
	}
	return cluster(t, kfake.TLS(tc))
}

// TestTLS: records go over TLS to a broker whose certificate the CA file
// vouches for, and a reader over TLS gets them back; a broker the CA does
// not vouch for is refused at once, saying TLS.
func TestTLS(t *testing.T) {
	ca := newCA(t, "outflow test CA")
	c := tlsCluster(t, ca, nil)
	caFile := writeFile(t, "ca.pem", ca.pem)
	tr := transport(t, dest(c, "tls=1&ca="+caFile))
	recs := records(100, 4)
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send: %d, %v", n, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	if got := consume(t, len(recs), kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(&tls.Config{RootCAs: pool})); len(got) != len(recs) {
		t.Errorf("read %d back", len(got))
	}

	other := writeFile(t, "other.pem", newCA(t, "another CA").pem)
	tr = transport(t, dest(c, "ca="+other))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := tr.Send(ctx, recs)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "TLS: the broker's certificate is not trusted") {
		t.Errorf("untrusted broker: %d, %v", n, err)
	}
}

// TestClientCertificate: a broker that requires a client certificate
// takes one from cert= and key=, and refuses a client without one.
func TestClientCertificate(t *testing.T) {
	ca, clientCA := newCA(t, "broker CA"), newCA(t, "client CA")
	c := tlsCluster(t, ca, clientCA)
	caFile := writeFile(t, "ca.pem", ca.pem)
	certPEM, keyPEM := clientCA.issue(t, x509.ExtKeyUsageClientAuth)
	certFile, keyFile := writeFile(t, "client.pem", certPEM), writeFile(t, "client.key", keyPEM)

	tr := transport(t, dest(c, "ca="+caFile+"&cert="+certFile+"&key="+keyFile))
	recs := records(10, 2)
	if n, err := tr.Send(context.Background(), recs); err != nil || n != len(recs) {
		t.Fatalf("Send: %d, %v", n, err)
	}

	tr = transport(t, dest(c, "ca="+caFile))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := tr.Send(ctx, recs)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "TLS: the broker refused") {
		t.Errorf("no client certificate: %d, %v", n, err)
	}
}
