//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outflow-sensor/outflow/internal/synth"
)

// floodCounts is what the floods sent.
type floodCounts struct {
	esxi, forged, longCommands, unfinished, idleOpen, junkSources, templates, garbage, badLines, captures atomic.Int64
}

func (c *floodCounts) String() string {
	return fmt.Sprintf("ESXi lines %d, forged connects %d, 1 MiB command lines %d, unfinished records %d, idle connections open %d, "+
		"junk datagrams from 4096 sources %d, large IPFIX templates %d, garbage datagrams %d, bad POSTed lines %d, hostile captures %d",
		c.esxi.Load(), c.forged.Load(), c.longCommands.Load(), c.unfinished.Load(), c.idleOpen.Load(), c.junkSources.Load(),
		c.templates.Load(), c.garbage.Load(), c.badLines.Load(), c.captures.Load())
}

// startFloods starts every flood; each ends with ctx.
func (s *soak) startFloods(ctx context.Context, wg *sync.WaitGroup) {
	for _, f := range []func(context.Context){s.esxiLines, s.forgedConnects, s.longCommandLines, s.unfinishedRecords,
		s.idleConnections, s.junkFromManySources, s.largeTemplates, s.garbageDatagrams, s.badLinesPost, s.hostileCaptures} {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// esxiLines is row 1: the 41-byte ESXi line that crashed the parser, over
// syslog UDP and TCP, ten times a second.
func (s *soak) esxiLines(ctx context.Context) {
	line := "2026-12-01T10:00:00Z esx1 Hostd:\tstarted"
	u, err := net.Dial("udp", s.syslogUDP)
	if err != nil {
		return
	}
	defer u.Close()
	var t net.Conn
	every(ctx, 100*time.Millisecond, func() {
		u.Write([]byte("<14>" + line))
		if t == nil {
			t, _ = net.Dial("tcp", s.syslogTCP)
		}
		if t != nil {
			if _, err := fmt.Fprintf(t, "<14>%s\n", line); err != nil {
				t.Close()
				t = nil
			}
		}
		s.floods.esxi.Add(2)
	})
	if t != nil {
		t.Close()
	}
}

// post sends a body to the HTTP listener.
func (s *soak) post(body io.Reader) error {
	resp, err := http.Post("http://"+s.web+"/events", "application/x-ndjson", body)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// forgedConnects is row 5: 1.2 million forged connect events over the
// run, a quarter claiming the lab's own host, dated within the lab's
// seconds, for tuples no real flow has.
func (s *soak) forgedConnects(ctx context.Context) {
	const total, batch = 1_200_000, 10_000
	pace := s.o.duration / (total / batch)
	base := time.Date(2026, 12, 1, 10, 59, 18, 0, time.UTC)
	i := 0
	every(ctx, pace, func() {
		if i >= total {
			return
		}
		var b bytes.Buffer
		for range batch {
			host := "vm"
			if i%4 != 0 {
				host = fmt.Sprintf("forged-%02d", i%99)
			}
			fmt.Fprintf(&b, `{"outflow_event":"connect","time":%q,"host":%q,"feed":"procfs","pid":%d,"image":"/usr/bin/forged",`+
				`"command_line":"forged --flood %d","proto":6,"src":"10.77.%d.%d","src_port":%d,"dst":"203.0.113.%d","dst_port":443,"initiated":true,"has_src_port":true}`+"\n",
				base.Add(time.Duration(i%6000)*time.Millisecond).Format(time.RFC3339Nano), host, 20000+i%30000, i,
				1+(i>>8)%250, 1+i%250, 1024+i%60000, 1+i%200)
			i++
		}
		if s.post(&b) == nil {
			s.floods.forged.Add(batch)
		}
	})
}

// longCommandLines is row 6's first part: process starts with 1 MiB
// command lines, 20 every 10 seconds.
func (s *soak) longCommandLines(ctx context.Context) {
	cmd := strings.Repeat("A", 1<<20)
	n := 0
	every(ctx, 10*time.Second, func() {
		var b bytes.Buffer
		for range 20 {
			n++
			fmt.Fprintf(&b, `{"outflow_event":"process_start","time":"2026-12-01T10:59:18Z","host":"forged-cmd","feed":"procfs","pid":%d,"image":"/usr/bin/long","command_line":"%s"}`+"\n", 40000+n, cmd)
		}
		if s.post(&b) == nil {
			s.floods.longCommands.Add(20)
		}
	})
}

// unfinishedRecords is row 6's second part: 100 connections to each TCP
// listener begin a record (a syslog frame announcing 4,000,000 bytes, an
// HTTP body line), send 1 MiB of it and hold; a connection the sensor
// closes (idle for two minutes) is made again.
func (s *soak) unfinishedRecords(ctx context.Context) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				addr, head := s.syslogTCP, "4000000 <13>1 2026-12-01T10:00:00Z h t - - - "
				if i%2 == 1 {
					addr, head = s.web, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					sleep(ctx, time.Second)
					continue
				}
				go func() { <-ctx.Done(); c.Close() }()
				fmt.Fprint(c, head)
				for range 16 {
					if _, err := c.Write(chunk); err != nil {
						break
					}
				}
				s.floods.unfinished.Add(1)
				io.Copy(io.Discard, c) // until the sensor closes it
				c.Close()
			}
		}()
	}
	wg.Wait()
}

