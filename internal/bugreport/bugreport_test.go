package bugreport

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestFrameReadsBack: a frame's report is a pcap that tshark, an
// independent reader, reads as that frame, with its link type whole (SLL2
// is 276, which gopacket's writer keeps in a byte) and its time; the text
// says where it came from and what failed.
func TestFrameReadsBack(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		shared.Missing(t, "tshark (Debian package tshark)", err)
	}
	d, err := Open(filepath.Join(t.TempDir(), "reports"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// An SLL2 header (20 bytes, protocol IPv4) and an IPv4/UDP datagram.
	frame := []byte{0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 4, 6, 0, 0, 0, 0, 0, 0, 0,
		0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7, 0x13, 0x88, 0, 53, 0, 9, 0, 0, 'x'}
	at := time.Date(2026, 12, 5, 3, 0, 0, 123456789, time.UTC)
	path, err := d.Save(Report{Source: "live capture on eth0", What: "runtime error: index out of range [7] with length 7",
		Stack: []byte("goroutine 7 [running]:\n..."), Input: frame, Frame: true, LinkType: 276, Time: at})
	if err != nil || path == "" {
		t.Fatalf("saved %q, %v", path, err)
	}
	text, _ := os.ReadFile(path)
	for _, want := range []string{"source: live capture on eth0", "failure: runtime error: index out of range", "input: 49 bytes (49 kept)", "goroutine 7"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
	pcap := strings.TrimSuffix(path, ".txt") + ".pcap"
	out, err := exec.Command("tshark", "-r", pcap, "-T", "fields", "-e", "frame.protocols", "-e", "frame.time_epoch", "-e", "udp.dstport").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", pcap, err)
	}
	if got := strings.TrimSpace(string(out)); got != "sll:ethertype:ip:udp:dns\t1796439600.123456789\t53" {
		t.Errorf("tshark reads %q", got)
	}
	if saved, unsaved := d.Counts(); saved != 1 || unsaved != 0 {
		t.Errorf("%d saved, %d not", saved, unsaved)
	}
}

// TestBudget: an input is cut to MaxInput, and once the directory's budget
// is spent nothing more is written, only counted: whoever found the bug
// can send the input again and again.
func TestBudget(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reports")
	d, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xab}, 1<<20)
	var saved int
	for i := 0; i < 100; i++ {
		p, err := d.Save(Report{Source: "flow export from 192.0.2.7", What: "a bug", Input: big})
		if err != nil {
			t.Fatal(err)
		}
		if p != "" {
			saved++
		}
	}
	if want := (1 << 20) / (MaxInput + 200); saved < want-1 || saved > want+1 {
		t.Errorf("%d reports saved, want about %d", saved, want)
	}
	if s, u := d.Counts(); s != uint64(saved) || u != uint64(100-saved) {
		t.Errorf("counts %d and %d, want %d and %d", s, u, saved, 100-saved)
	}
	var total int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fi, _ := e.Info()
		total += fi.Size()
		if strings.HasSuffix(e.Name(), ".bin") && fi.Size() != MaxInput {
			t.Errorf("%s: %d bytes, want the first %d", e.Name(), fi.Size(), MaxInput)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", e.Name(), fi.Mode().Perm())
		}
	}
	if total > 1<<20 {
		t.Errorf("%d bytes written, over the budget", total)
	}
	var nd *Dir
	if p, err := nd.Save(Report{Input: big}); p != "" || err != nil {
		t.Errorf("no directory: %q, %v", p, err)
	}
}
