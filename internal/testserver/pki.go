package testserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// PKI is a test CA and the certificates it signed, made by openssl in a
// temporary directory: a server's for 127.0.0.1, ::1 and localhost, and a
// client's. Every field is a PEM file's path.
type PKI struct {
	CA, CAKey             string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	// HostCert is a client certificate of one host, CN
	// workstation6.theshire.local (a host of the OTRF Empire fixture).
	HostCert, HostKey string
	// Other is a CA that signed nothing here, for certificates that
	// must fail to verify.
	Other string
}

// NewPKI makes a PKI with openssl: P-256 keys, valid for two days.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	openssl := Need(t, "openssl")
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	key := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"}
	ca := func(name string) {
		run(append(append([]string{"req", "-x509"}, key...), "-keyout", p(name+".key"), "-out", p(name+".pem"),
			"-days", "3", "-subj", "/CN=outflow test "+name)...)
	}
	leaf := func(name, cn, ext string) {
		run(append(append([]string{"req"}, key...), "-keyout", p(name+".key"), "-out", p(name+".csr"), "-subj", "/CN="+cn)...)
		if err := os.WriteFile(p(name+".ext"), []byte(ext), 0o600); err != nil {
			t.Fatal(err)
		}
		run("x509", "-req", "-in", p(name+".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
			"-out", p(name+".pem"), "-days", "2", "-extfile", p(name+".ext"))
	}
	ca("ca")
	ca("other")
	leaf("server", "localhost", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
	leaf("client", "outflow-sensor", "extendedKeyUsage=clientAuth\n")
	leaf("host", "workstation6.theshire.local", "extendedKeyUsage=clientAuth\n")
	return &PKI{CA: p("ca.pem"), CAKey: p("ca.key"), ServerCert: p("server.pem"), ServerKey: p("server.key"),
		ClientCert: p("client.pem"), ClientKey: p("client.key"), HostCert: p("host.pem"), HostKey: p("host.key"),
		Other: p("other.pem")}
}
