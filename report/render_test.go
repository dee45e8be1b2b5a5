package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/record"
)

// hostile are strings an attacker can put in a capture or a host event:
// SNI, HTTP Host, process images, command lines.
var hostile = []string{
	`</script><script>alert(1)</script>`,
	`"><img src=x onerror=alert(2)>`,
	`</SCRIPT ><svg onload=alert(3)>`,
	"<!--<script>\u2028alert(4)//",
	`{{.CSP}}`,
}

// parsed is a page as an HTML5 parser reads it.
type parsed struct {
	scripts  []*html.Node
	elements map[string]int
	csp      string
	text     string
}

func parsePage(t testing.TB, page []byte) parsed {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{elements: map[string]int{}}
	var text strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.ElementNode:
			p.elements[n.Data]++
			if n.Data == "script" {
				p.scripts = append(p.scripts, n)
				return
			}
			for _, a := range n.Attr {
				if a.Key == "http-equiv" && strings.EqualFold(a.Val, "Content-Security-Policy") {
					for _, b := range n.Attr {
						if b.Key == "content" {
							p.csp = b.Val
						}
					}
				}
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("an element <%s> has an event handler %s=%q", n.Data, a.Key, a.Val)
				}
			}
		case html.TextNode:
			text.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	p.text = text.String()
	return p
}

func scriptText(n *html.Node) string {
	if n.FirstChild == nil {
		return ""
	}
	return n.FirstChild.Data
}

// TestHostileStrings: whatever the network says, the page has its three
// scripts and no more, no element an attacker named, the strings show as
// text, and the charts' data reads back exactly.
func TestHostileStrings(t *testing.T) {
	c := New(Config{Sources: []string{hostile[1]}})
	for i, s := range hostile {
		f := flow(i, record.Outbound, "10.0.0.1:40000", "203.0.113.5:443", 1000, 10)
		f.OrigProc, f.Inspection = proc("/tmp/"+s), sni(s)
		c.Record(f)
		c.AddAlert(&detect.Alert{TS: time.Unix(0, t0), ID: s, Analytic: s, Severity: s, Title: s, Confidence: s,
			Host: &detect.AlertHost{IP: s, Name: s}, Process: &detect.AlertProcess{Name: s, Image: s, CommandLine: s},
			Destination: &detect.Destination{Name: s, Service: s},
			Evidence:    detect.Evidence{CommunityIDs: []string{s}, Measured: map[string]any{s: s}, Thresholds: map[string]any{s: s}}})
	}
	var b bytes.Buffer
	if err := c.Report().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	p := parsePage(t, b.Bytes())
	if len(p.scripts) != 3 || p.elements["img"]+p.elements["svg"] > 0 {
		t.Fatalf("%d scripts, %d img, %d svg elements", len(p.scripts), p.elements["img"], p.elements["svg"])
	}
	for _, s := range hostile {
		if !strings.Contains(p.text, s) {
			t.Errorf("%q is not on the page as text", s)
		}
	}
	var data chartData
	if err := json.Unmarshal([]byte(scriptText(p.scripts[0])), &data); err != nil {
		t.Fatalf("the charts' data does not read back: %v", err)
	}
	labels := ""
	for _, pt := range data.Flows.Quiet {
		labels += pt.L
	}
	for _, s := range hostile {
		if !strings.Contains(labels, s) {
			t.Errorf("%q is not in the charts' labels %q", s, labels)
		}
	}
}

// TestContentSecurityPolicy: the page allows exactly its own inline
// scripts and style, by hash, and nothing from anywhere.
func TestContentSecurityPolicy(t *testing.T) {
	var b bytes.Buffer
	if err := New(Config{}).Report().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	p := parsePage(t, b.Bytes())
	want := []string{"default-src 'none'"}
	for _, s := range p.scripts[1:] { // the first is data, not run
		h := sha256.Sum256([]byte(scriptText(s)))
		want = append(want, "'sha256-"+base64.StdEncoding.EncodeToString(h[:])+"'")
	}
	if len(p.scripts) != 3 {
		t.Fatalf("%d scripts", len(p.scripts))
	}
	for _, w := range want {
		if !strings.Contains(p.csp, w) {
			t.Errorf("the policy %q lacks %s", p.csp, w)
		}
	}
	if strings.Contains(p.csp, "unsafe") || strings.Contains(p.csp, "http") {
		t.Errorf("the policy allows too much: %q", p.csp)
	}
}

