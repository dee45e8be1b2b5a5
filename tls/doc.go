// Package tls finds and parses TLS handshakes in the first bytes of a stream:
// ClientHello and ServerHello, with SNI, ALPN, supported versions, JA3/JA3S
// (through github.com/dreadl0ck/ja3) and the JA4 client fingerprint of
// FoxIO's published specification.
//
// It is a leaf: parsers take borrowed bytes, check every length against the
// buffer, return a typed *Error naming the reason and offset on bad input, and
// never keep the input. Slices in parsed hellos are owned by the hello value
// and reused by the next Parse into it, so a worker parses without allocating.
package tls
