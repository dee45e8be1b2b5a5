//go:build linux

package capture

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
	"golang.org/x/net/bpf"
)

// TestCompileFilterTable: CompileFilter, which calls libpcap in this
// process, gives for each valid expression the very program `tcpdump -ddd
// -y EN10MB EXPR` prints, and for each bad one a single plain sentence that
// names the expression and gives libpcap's reason, the one tcpdump prints.
func TestCompileFilterTable(t *testing.T) {
	valid := []string{
		"tcp port 9443",
		"udp",
		"icmp or icmp6",
		"host 192.0.2.1",
		"src net 10.0.0.0/8 and not dst port 22",
		"vlan and tcp",
		"vlan 100 and udp port 53",
		"ip6 and tcp dst port 443",
		"tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
		"ether host 00:11:22:33:44:55",
		"ether broadcast or ether multicast",
		"portrange 1000-2000",
		"greater 1000",
		"ip proto 47",
		"(tcp or udp) and not host 198.51.100.7",
		"ip[6:2] & 0x1fff != 0",
		"mpls and ip",
		"  tcp  ",
	}
	bad := []struct {
		expr   string
		reason string // libpcap's words
		same   bool   // tcpdump -ddd fails with the same words
	}{
		{"tcp port nonsense", "unknown port 'nonsense'", true},
		{"tcp port 99999", "illegal port number 99999 > 65535", true},
		{"host", "syntax error", true},
		{"(tcp", "syntax error", true},
		{"net 10.0.0.1/8", `non-network bits set in "10.0.0.1/8"`, true},
		{"vlan 5000", "VLAN tag 5000 greater than maximum 4095", true},
		{"ether host zz:zz", "unknown ether host 'zz'", true},
		// A dead handle has no interface to ask for a netmask. tcpdump
		// -ddd compiles it with a netmask of 0, which tests only for
		// 255.255.255.255 and 0.0.0.0; refusing is more honest.
		{"ip broadcast", "netmask not known, so 'ip broadcast' not supported", false},
	}
	for _, c := range bad {
		t.Run("bad/"+c.expr, func(t *testing.T) {
			prog, err := CompileFilter(c.expr)
			if err == nil {
				t.Fatalf("compiled to %d instructions", len(prog))
			}
			msg := err.Error()
			want := "the filter " + strconv.Quote(c.expr) + " is not valid: " + c.reason
			if msg != want {
				t.Errorf("error %q, want %q", msg, want)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, internal := range []string{"pcap.", "gopacket", "exit status", "%!", "<nil>", "errors."} {
				if strings.Contains(msg, internal) {
					t.Errorf("error shows Go internals (%s): %q", internal, msg)
				}
			}
			if !c.same {
				return
			}
			if _, err := exec.LookPath("tcpdump"); err != nil {
				shared.Missing(t, "tcpdump (Debian package tcpdump)", err)
			}
			out, err := exec.Command("tcpdump", "-ddd", "-y", "EN10MB", c.expr).CombinedOutput()
			if err == nil {
				t.Fatalf("tcpdump compiled it:\n%s", out)
			}
			if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, c.reason) {
				t.Errorf("tcpdump says %q, CompileFilter %q", got, c.reason)
			}
		})
	}
	for _, expr := range valid {
		t.Run("valid/"+expr, func(t *testing.T) {
			prog, err := CompileFilter(expr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := exec.LookPath("tcpdump"); err != nil {
				shared.Missing(t, "tcpdump (Debian package tcpdump)", err)
			}
			want := tcpdumpProgram(t, expr)
			if len(prog) != len(want) {
				t.Fatalf("%d instructions, tcpdump %d", len(prog), len(want))
			}
			for i := range want {
				if prog[i] != want[i] {
					t.Errorf("instruction %d: %+v, tcpdump %+v", i, prog[i], want[i])
				}
			}
		})
	}
	for _, expr := range []string{"", "   ", "\t\n"} {
		if prog, err := CompileFilter(expr); prog != nil || err != nil {
			t.Errorf("%q: %d instructions, %v; want no program and no error", expr, len(prog), err)
		}
	}
}

// tcpdumpProgram reads what `tcpdump -ddd` prints: the number of
// instructions, then one instruction a line as four decimal numbers.
func tcpdumpProgram(t *testing.T, expr string) []bpf.RawInstruction {
	t.Helper()
	out, err := exec.Command("tcpdump", "-ddd", "-y", "EN10MB", expr).Output()
	if err != nil {
		t.Fatalf("tcpdump -ddd %q: %v", expr, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		t.Fatalf("tcpdump -ddd %q: no output", expr)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || len(f) != 1+4*n {
		t.Fatalf("tcpdump -ddd %q: unexpected output %q", expr, out)
	}
	prog := make([]bpf.RawInstruction, n)
	for i := range prog {
		var v [4]uint64
		for j := range v {
			if v[j], err = strconv.ParseUint(f[1+4*i+j], 10, 32); err != nil {
				t.Fatalf("tcpdump -ddd %q: %v", expr, err)
			}
		}
		prog[i] = bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return prog
}
