//go:build linux

package capture

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/internal/shared"
	"golang.org/x/net/bpf"
)

// TestCompileFilter: tcpdump's program for an expression accepts and rejects
// what the expression says, run through golang.org/x/net/bpf's VM on real
// frames from the bundled capture.
func TestCompileFilter(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		shared.Missing(t, "tcpdump (Debian package tcpdump)", err)
	}
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
