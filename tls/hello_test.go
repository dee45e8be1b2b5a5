package tls

import (
	ctls "crypto/tls"
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

// clientHelloFrom runs Go's crypto/tls client against a pipe and returns the
// bytes it writes first: a real ClientHello, made by an independent
// implementation from a configuration the test knows.
func clientHelloFrom(t testing.TB, cfg *ctls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	go func() {
		_ = ctls.Client(c, cfg).Handshake()
	}()
	defer c.Close()
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	var stream []byte
	buf := make([]byte, 1<<16)
	for {
		n, err := s.Read(buf)
		stream = append(stream, buf[:n]...)
		if msg, _, st, _ := FirstHandshake(stream, make([]byte, 0, 1<<16)); st == Complete {
			_ = msg
			return stream
		}
		if err != nil {
			t.Fatalf("reading the client's hello: %v (have %d bytes)", err, len(stream))
		}
	}
}

func TestClientHelloFromGo(t *testing.T) {
	cfg := &ctls.Config{
		ServerName:   "files.example-storage.test",
		NextProtos:   []string{"h2", "http/1.1"},
		MinVersion:   ctls.VersionTLS12,
		MaxVersion:   ctls.VersionTLS13,
		CipherSuites: []uint16{ctls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ctls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	}
	stream := clientHelloFrom(t, cfg)
	msg, used, st, err := FirstHandshake(stream, make([]byte, 0, 16<<10))
	if st != Complete || err != nil || used != len(stream) {
		t.Fatalf("FirstHandshake: %v %v used %d of %d", st, err, used, len(stream))
	}
	var h ClientHello
	if err := ParseClientHello(msg, &h); err != nil {
		t.Fatal(err)
	}
	if string(h.SNI) != cfg.ServerName {
		t.Errorf("SNI %q, the client was configured with %q", h.SNI, cfg.ServerName)
	}
	if len(h.ALPN) != 2 || string(h.ALPN[0]) != "h2" || string(h.ALPN[1]) != "http/1.1" {
		t.Errorf("ALPN %q, configured %q", h.ALPN, cfg.NextProtos)
	}
	for _, c := range cfg.CipherSuites {
		if !slices.Contains(h.Ciphers, c) {
			t.Errorf("cipher %#04x configured but not offered: %#04x", c, h.Ciphers)
		}
	}
	if !slices.Contains(h.Versions, 0x0304) || !slices.Contains(h.Versions, 0x0303) || h.Version != 0x0303 {
		t.Errorf("versions %#04x legacy %#04x", h.Versions, h.Version)
	}
	var f Fingerprints
	ja4 := f.JA4(&h, TCP)
	if ja4[:4] != "t13d" || ja4[8:10] != "h2" {
		t.Errorf("JA4 %s: want t13d..h2", ja4)
	}
	s, d := f.JA3(&h)
	if len(d) != 32 || s[:4] != "771," {
		t.Errorf("JA3 %s %s", s, d)
	}
}

// TestTruncatedHellos: every cut of a real hello fails as truncated, never
// panics, and a length that lies about its container is malformed.
func TestTruncatedHellos(t *testing.T) {
	stream := clientHelloFrom(t, &ctls.Config{ServerName: "a.example", NextProtos: []string{"h2"}})
	msg, _, _, _ := FirstHandshake(stream, make([]byte, 0, 16<<10))
	var h ClientHello
	for n := 0; n < len(msg); n++ {
		err := ParseClientHello(msg[:n], &h)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: %v, want truncated", n, len(msg), err)
		}
	}
	bad := slices.Clone(msg)
	// The session_id length byte sits after type(1) len(3) version(2) random(32).
	bad[38] = 0xff
	if err := ParseClientHello(bad, &h); err == nil {
		t.Fatal("a session_id longer than the hello parsed")
	}
	if err := ParseServerHello(msg, &ServerHello{}); !errors.Is(err, ErrNotHello) {
		t.Fatalf("a ClientHello read as ServerHello: %v", err)
	}
	for n := 0; n < len(stream); n++ {
		if _, _, st, _ := FirstHandshake(stream[:n], make([]byte, 0, 16<<10)); st != NeedMore {
			t.Fatalf("record cut at %d: %v, want NeedMore", n, st)
		}
	}
}

// TestSplitRecords: a hello spread over several records, as long
// post-quantum hellos and some middleboxes send it, is gathered whole.
func TestSplitRecords(t *testing.T) {
	stream := clientHelloFrom(t, &ctls.Config{ServerName: "split.example"})
	whole, _, _, _ := FirstHandshake(stream, make([]byte, 0, 16<<10))
	var split []byte
	for rest := whole; len(rest) > 0; {
		n := min(len(rest), 37)
		split = append(split, 22, 3, 1, byte(n>>8), byte(n))
		split = append(split, rest[:n]...)
		rest = rest[n:]
	}
	msg, used, st, err := FirstHandshake(split, make([]byte, 0, 16<<10))
	if st != Complete || err != nil || used != len(split) || string(msg) != string(whole) {
		t.Fatalf("split hello: %v %v used %d of %d", st, err, used, len(split))
	}
	if _, _, st, err := FirstHandshake(split, make([]byte, 0, 100)); st != Failed || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the bound: %v %v", st, err)
	}
}

func TestGREASE(t *testing.T) {
	n := 0
	for v := 0; v < 1<<16; v++ {
		if IsGREASE(uint16(v)) {
			n++
		}
	}
	if n != 16 || !IsGREASE(0x0a0a) || !IsGREASE(0xfafa) || IsGREASE(0x0a1a) {
		t.Fatalf("%d GREASE values, RFC 8701 reserves 16", n)
	}
}

func FuzzClientHello(f *testing.F) {
	stream := clientHelloFrom(f, &ctls.Config{ServerName: "fuzz.example", NextProtos: []string{"h2", "http/1.1"}})
	msg, _, _, _ := FirstHandshake(stream, make([]byte, 0, 16<<10))
	f.Add(msg)
	f.Add(msg[:len(msg)/2])
	f.Add([]byte{1, 0, 0, 0})
	var h ClientHello
	var fp Fingerprints
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := ParseClientHello(b, &h); err == nil {
			fp.JA3(&h)
			fp.JA4(&h, QUIC)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T is not *Error", err)
		}
		b2 := append([]byte{2}, b...)
		var s ServerHello
		if ParseServerHello(b2, &s) == nil {
			fp.JA3S(&s)
		}
	})
}

func FuzzFirstHandshake(f *testing.F) {
	f.Add(clientHelloFrom(f, &ctls.Config{ServerName: "fuzz.example"}))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	scratch := make([]byte, 0, 4096)
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, used, st, _ := FirstHandshake(b, scratch)
		if st == Complete && (used > len(b) || len(msg) < 4) {
			t.Fatalf("complete with used %d of %d, msg %d", used, len(b), len(msg))
		}
	})
}

func BenchmarkParseClientHello(b *testing.B) {
	stream := clientHelloFrom(b, &ctls.Config{ServerName: "bench.example", NextProtos: []string{"h2"}})
	msg, _, _, _ := FirstHandshake(stream, make([]byte, 0, 16<<10))
	var h ClientHello
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseClientHello(msg, &h); err != nil {
			b.Fatal(err)
		}
	}
}
