package detect

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
)

// MacAppConfig is AN1513: a macOS application uploading after writing
// user documents.
type MacAppConfig struct {
	Enabled             bool     `yaml:"Enabled"`
	WatchedApplications []string `yaml:"WatchedApplications"`
	DocumentPaths       []string `yaml:"DocumentPaths"`
	DataVolumeThreshold Bytes    `yaml:"DataVolumeThreshold"`
	TimeWindow          Duration `yaml:"TimeWindow"`
}

// macAppUpload is AN1513 (T1567, DET0548, macOS): a WatchedApplications
// program (Preview, TextEdit, Office) uploads more than
// DataVolumeThreshold within TimeWindow after writing files under
// DocumentPaths. The application is the socket's owner or its nearest
// watched ancestor (Config.LineageDepth), and the documents are what it
// or the owner wrote. It needs the host's file events; without them it
// stays silent, since the upload alone is what such an application may do.
type macAppUpload struct{}

func (macAppUpload) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.AN1513
	if !v.outbound || v.out == 0 || v.proc == nil || e.ev == nil {
		return
	}
	app, ok := e.nearest(v.proc, func(image string) bool { return macApp(image, c.WatchedApplications) })
	if !ok {
		return
	}
	appName := baseName(app.image)
	key := "an1513|" + v.hostIP() + "|" + appName + "|" + v.destName()
	w := e.addWindow(key, c.TimeWindow.D(), f.Start, v.out, v.in, f.CommunityID)
	if w.out <= uint64(c.DataVolumeThreshold) {
		return
	}
	at := f.Start.Add(msDur(v.proc.SkewMS))
	var docs []string
	for _, l := range writers(v.proc, app) {
		for _, ev := range e.ev.Query(v.proc.Host, at.Add(-c.TimeWindow.D()), at, l.guid, l.pid, feed.KindFileCreate) {
			if underAny(ev.Target, c.DocumentPaths) {
				docs = append(docs, ev.Target)
			}
		}
	}
	if len(docs) == 0 {
		return
	}
	e.resetWindow(key)
	a := e.alertFor(f, v, "AN1513", "T1567")
	a.Severity, a.Confidence = High, "high"
	a.Title = fmt.Sprintf("%s uploaded %s to %s after writing %d user document(s)", macName(v.proc, app), humanBytes(w.out), v.destName(), len(docs))
	windowEvidence(a, w)
	e.lineageEvidence(a, v.proc, app)
	a.Evidence.Measured["documents_written"] = len(docs)
	if len(docs) > 8 {
		docs = docs[:8]
	}
	a.Evidence.Events = docs
	a.Evidence.Thresholds["DataVolumeThreshold"] = uint64(c.DataVolumeThreshold)
	a.Evidence.Thresholds["TimeWindow"] = c.TimeWindow.String()
	a.DedupKey = strings.Join([]string{"AN1513", v.hostIP(), appName, v.destName()}, "|")
	e.emit(a)
}

// macApp matches an application by its bundle's executable name.
func macApp(image string, apps []string) bool {
	b := path.Base(image)
	for _, a := range apps {
		if strings.EqualFold(b, a) || strings.Contains(image, "/"+a+".app/") {
			return true
		}
	}
	return false
}

// macName names the application as macOS spells it ("Preview"), and
// the socket's owner when it is another program.
func macName(p *process.Attribution, app link) string {
	name := path.Base(app.image)
	if app.depth > 0 && !strings.EqualFold(path.Base(p.Image), name) {
		return name + " (through " + path.Base(p.Image) + ")"
	}
	return name
}

// underAny reports whether p lies under one of the directory globs.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		n := strings.Count(strings.TrimSuffix(d, "/"), "/")
		parts := strings.SplitN(p, "/", n+2)
		if len(parts) < n+2 {
			continue
		}
		if ok, _ := path.Match(strings.TrimSuffix(d, "/"), strings.Join(parts[:n+1], "/")); ok {
			return true
		}
	}
	return false
}

func msDur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
