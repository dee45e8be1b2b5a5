package detect

import (
	"fmt"
	"strings"

	"github.com/outflow-sensor/outflow/enrich/feed"
)

// ToolUploadConfig is AN1512: a transfer tool uploading.
type ToolUploadConfig struct {
	Enabled             bool     `yaml:"Enabled"`
	MonitoredTools      []string `yaml:"MonitoredTools"`
	DataVolumeThreshold Bytes    `yaml:"DataVolumeThreshold"`
	TimeWindow          Duration `yaml:"TimeWindow"`
	MinOutInRatio       float64  `yaml:"MinOutInRatio"`
	FileEvents          int      `yaml:"FileEvents"` // file writes or reads by the tool that make it "archived many files"
}

// toolUpload is AN1512 (T1567, DET0548, Linux): a transfer or archive
// tool (MonitoredTools: tar, curl, wget, python, ...) uploads more than
// DataVolumeThreshold within TimeWindow. A cleartext POST or PUT is seen
// as such; over TLS the upload is inferred from MinOutInRatio. File
// writes by the tool (FileEvents or more), or an archiver in its command
// line or parent, say it gathered files first and raise the confidence.
// Without process data only a cleartext upload is reported, at low
// confidence.
type toolUpload struct{}

func (toolUpload) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.AN1512
	if !v.outbound || v.out == 0 {
		return
	}
	cleartext := f.HTTPMethod == "POST" || f.HTTPMethod == "PUT"
	if v.proc == nil && !cleartext {
		return
	}
	if v.proc != nil && !nameIn(v.proc.Image, c.MonitoredTools) {
		return
	}
	key := "an1512|" + v.hostIP() + "|" + procKey(v) + "|" + v.destName()
	w := e.addWindow(key, c.TimeWindow.D(), f.Start, v.out, v.in, f.CommunityID)
	if w.out <= uint64(c.DataVolumeThreshold) {
		return
	}
	if !cleartext && ratio(w.out, w.in) < c.MinOutInRatio {
		return
	}
	e.resetWindow(key)
	a := e.alertFor(f, v, "AN1512", "T1567")
	a.Severity, a.Confidence = Medium, "medium"
	who := "a host"
	if v.proc == nil {
		a.Severity, a.Confidence = Low, "low"
	} else {
		who = baseName(v.proc.Image)
	}
	how := "over an encrypted connection (inferred from out/in " + fmt.Sprintf("%.0f", ratio(w.out, w.in)) + ")"
	if cleartext {
		how = "by HTTP " + f.HTTPMethod
	}
	a.Title = fmt.Sprintf("%s uploaded %s to %s %s", who, humanBytes(w.out), v.destName(), how)
	windowEvidence(a, w)
	if v.proc != nil {
		files := 0
		if e.ev != nil {
			at := f.Start.Add(msDur(v.proc.SkewMS))
			files = len(e.ev.Query(v.proc.Host, at.Add(-c.TimeWindow.D()), at, v.proc.GUID, v.proc.PID, feed.KindFileCreate))
			a.Evidence.Measured["file_events"] = files
		}
		archived := mentionsArchive(v.proc.Command) || mentionsArchive(v.proc.ParentCommand) || nameIn(v.proc.ParentImage, []string{"tar", "zip", "7z", "gzip", "xz", "bzip2"})
		a.Evidence.Measured["archiver_in_command"] = archived
		if files >= c.FileEvents || archived {
			a.Severity, a.Confidence = High, "high"
			a.Title += ", after gathering files"
		}
	}
	a.Evidence.Thresholds["DataVolumeThreshold"] = uint64(c.DataVolumeThreshold)
	a.Evidence.Thresholds["MinOutInRatio"] = c.MinOutInRatio
	a.Evidence.Thresholds["TimeWindow"] = c.TimeWindow.String()
	a.Evidence.Thresholds["FileEvents"] = c.FileEvents
	if cleartext {
		a.Evidence.Measured["http_method"] = f.HTTPMethod
		a.Evidence.Measured["http_request_body_bytes"] = f.HTTPBody
	}
	a.DedupKey = strings.Join([]string{"AN1512", v.hostIP(), procKey(v), v.destName()}, "|")
	e.emit(a)
}

func mentionsArchive(cmd string) bool {
	for _, w := range strings.Fields(strings.ToLower(cmd)) {
		b := baseName(w)
		if b == "tar" || b == "zip" || b == "7z" || strings.HasSuffix(b, ".tar") || strings.HasSuffix(b, ".tgz") ||
			strings.HasSuffix(b, ".tar.gz") || strings.HasSuffix(b, ".zip") || strings.HasSuffix(b, ".7z") {
			return true
		}
	}
	return false
}
