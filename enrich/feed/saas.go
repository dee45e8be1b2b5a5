package feed

import (
	"strings"

	"github.com/valyala/fastjson"
)

// m365Ops are the unified audit log operations the upload analytics read:
// SharePoint and OneDrive file activity.
var m365Ops = map[string]bool{
	"FileUploaded": true, "FileSyncUploadedFull": true, "FileSyncUploadedPartial": true, "FileModified": true,
	"FileDownloaded": true, "FileSyncDownloadedFull": true, "FileAccessed": true, "FileCopied": true, "FileMoved": true,
}

// m365 reads a Microsoft 365 unified audit log record (the Management
// Activity API's JSON, as Search-UnifiedAuditLog's AuditData holds it):
// who (UserId), from where (ClientIP), which operation on which file.
func (r *Reader) m365(o *fastjson.Object, off int64, emit func(*Event)) {
	op := str(o.Get("Operation"))
	if !m365Ops[op] {
		r.Stats.Ignored++
		return
	}
	e := Event{Kind: KindSaaSFile, Feed: FeedM365, PID: -1, PPID: -1, Action: op, User: strings.ToLower(str(o.Get("UserId"))),
		Time: parseTime(str(o.Get("CreationTime"))), Target: str(o.Get("ObjectId")), Image: str(o.Get("Workload")),
		Bytes: -1}
	// ClientIP is sometimes written with a port, "[::1]:443" or "1.2.3.4:80".
	ip := str(o.Get("ClientIP"))
	if a := parseAddr(ip); a.IsValid() {
		e.Src = a
	} else if i := strings.LastIndexByte(ip, ':'); i > 0 {
		e.Src = parseAddr(strings.Trim(ip[:i], "[]"))
	}
	if v := o.Get("FileSizeBytes"); v != nil {
		e.Bytes = parseInt(str(v))
	}
	if e.Target == "" {
		e.Target = str(o.Get("SourceRelativeUrl")) + "/" + str(o.Get("SourceFileName"))
	}
	r.out(&e, off, emit)
}
