//go:build linux

package privdrop

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseStatus: any bytes parse without a panic, and every "Key:" line
// of a real status file is found with its value's fields.
func FuzzParseStatus(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("Uid:\t998\t998\t998\t998\nCapEff:\t0000000000000000\n"))
	f.Add([]byte("Name:\nUid\t1\n:::\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := parseStatus(b)
		for k, v := range m {
			if strings.Contains(k, "\n") || strings.Contains(v, "\t") {
				t.Fatalf("%q: %q", k, v)
			}
		}
	})
}

// TestParseStatus reads this process's status as the kernel writes it and
// compares with what the process knows of itself.
func TestParseStatus(t *testing.T) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	m := parseStatus(b)
	uid := strings.Fields(m["Uid"])
	if len(uid) != 4 || uid[1] != strconv.Itoa(os.Geteuid()) || m["Pid"] != strconv.Itoa(os.Getpid()) {
		t.Errorf("Uid %q Pid %q", m["Uid"], m["Pid"])
	}
}
