package dnscache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/sensor"
)

// The evasion lab (pcaps/record-evasion.sh): every name resolves to the
// one server address, as the names of one CDN do, and each program looks
// up its own name just before it connects.
const (
	labPcap    = "../../pcaps/outflow-evasion.pcap"
	labScript  = "../../pcaps/record-evasion.sh"
	labReports = "../../pcaps/reported/"
	labClient  = "10.77.0.2"
	labServer  = "198.51.100.10"
)

// TestEvasionLabNames replays the evasion lab through the sensor and
// checks every flow's server_name against the name its program connected
// to, as the recording script and the programs' own reports say: never a
// name looked up later, however many lookups of other names follow.
func TestEvasionLabNames(t *testing.T) {
	want := labNames(t)
	var out, errs bytes.Buffer
	table := flows.DefaultConfig()
	table.Inspect = flows.DefaultInspectConfig()
	if _, err := sensor.Replay(context.Background(), sensor.ReplayConfig{
		Files: []string{labPcap}, Workers: 2, Table: table, Flows: &out, Errors: &errs,
	}); err != nil {
		t.Fatalf("replay %s: %v\n%s", labPcap, err, errs.String())
	}
	type flow struct {
		Proto      string `json:"proto"`
		OrigH      string `json:"orig_h"`
		OrigP      int    `json:"orig_p"`
		RespH      string `json:"resp_h"`
		RespP      int    `json:"resp_p"`
		ServerName string `json:"server_name"`
	}
	checked := map[string]bool{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var f flow
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("flow line %q: %v", sc.Text(), err)
		}
		if f.OrigH != labClient || f.RespH != labServer || f.RespP == 53 {
			// DNS itself: the client reaches its resolver by the address
			// in resolv.conf, not by a name.
			continue
		}
		k, ok := want.find(f.RespP, f.OrigP)
		if !ok {
			t.Errorf("%s %s:%d -> %s:%d: no program of the script made this flow", f.Proto, f.OrigH, f.OrigP, f.RespH, f.RespP)
			continue
		}
		checked[k] = true
		if f.ServerName != want[k] {
			t.Errorf("%s %s:%d -> %s:%d: server_name %q, the program connected to %s", f.Proto, f.OrigH, f.OrigP,
				f.RespH, f.RespP, f.ServerName, want[k])
		}
	}
	for k, n := range want {
		if !checked[k] {
			t.Errorf("no flow for %s (%s)", n, k)
		}
	}
}

// expected maps "port" or "port/client port" to the name connected to.
type expected map[string]string

func (e expected) find(port, clientPort int) (string, bool) {
	for _, k := range []string{fmt.Sprintf("%d/%d", port, clientPort), strconv.Itoa(port)} {
		if _, ok := e[k]; ok {
			return k, true
		}
	}
	return "", false
}

// labNames reads who connected to what from the recording script and
// the programs' reports.
func labNames(t *testing.T) expected {
	t.Helper()
	script := read(t, labScript)
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^OFF=(\S+) D=(\S+)$`).FindAllStringSubmatch(script, -1) {
		vars["$OFF"], vars["$D"] = m[1], m[2]
	}
	if len(vars) == 0 {
		t.Fatalf("%s: no OFF= D= line", labScript)
	}
	expand := func(s string) string { return strings.NewReplacer("$OFF", vars["$OFF"], "$D", vars["$D"]).Replace(s) }
	want := expected{}
	// raw FILE NAME PORT SOURCEPORT: socat sends a file to NAME:PORT.
	for _, m := range regexp.MustCompile(`(?m)^raw "[^"]+" (\S+) (\d+) \d+$`).FindAllStringSubmatch(script, -1) {
		want[m[2]] = expand(m[1])
	}
	// The one-way UDP stream, stunnel4's client side, lftp (control
	// connection and its passive data port).
	for _, m := range regexp.MustCompile(`"UDP:([^:]+):(\d+)`).FindAllStringSubmatch(script, -1) {
		want[m[2]] = expand(m[1])
	}
	for _, m := range regexp.MustCompile(`(?m)^connect = ([a-z][^:\s]*):(\d+)$`).FindAllStringSubmatch(script, -1) {
		want[m[2]] = expand(m[1])
	}
	m := regexp.MustCompile(`open -u \S+ ftp://([^;\s]+);`).FindStringSubmatch(script)
	p := regexp.MustCompile(`(?m)^pasv_min_port=(\d+)$`).FindStringSubmatch(script)
	if m == nil || p == nil {
		t.Fatalf("%s: no lftp open or vsftpd pasv_min_port", labScript)
	}
	want["21"], want[p[1]] = expand(m[1]), expand(m[1])
	if len(want) != 16 {
		t.Fatalf("%s: %d raw, UDP, stunnel and FTP destinations, want 16: %v", labScript, len(want), want)
	}
	// ssh: sshd logged each session's client port, in the order the
	// script ran them; each ssh -v said what it connected to.
	var ports []string
	for _, m := range regexp.MustCompile(`(?m)^Accepted publickey for \S+ from \S+ port (\d+)`).FindAllStringSubmatch(read(t, labReports+"evasion-sshd.txt"), -1) {
		ports = append(ports, m[1])
	}
	sessions := []string{"scp", "sftp", "rsync", "git", "shell"}
	if len(ports) != len(sessions) {
		t.Fatalf("%sevasion-sshd.txt: %d sessions, the script runs %d", labReports, len(ports), len(sessions))
	}
	for i, s := range sessions {
		m := regexp.MustCompile(`(?m)^debug1: Connecting to (\S+) `).FindStringSubmatch(read(t, labReports+"evasion-ssh-"+s+".txt"))
		if m == nil {
			t.Fatalf("%sevasion-ssh-%s.txt: no Connecting to line", labReports, s)
		}
		want["22/"+ports[i]] = m[1]
	}
	// curl's own report: its local port and the URL.
	var curl struct {
		LocalPort int    `json:"local_port"`
		URL       string `json:"url_effective"`
	}
	if err := json.Unmarshal([]byte(read(t, labReports+"evasion-curl-post-gzip.json")), &curl); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(curl.URL)
	if err != nil || curl.LocalPort == 0 {
		t.Fatalf("%sevasion-curl-post-gzip.json: url %q, local port %d", labReports, curl.URL, curl.LocalPort)
	}
	want[fmt.Sprintf("80/%d", curl.LocalPort)] = u.Hostname()
	// wget said where it connected; the HTTP server logged the GET's port.
	w := regexp.MustCompile(`(?m)^Connecting to (\S+) `).FindStringSubmatch(read(t, labReports+"evasion-wget.txt"))
	g := regexp.MustCompile(`"client": "[^"]+:(\d+)", "method": "GET"`).FindAllStringSubmatch(read(t, labReports+"evasion-servers.jsonl"), -1)
	if w == nil || len(g) != 1 {
		t.Fatalf("%s: wget's connection or its one GET not found", labReports)
	}
	want["80/"+g[0][1]] = w[1]
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k+"="+want[k])
	}
	sort.Strings(keys)
	t.Logf("expected names: %s", strings.Join(keys, " "))
	return want
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the evasion lab's %s is part of the repository: %v", path, err)
	}
	return string(b)
}
