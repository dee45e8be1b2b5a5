package report

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"time"

	_ "embed"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/internal/fserr"
)

// Chart.js draws the charts. Chosen over uPlot (smaller, 50 KB) for what
// the page needs built in: log axes, scatter, stacked bars, legends and
// tooltips, with no plugin of ours; 210 KB minified, MIT, one file with no
// dependencies and no network at run time. The file is the npm package's,
// unchanged (assets/README.md: version, command, sha256).
//
//go:embed assets/chart.umd.min.js
var chartJS []byte

var (
	//go:embed page.html
	pageHTML string
	//go:embed page.css
	pageCSS string
	//go:embed page.js
	pageJS string
)

// page is the template and the inline scripts and style with the
// Content-Security-Policy that allows them and nothing else: a page that
// shows strings from the network runs no script but its own, and fetches
// nothing.
var page = func() struct {
	tmpl          *template.Template
	chart, script template.JS
	css           template.CSS
	csp           string
} {
	p := struct {
		tmpl          *template.Template
		chart, script template.JS
		css           template.CSS
		csp           string
	}{chart: template.JS(stripSourceMap(chartJS)), script: template.JS(pageJS), css: template.CSS(pageCSS)}
	p.csp = fmt.Sprintf("default-src 'none'; script-src '%s' '%s'; style-src '%s'; img-src data:; base-uri 'none'; form-action 'none'",
		cspHash(string(p.chart)), cspHash(pageJS), cspHash(pageCSS))
	p.tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
		"bytes":         formatBytes,
		"count":         formatCount,
		"uint":          func(n int) uint64 { return uint64(max(n, 0)) },
		"utc":           func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"severityClass": severityClass,
	}).Parse(pageHTML))
	return p
}()

// stripSourceMap drops the closing "//# sourceMappingURL=" comment of a
// minified script: inline in a page, it would name a file beside the page
// that a browser's developer tools would try to load.
func stripSourceMap(js []byte) string {
	js = bytes.TrimRight(js, "\n")
	if i := bytes.LastIndexByte(js, '\n'); i >= 0 && bytes.HasPrefix(js[i+1:], []byte("//# sourceMappingURL=")) {
		js = js[:i]
	}
	return string(js)
}

func cspHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

// severityClass is an alert's CSS class, from a known severity only.
func severityClass(s string) string {
	switch s {
	case detect.Critical, detect.High, detect.Medium, detect.Low, detect.Informational:
		return "sev-" + s
	}
	return "sev-unknown"
}

// WriteHTML writes the report as one HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	return page.tmpl.Execute(w, struct {
		R       *Report
		CSP     string
		CSS     template.CSS
		ChartJS template.JS
		PageJS  template.JS
	}{r, page.csp, page.css, page.chart, page.script})
}

// WriteFile writes the report to path, whole or not at all: it is
// written beside it and renamed into place.
func (c *Collector) WriteFile(path string) error {
	r := c.Report()
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s: cannot write the report: %w", path, fserr.Plain(err))
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 1<<16)
	err = r.WriteHTML(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o640)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: cannot write the report: %w", path, fserr.Plain(err))
	}
	return nil
}
