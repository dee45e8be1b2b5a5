package feed

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestSockaddrGolden: every SOCKADDR record of go-libaudit's auparse test
// log decodes to the family, address, port or path its golden file gives.
func TestSockaddrGolden(t *testing.T) {
	raw, err := os.ReadFile(shared.Path(t, "hostlogs/go-libaudit/auparse_testdata_audit-rhel7.log.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var golden []struct {
		RecordType string            `json:"record_type"`
		RawMsg     string            `json:"raw_msg"`
		Data       map[string]string `json:"data"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	saddr := regexp.MustCompile(`saddr=([0-9A-F]+)`)
	n := 0
	for _, g := range golden {
		if g.RecordType != "sockaddr" {
			continue
		}
		m := saddr.FindStringSubmatch(g.RawMsg)
		if m == nil {
			t.Fatalf("no saddr in %q", g.RawMsg)
		}
		s, err := DecodeSockaddr(m[1])
		if err != nil {
			t.Errorf("%s: %v", m[1], err)
			continue
		}
		n++
		if s.Family != g.Data["family"] {
			t.Errorf("%s: family %s, golden %s", m[1], s.Family, g.Data["family"])
		}
		if a := g.Data["addr"]; a != "" && s.Addr.String() != a {
			t.Errorf("%s: addr %s, golden %s", m[1], s.Addr, a)
		}
		if p := g.Data["port"]; p != "" && itoa(int(s.Port)) != p {
			t.Errorf("%s: port %d, golden %s", m[1], s.Port, p)
		}
		if p := g.Data["path"]; p != "" && s.Path != p {
			t.Errorf("%s: path %q, golden %q", m[1], s.Path, p)
		}
	}
	if n < 5 {
		t.Fatalf("%d sockaddr records", n)
	}
}

func itoa(v int) string { b, _ := json.Marshal(v); return string(b) }

// TestAucoalesceConnects: go-libaudit's coalesced events for the connect
// and accept syscalls (aucoalesce test data, raw records in YAML, golden
// JSON): the same remote address and port, direction, pid and executable.
func TestAucoalesceConnects(t *testing.T) {
	checked := 0
	for _, name := range []string{"ubuntu-16.10-linux-4.8.0", "ubuntu-17.04-linux-4.10.0"} {
		dir := shared.Path(t, "hostlogs/go-libaudit")
		raw, err := os.ReadFile(filepath.Join(dir, "aucoalesce_testdata_"+name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var tests struct {
			Tests map[string]string `yaml:"tests"`
		}
		if err := yaml.Unmarshal(raw, &tests); err != nil {
			t.Fatal(err)
		}
		graw, err := os.ReadFile(filepath.Join(dir, "aucoalesce_testdata_"+name+".json.golden"))
		if err != nil {
			t.Fatal(err)
		}
		var golden []struct {
			TestName string `json:"test_name"`
			Event    struct {
				Data    map[string]string `json:"data"`
				Process struct {
					PID string `json:"pid"`
					Exe string `json:"exe"`
				} `json:"process"`
			} `json:"event"`
		}
		if err := json.Unmarshal(graw, &golden); err != nil {
			t.Fatal(err)
		}
		for _, g := range golden {
			sys := g.Event.Data["syscall"]
			if g.Event.Data["socket_addr"] == "" || (sys != "connect" && sys != "accept") {
				continue
			}
			var evs []Event
			r := NewReader(g.TestName)
			if err := r.Read(strings.NewReader(tests.Tests[g.TestName]), func(e *Event) { evs = append(evs, *e) }); err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Kind != KindConnect {
				t.Errorf("%s/%s: events %+v", name, g.TestName, evs)
				continue
			}
			e := evs[0]
			addr, port := e.Remote()
			if addr.String() != g.Event.Data["socket_addr"] || itoa(int(port)) != g.Event.Data["socket_port"] ||
				e.Initiated != (sys == "connect") || itoa(int(e.PID)) != g.Event.Process.PID || e.Image != g.Event.Process.Exe {
				t.Errorf("%s/%s: %s:%d initiated %v pid %d exe %s; golden %v pid %s exe %s", name, g.TestName, addr, port,
					e.Initiated, e.PID, e.Image, g.Event.Data, g.Event.Process.PID, g.Event.Process.Exe)
			}
			checked++
		}
	}
	if checked < 2 {
		t.Errorf("%d connect and accept events checked; the golden files have 2", checked)
	}
}
