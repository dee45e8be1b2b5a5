package detect

import (
	"fmt"
	"strings"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
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
// DataVolumeThreshold within TimeWindow. The tool is the socket's owner
// or one of its ancestors, the nearest within LineageDepth: scp, sftp and
// rsync send through an ssh child, and the alert names both. A cleartext
// POST or PUT is seen as such; over TLS the upload is inferred from
// MinOutInRatio. File writes by the tool (FileEvents or more), or an
// archiver in a command line or image along the chain, say it gathered
// files first and raise the confidence. Without process data only a
// cleartext upload is reported, at low confidence.
type toolUpload struct{}

// archivers are the programs whose presence along the chain means the
// files were packed first.
var archivers = []string{"tar", "zip", "7z", "gzip", "xz", "bzip2"}

func (toolUpload) flow(e *Engine, f *Flow, v *view) {
	c := &e.cfg.AN1512
	if !v.outbound || v.out == 0 {
		return
	}
	cleartext := f.HTTPMethod == "POST" || f.HTTPMethod == "PUT"
	if v.proc == nil && !cleartext {
		return
	}
	tool, toolName, ok := e.listedOrUnknown(v.proc, c.MonitoredTools)
	if !ok {
		return
	}
	// The window and the dedup key are the tool's: the ssh children of
	// one scp session add up, and raise one alert.
	key := "an1512|" + v.hostIP() + "|" + toolName + "|" + v.destName()
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
	whom := "a host"
	if v.proc == nil {
		a.Severity, a.Confidence = Low, "low"
	} else {
		whom = whoIn(v.proc, tool)
	}
	how := "over an encrypted connection (inferred from out/in " + fmt.Sprintf("%.0f", ratio(w.out, w.in)) + ")"
	if cleartext {
		how = "by HTTP " + f.HTTPMethod
	}
	a.Title = fmt.Sprintf("%s uploaded %s to %s %s", whom, humanBytes(w.out), v.destName(), how)
	windowEvidence(a, w)
	if v.proc != nil {
		e.lineageEvidence(a, v.proc, tool)
		files := 0
		if e.ev != nil {
			at := f.Start.Add(msDur(v.proc.SkewMS))
			for _, l := range writers(v.proc, tool) {
				files += len(e.ev.Query(v.proc.Host, at.Add(-c.TimeWindow.D()), at, l.guid, l.pid, feed.KindFileCreate))
			}
			a.Evidence.Measured["file_events"] = files
		}
		archived := e.archiverAlong(v.proc)
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
	a.DedupKey = strings.Join([]string{"AN1512", v.hostIP(), toolName, v.destName()}, "|")
	e.emit(a)
}

// archiverAlong says whether an archiver ran the transfer or one of its
// ancestors (tar's command line, or a script run with a .tar.gz
// argument), as far as LineageDepth goes; the owner's parent as its own
// record names it counts too, for attributions without ancestors.
func (e *Engine) archiverAlong(p *process.Attribution) bool {
	if mentionsArchive(p.ParentCommand) || nameIn(p.ParentImage, archivers) {
		return true
	}
	for i, n := 0, e.chainLen(p); i < n; i++ {
		l := linkAt(p, i)
		if mentionsArchive(l.cmd) || i > 0 && nameIn(l.image, archivers) {
			return true
		}
	}
	return false
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
