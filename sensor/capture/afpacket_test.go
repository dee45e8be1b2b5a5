//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/afpacket"
	"github.com/outflow-sensor/outflow/internal/shared"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestCompileFilter: libpcap's program for an expression accepts and rejects
// what the expression says, run through golang.org/x/net/bpf's VM on real
// frames from the bundled capture.
func TestCompileFilter(t *testing.T) {
	prog, err := CompileFilter("tcp port 9443")
	if err != nil || len(prog) == 0 {
		t.Fatalf("compile: %v (%d instructions)", err, len(prog))
	}
	insns := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		insns[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile("../../pcaps/outflow-demo.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var p Packet
	matched, total := 0, 0
	for src.Next(&p) == nil {
		total++
		n, err := vm.Run(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			matched++
		}
	}
	// tshark counts the same frames with its own filter engine.
	if _, err := exec.LookPath("tshark"); err != nil {
		shared.Missing(t, "tshark", err)
	}
	out, err := exec.Command("tshark", "-r", "../../pcaps/outflow-demo.pcap", "-Y", "tcp.port==9443", "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Count(string(out), "\n"); matched != want || matched == 0 || matched == total {
		t.Errorf("filter matched %d of %d frames, tshark %d", matched, total, want)
	}
	if _, err := CompileFilter("tcp port nonsense"); err == nil {
		t.Error("a bad expression compiled")
	}
}

// TestOpenAFPacketGroup opens a fanout group of four sockets on the
// loopback interface of a network namespace made for the test while UDP
// datagrams of 64 flows stream through it, then reads every socket: each
// flow must show up on exactly one socket, and every frame must match the
// filter, from the first frame on. The same is done with the sockets opened
// one by one (open, join, set the filter), the order that split flows between
// workers; what that order gets is logged, not asserted, since it depends
// on timing.
func TestOpenAFPacketGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		shared.Missing(t, "root (network namespaces and AF_PACKET)", errors.New("not running as root"))
	}
	if _, err := exec.LookPath("ip"); err != nil {
		shared.Missing(t, "ip (Debian package iproute2)", err)
	}
	filter, err := CompileFilter("udp dst port 9999")
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	for _, c := range []struct {
		name string
		open func() ([]*AFPacketSource, error)
	}{
		{"group", func() ([]*AFPacketSource, error) {
			return OpenAFPacketGroup(AFPacketConfig{Interface: "lo", FanoutGroup: 7, Filter: filter}, workers)
		}},
		{"one-by-one", func() ([]*AFPacketSource, error) { return openOneByOne("lo", 7, filter, workers) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := fmt.Sprintf("ofsplit-u%d", os.Getpid()%100000)
			if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
				t.Fatalf("ip netns add: %v: %s", err, out)
			}
			t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
			if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
				t.Fatalf("ip link set lo up: %v: %s", err, out)
			}
			var (
				srcs    []*AFPacketSource
				conns   []*net.UDPConn
				openErr error
			)
			stop := make(chan struct{})
			var senders sync.WaitGroup
			inNetns(t, ns, func() error {
				// Two receivers: the filter keeps one's traffic, not the
				// other's.
				for _, port := range []int{9999, 9998} {
					c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
					if err != nil {
						return err
					}
					conns = append(conns, c)
					go func() {
						buf := make([]byte, 2048)
						for {
							if _, _, err := c.ReadFromUDP(buf); err != nil {
								return
							}
						}
					}()
				}
				var out []*net.UDPConn
				for i := range 64 {
					c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9998 + i%2})
					if err != nil {
						return err
					}
					out = append(out, c)
				}
				conns = append(conns, out...)
				senders.Add(1)
				go func() {
					defer senders.Done()
					msg := make([]byte, 100)
					for {
						select {
						case <-stop:
							return
						default:
						}
						for _, c := range out {
							c.Write(msg)
						}
						time.Sleep(time.Millisecond)
					}
				}()
				time.Sleep(50 * time.Millisecond)
				// Sockets open while the flows stream.
				srcs, openErr = c.open()
				return nil
			})
			defer func() {
				close(stop)
				senders.Wait()
				for _, c := range conns {
					c.Close()
				}
				for _, s := range srcs {
					s.Close()
				}
			}()
			if openErr != nil {
				t.Fatal(openErr)
			}
			// Read every socket for a while.
			seen := make([][]udpPorts, len(srcs))
			var readers sync.WaitGroup
			deadline := time.Now().Add(400 * time.Millisecond)
			for i, s := range srcs {
				readers.Add(1)
				go func() {
					defer readers.Done()
					var p Packet
					for time.Now().Before(deadline) {
						if err := s.Next(&p); err != nil {
							continue
						}
						seen[i] = append(seen[i], parseUDP(p.Data))
					}
				}()
			}
			readers.Wait()
			owners := map[uint16]map[int]bool{} // flow (source port) -> sockets
			unfiltered, frames, used := 0, 0, 0
			for i := range seen {
				if len(seen[i]) > 0 {
					used++
				}
				for _, f := range seen[i] {
					frames++
					if !f.ok || f.dport != 9999 {
						unfiltered++
						continue
					}
					if owners[f.sport] == nil {
						owners[f.sport] = map[int]bool{}
					}
					owners[f.sport][i] = true
				}
			}
			split := 0
			for _, o := range owners {
				if len(o) > 1 {
					split++
				}
			}
			var discarded uint64
			for _, s := range srcs {
				st, err := s.Stats()
				if err != nil {
					t.Fatal(err)
				}
				discarded += st.Discarded
			}
			t.Logf("%s: %d frames on %d sockets, %d flows; %d flows on two sockets, %d frames the filter should have refused; %d discarded at start-up",
				c.name, frames, used, len(owners), split, unfiltered, discarded)
			if c.name != "group" {
				return
			}
			if split > 0 || unfiltered > 0 {
				t.Errorf("%d flows on two sockets, %d frames the filter should have refused", split, unfiltered)
			}
			if len(owners) != 32 || used < 2 {
				t.Errorf("%d flows to port 9999 seen (want 32), spread over %d sockets", len(owners), used)
			}
		})
	}
}