// TestVendoredChartJS: the embedded Chart.js is the file assets/README.md
// names by sha256, with its licence beside it, and nothing in it ends the
// script element it is put in.
func TestVendoredChartJS(t *testing.T) {
	readme, err := os.ReadFile("assets/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`chart\.umd\.min\.js \| ([0-9a-f]{64})`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("assets/README.md names no sha256 of chart.umd.min.js")
	}
	h := sha256.Sum256(chartJS)
	if hex.EncodeToString(h[:]) != string(m[1]) {
		t.Errorf("chart.umd.min.js has sha256 %x; assets/README.md says %s", h, m[1])
	}
	if !bytes.Contains(chartJS, []byte("Chart.js v4.6.1")) || !bytes.Contains(readme, []byte("chart.js@4.6.1")) {
		t.Errorf("the file and the README name different versions")
	}
	lic, err := os.ReadFile("assets/LICENSE.chartjs.txt")
	if err != nil || !bytes.Contains(lic, []byte("MIT License")) {
		t.Errorf("assets/LICENSE.chartjs.txt: %v", err)
	}
	lower := bytes.ToLower(chartJS)
	for _, bad := range []string{"</script", "<!--", "<script"} {
		if bytes.Contains(lower, []byte(bad)) {
			t.Errorf("chart.umd.min.js holds %q", bad)
		}
	}
	if strings.Contains(string(page.chart), "sourceMappingURL") {
		t.Errorf("the embedded script still names a source map")
	}
}

// TestWriteFile: a report is written whole, and a failure names the file.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := New(Config{}).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.HasSuffix(bytes.TrimSpace(b), []byte("</html>")) {
		t.Errorf("report.html: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	bad := filepath.Join(dir, "no", "such", "report.html")
	err := New(Config{}).WriteFile(bad)
	if err == nil || err.Error() != bad+": cannot write the report: no such file or directory" {
		t.Errorf("error %v", err)
	}
}

// FuzzPage: whatever alert lines and names arrive, the collector does not
// panic, and the page keeps its three scripts and readable data.
func FuzzPage(f *testing.F) {
	f.Add([]byte(`{"ts":"2026-12-01T10:59:19Z","id":"1","analytic":"AN1512","severity":"high","title":"t","host":{"ip":"10.0.0.1"},`+
		`"process":{"name":"curl","image":"/usr/bin/curl"},"evidence":{"community_ids":["1:flow00000001"],"measured":{"out_bytes":5}}}`+"\n"),
		"files.example.test", "/usr/bin/curl")
	f.Add([]byte("{\"analytic\":\"x\",\"evidence\":{\"measured\":{\"a\":[1,{\"b\":[[[[[{}]]]]]}]}}}\n{"), hostile[0], hostile[1])
	f.Add([]byte("\n\n{\"analytic\":\"\"}\nnull\n[]\n"), hostile[3], "C:\\Windows\\<x>.exe")
	f.Fuzz(func(t *testing.T, lines []byte, name, image string) {
		c := New(Config{MaxFlows: 4, MaxAlerts: 4})
		f := flow(1, record.Outbound, "10.0.0.1:40000", "203.0.113.5:443", 1000, 10)
		f.OrigProc, f.Inspection = proc(image), sni(name)
		c.Record(f)
		w := c.Alerts()
		for len(lines) > 0 {
			n := min(len(lines), 7) // in pieces, as a pipe may write
			w.Write(lines[:n])
			lines = lines[n:]
		}
		var b bytes.Buffer
		if err := c.Report().WriteHTML(&b); err != nil {
			t.Fatal(err)
		}
		p := parsePage(t, b.Bytes())
		if len(p.scripts) != 3 {
			t.Fatalf("%d scripts", len(p.scripts))
		}
		var data chartData
		if err := json.Unmarshal([]byte(scriptText(p.scripts[0])), &data); err != nil {
			t.Fatalf("the charts' data does not read back: %v", err)
		}
	})
}
