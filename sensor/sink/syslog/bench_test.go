package syslog

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/outflow-sensor/outflow/internal/testserver"
)

// discard is a loopback receiver that reads and drops what it gets; it
// returns the address to send to.
func discard(b *testing.B, network string, p *testserver.PKI) string {
	b.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		go func() {
			buf := make([]byte, 1<<16)
			for {
				if _, err := c.Read(buf); err != nil { // Read allocates no address
					return
				}
			}
		}()
		return c.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if network == "tls" {
		pair, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
		if err != nil {
			b.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}})
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// Records per second over loopback, 100 records of about 400 bytes a
// Send, against receivers that read as fast as they can.
func BenchmarkSend(b *testing.B) {
	recs := records("b", 100, 300)
	size := 0
	for _, r := range recs {
		size += len(r.Value)
	}
	p := testserver.NewPKI(b)
	for _, network := range []string{"udp", "tcp", "tls"} {
		b.Run(network, func(b *testing.B) {
			tr := mustNew(b, Config{Network: network, Addr: discard(b, network, p), CAFile: map[bool]string{true: p.CA}[network == "tls"]})
			ctx := context.Background()
			if _, err := tr.Send(ctx, recs); err != nil { // connected before the clock starts
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := tr.Send(ctx, recs); err != nil || n != len(recs) {
					b.Fatalf("%d: %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
