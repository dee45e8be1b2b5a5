package neterr

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestPlain: a refused connection, dialled and through HTTP, is worded as
// the reason alone, with no address and no URL query.
func TestPlain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, derr := net.Dial("tcp", addr)
	_, herr := http.Post("http://"+addr+"/p?key=secret", "text/plain", nil)
	for _, err := range []error{derr, herr} {
		got := Plain(err).Error()
		if got != "connection refused" || strings.Contains(got, "secret") {
			t.Errorf("%v: Plain says %q", err, got)
		}
	}
}
