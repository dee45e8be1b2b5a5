package tlsfiles

import (
	"crypto/tls"
	"os/exec"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/testserver"
)

// TestServerConfig: openssl s_client completes a handshake with a
// ServerConfig that requires client certificates only when it presents
// one signed by the CA.
func TestServerConfig(t *testing.T) {
	openssl := testserver.Need(t, "openssl")
	pki := testserver.NewPKI(t)
	cfg, err := ServerConfig(Files{CA: pki.CA, Cert: pki.ServerCert, Key: pki.ServerKey})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	results := make(chan error, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			err = c.(*tls.Conn).Handshake()
			c.Write([]byte("hello\n"))
			c.Close()
			results <- err
		}
	}()
	client := func(extra ...string) string {
		args := append([]string{"s_client", "-connect", ln.Addr().String(), "-CAfile", pki.CA, "-verify_return_error"}, extra...)
		cmd := exec.Command(openssl, args...)
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := client("-cert", pki.ClientCert, "-key", pki.ClientKey)
	if err := <-results; err != nil || !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Errorf("with a client certificate: server %v; s_client:\n%s", err, out)
	}
	client()
	if err := <-results; err == nil {
		t.Error("without a client certificate the handshake succeeded")
	}
}

func TestServerConfigErrors(t *testing.T) {
	pki := testserver.NewPKI(t)
	for _, c := range []struct {
		f    Files
		want string
	}{
		{Files{Cert: pki.ServerCert}, "needs both a certificate file and a key file"},
		{Files{Cert: "/missing.pem", Key: pki.ServerKey}, "server certificate /missing.pem with key " + pki.ServerKey + ": no such file"},
		{Files{Cert: pki.ServerCert, Key: pki.ServerKey, CA: pki.ServerKey}, "CA file " + pki.ServerKey + ": holds no PEM certificate"},
	} {
		if _, err := ServerConfig(c.f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
		}
	}
}
