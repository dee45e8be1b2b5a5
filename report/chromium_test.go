package report_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// maxPage is the most a lab report may weigh.
const maxPage = 2 << 20

// TestLabReportInChromium opens the detection lab's report in Debian's
// headless Chromium, as a person would open the file: nothing is logged
// to the console, nothing is fetched but the file itself, every alert the
// replay wrote (its JSON lines, and pcaps/detect-expected.tsv) is on the
// page with its process, and every chart has drawn.
func TestLabReportInChromium(t *testing.T) {
	exe := chromium(t)
	l := replay(t, labPcap, labConfig, labEvents)
	page := writePage(t, l, "lab-report.html")
	b := browse(t, exe, page, "lab-report.png")

	if len(b.Alerts) != len(l.alerts) {
		t.Errorf("the page shows %d alerts, the replay wrote %d", len(b.Alerts), len(l.alerts))
	}
	shown := map[string]domAlert{}
	for _, a := range b.Alerts {
		shown[a.ID] = a
	}
	for _, a := range l.alerts {
		d, ok := shown[a.ID]
		if !ok {
			t.Errorf("alert %s (%s: %s) is not on the page", a.ID, a.Analytic, a.Title)
			continue
		}
		proc := "not known"
		if a.Process != nil {
			proc = a.Process.Name
		}
		if d.Title != a.Title || d.Analytic != a.Analytic || d.Severity != a.Severity || d.Process != proc {
			t.Errorf("alert %s: the page says %+v; the replay wrote %s %s %q, process %q", a.ID, d, a.Analytic, a.Severity, a.Title, proc)
		}
	}
	// The lab's expected alerts, written from what its programs did.
	want := expectedAlerts(t)
	if len(b.Alerts) != len(want) {
		t.Errorf("the page shows %d alerts, %s lists %d", len(b.Alerts), labWant, len(want))
	}
	used := make([]bool, len(b.Alerts))
	for _, w := range want {
		found := false
		for i, d := range b.Alerts {
			proc := d.Process
			if proc == "not known" {
				proc = "-"
			}
			dest, port := d.DestName, d.DestPort
			if dest == "" {
				dest, port = "-", "-"
			}
			if !used[i] && d.Analytic == w[0] && d.Severity == w[1] && strings.HasPrefix(proc, w[2]) && dest == w[3] && port == w[4] {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("%s: not on the page: %s", labWant, strings.Join(w[:5], " "))
		}
	}
	// Alerts first: the first section of the page is the alerts.
	if b.FirstSection != "alerts" {
		t.Errorf("the page starts with section %q, not the alerts", b.FirstSection)
	}
	// Every flow an alert names is marked in the scatter chart.
	cids := map[string]bool{}
	for _, a := range l.alerts {
		for _, c := range a.Evidence.CommunityIDs {
			cids[c] = true
		}
	}
	if got := b.chart(t, "chart-flows").Points[1]; got != len(cids) {
		t.Errorf("the scatter chart marks %d flows; the alerts name %d", got, len(cids))
	}
	if got := b.chart(t, "chart-flows").Points[0] + b.chart(t, "chart-flows").Points[1]; uint64(got) != l.stats.Records {
		t.Errorf("the scatter chart draws %d flows of the replay's %d records", got, l.stats.Records)
	}
}

// TestQuietReportInChromium: a capture the defaults raise nothing on
// says so in plain words, and its charts still draw.
func TestQuietReportInChromium(t *testing.T) {
	exe := chromium(t)
	l := replay(t, quietPcap, "")
	if len(l.alerts) != 0 {
		t.Fatalf("%s raised %d alerts with the defaults; the test wants a capture that raises none", quietPcap, len(l.alerts))
	}
	page := writePage(t, l, "quiet-report.html")
	b := browse(t, exe, page, "quiet-report.png")
	if len(b.Alerts) != 0 || !strings.HasPrefix(b.NoAlerts, "No alerts") {
		t.Errorf("the page shows %d alerts and says %q", len(b.Alerts), b.NoAlerts)
	}
}

// chromium finds Debian's Chromium: without it the test is skipped, or
// fails under CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: CI must install Debian's chromium package")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// writePage writes a report where the test's artefacts go
// (OUTFLOW_ARTEFACTS, else a temporary directory), and checks its size.
func writePage(t *testing.T, l lab, name string) string {
	t.Helper()
	path := filepath.Join(artefacts(t), name)
	if err := l.col.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxPage {
		t.Errorf("%s weighs %d bytes, more than %d", name, fi.Size(), maxPage)
	}
	t.Logf("report: %s (%d bytes)", path, fi.Size())
	return path
}

func artefacts(t *testing.T) string {
	if d := os.Getenv("OUTFLOW_ARTEFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browsed is what the browser saw of a page.
type browsed struct {
	Alerts       []domAlert   `json:"alerts"`
	NoAlerts     string       `json:"noAlerts"`
	FirstSection string       `json:"firstSection"`
	Charts       []drawnChart `json:"charts"`
}

// domAlert is one alert as the page's DOM shows it.
type domAlert struct {
	ID       string `json:"id"`
	Analytic string `json:"analytic"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Process  string `json:"process"`
	DestName string `json:"destName"`
	DestPort string `json:"destPort"`
}

// drawnChart is a canvas: its size, how many of its pixels are painted,
// and the points Chart.js laid out for each dataset.
type drawnChart struct {
	ID      string `json:"id"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Painted int    `json:"painted"`
	Colours int    `json:"colours"`
	Points  []int  `json:"points"`
}

func (b *browsed) chart(t *testing.T, id string) drawnChart {
	t.Helper()
	for _, c := range b.Charts {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no chart %s on the page", id)
	return drawnChart{}
}

// readPage is what the test reads of the page, in the page.
const readPage = `(() => {
  const text = (el, sel) => { const e = el.querySelector(sel); return e ? e.textContent.trim() : ""; };
  const alerts = Array.from(document.querySelectorAll("article.alert")).map(a => ({
    id: a.dataset.id, analytic: a.dataset.analytic, severity: a.dataset.severity,
    title: text(a, ".alert-title"), process: text(a, ".alert-process"),
    destName: text(a, ".alert-dest-name"), destPort: text(a, ".alert-dest-port"),
  }));
  const charts = Array.from(document.querySelectorAll("canvas")).map(c => {
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let painted = 0; const colours = new Set();
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] !== 0) { painted++; colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]); }
    }
    const chart = Chart.getChart(c);
    const points = chart ? chart.data.datasets.map((d, i) => chart.getDatasetMeta(i).data.length) : [];
    return { id: c.id, width: c.width, height: c.height, painted: painted, colours: colours.size, points: points };
  });
  const first = document.querySelector("section");
  const none = document.getElementById("no-alerts");
  return { alerts: alerts, charts: charts, firstSection: first ? first.id : "", noAlerts: none ? none.textContent.trim() : "" };
})()`

// browse opens a page in headless Chromium, fails the test on any console
// error or warning and any request but the page's own file and data:
// URLs, checks that every chart drew, writes a screenshot beside the page
// and returns what the page shows.
func browse(t *testing.T, exe, page, shot string) browsed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000))
	defer acancel()
	var mu sync.Mutex
	var requests, console []string
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, e.Request.URL)
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			console = append(console, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		case *runtime.EventExceptionThrown:
			console = append(console, "exception: "+e.ExceptionDetails.Text+" "+exceptionText(e.ExceptionDetails))
		case *log.EventEntryAdded:
			console = append(console, fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	}))
	defer bcancel()
	url := "file://" + page
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	b, err := chromedp.Run(bctx, chromedp.Evaluate[browsed](readPage))
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", url, err)
	}
	shotPath := filepath.Join(filepath.Dir(page), shot)
	if err := os.WriteFile(shotPath, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shotPath)

	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		t.Errorf("console: %s", m)
	}
	if len(requests) == 0 {
		t.Errorf("no request was seen, not even the page's: the network log is not working")
	}
	for _, r := range requests {
		if r != url && !strings.HasPrefix(r, "data:") {
			t.Errorf("the page requested %s", r)
		}
	}
	if len(b.Charts) != 3 {
		t.Errorf("%d charts on the page, want 3", len(b.Charts))
	}
	for _, c := range b.Charts {
		// Axes, labels and legend alone paint a few percent of a canvas
		// in a few colours; the data add theirs.
		if c.Width == 0 || c.Height == 0 || c.Painted < c.Width*c.Height/100 || c.Colours < 3 || len(c.Points) == 0 {
			t.Errorf("chart %s did not draw: %+v", c.ID, c)
		}
	}
	return b
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return strconv.Itoa(int(d.LineNumber))
}