// idleConnections is row 6's third part: 20,000 connections that send
// nothing, half to each TCP listener, made again when closed.
func (s *soak) idleConnections(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := s.syslogTCP
			if i%2 == 1 {
				addr = s.web
			}
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
				s.floods.idleOpen.Add(-int64(len(conns)))
			}()
			for ctx.Err() == nil {
				// Drop the ones the sensor closed, and top up to 100.
				live := conns[:0]
				for _, c := range conns {
					c.SetReadDeadline(time.Now().Add(time.Millisecond))
					if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
						c.Close()
						s.floods.idleOpen.Add(-1)
						continue
					}
					live = append(live, c)
				}
				conns = live
				for len(conns) < 100 {
					c, err := net.DialTimeout("tcp", addr, time.Second)
					if err != nil {
						break
					}
					conns = append(conns, c)
					s.floods.idleOpen.Add(1)
				}
				sleep(ctx, 5*time.Second)
			}
		}()
	}
	wg.Wait()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// junkFromManySources is row 7: one datagram of garbage from each of
// 4096 addresses (127.1.0.0/20), every 30 seconds.
func (s *soak) junkFromManySources(ctx context.Context) {
	junk := []byte{0x12, 0x34, 0, 0, 0, 0, 0, 0}
	every(ctx, 30*time.Second, func() {
		for i := range 4096 {
			if sendFrom(fmt.Sprintf("127.1.%d.%d", i>>8, i&0xff), s.nf, [][]byte{junk}) == nil {
				s.floods.junkSources.Add(1)
			}
		}
	})
}

// largeTemplates is row 8: 20 exporters each send 24 IPFIX templates of
// 8000 fields (about 64 KB on the wire, 96 KB held), every 20 seconds,
// with new template ids each time.
func (s *soak) largeTemplates(ctx context.Context) {
	id := uint16(256)
	every(ctx, 20*time.Second, func() {
		for e := range 20 {
			var dgs [][]byte
			for range 24 {
				dgs = append(dgs, synth.IPFIXTemplate(uint32(e), 0, uint32(time.Now().Unix()), id, 8000))
				id++
				if id < 256 {
					id = 256
				}
			}
			if sendFrom(fmt.Sprintf("127.3.0.%d", e+1), s.nf, dgs) == nil {
				s.floods.templates.Add(24)
			}
		}
	})
}

// garbageDatagrams is rows 15 and 16: bad datagrams to the flow
// listener, 2000 a second in bursts, from one sender.
func (s *soak) garbageDatagrams(ctx context.Context) {
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.3.1")}, mustUDP(s.nf))
	if err != nil {
		return
	}
	defer c.Close()
	dg := bytes.Repeat([]byte{0, 9, 0xff, 0xee}, 64) // NetFlow v9, nonsense after
	every(ctx, 100*time.Millisecond, func() {
		for range 200 {
			c.Write(dg)
		}
		s.floods.garbage.Add(200)
	})
}

// badLinesPost is row 16's second part: one POST of 5,000,000 lines that
// are no host event, streamed, once.
func (s *soak) badLinesPost(ctx context.Context) {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		line := []byte("this is not a host event\n")
		for i := 0; i < 5_000_000 && ctx.Err() == nil; i++ {
			if _, err := w.Write(line); err != nil {
				break
			}
			s.floods.badLines.Add(1)
		}
		w.Flush()
		pw.Close()
	}()
	s.post(pr)
}