// openOneByOne opens sockets as Live did before OpenAFPacketGroup: each is
// opened, joins the group and gets its filter before the next is opened.
func openOneByOne(iface string, group uint16, filter []bpf.RawInstruction, n int) ([]*AFPacketSource, error) {
	var srcs []*AFPacketSource
	for range n {
		tp, err := afpacket.NewTPacket(afpacket.OptInterface(iface), afpacket.TPacketVersion3,
			afpacket.OptPollTimeout(100*time.Millisecond))
		if err != nil {
			return srcs, err
		}
		srcs = append(srcs, &AFPacketSource{tp: tp, iface: iface})
		if err := tp.SetFanout(afpacket.FanoutHashWithDefrag, group); err != nil {
			return srcs, err
		}
		if err := tp.SetBPF(filter); err != nil {
			return srcs, err
		}
	}
	return srcs, nil
}

// inNetns runs f on an OS thread that has entered the named network
// namespace; sockets f opens stay in it.
func inNetns(t *testing.T, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return // the thread ends with the goroutine, locked
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, err)
			return // leave the thread locked: it dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

type udpPorts struct {
	sport, dport uint16
	ok           bool // an IPv4 UDP datagram
}

// parseUDP reads the ports of an IPv4 UDP datagram in an Ethernet frame.
func parseUDP(b []byte) (f udpPorts) {
	if len(b) < 14+20+8 || b[12] != 0x08 || b[13] != 0x00 || b[14+9] != 17 {
		return f
	}
	ihl := int(b[14]&0xf) * 4
	if len(b) < 14+ihl+8 {
		return f
	}
	u := b[14+ihl:]
	f.sport, f.dport, f.ok = uint16(u[0])<<8|uint16(u[1]), uint16(u[2])<<8|uint16(u[3]), true
	return f
}
