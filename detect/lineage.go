package detect

import (
	"time"

	"github.com/outflow-sensor/outflow/enrich/process"
)

// The analytics that ask "which program started this transfer" look past
// the socket's owner: scp, sftp and rsync hand their connection to an ssh
// child, git to git-remote-https, a script to its interpreter (issue 15).
// They match their lists against the owner and then its ancestors,
// nearest first, as far as Config.LineageDepth and the host events go.
// An allow-list (EncryptedChannel.AllowedCryptoProcesses) looks at the
// owner alone: an allowed program must not vouch for its children.

// link is one program of a flow end's process chain.
type link struct {
	pid   int64
	guid  string
	image string
	cmd   string
	depth int       // 0 the socket's owner, 1 its parent, and so on
	start time.Time // zero when not known
}

// chainLen is how many programs of p's chain the analytics look at: the
// owner and up to LineageDepth of its ancestors.
func (e *Engine) chainLen(p *process.Attribution) int {
	return 1 + min(len(p.Ancestors), max(e.cfg.LineageDepth, 0))
}

// linkAt is the i-th program of p's chain, 0 the owner.
func linkAt(p *process.Attribution, i int) link {
	if i == 0 {
		return link{pid: p.PID, guid: p.GUID, image: p.Image, cmd: p.Command, start: p.Start}
	}
	a := &p.Ancestors[i-1]
	return link{pid: a.PID, guid: a.GUID, image: a.Image, cmd: a.Command, depth: i, start: a.Start}
}

// writers are the processes whose file writes count for a transfer found
// through l: the socket's owner, and l when it is an ancestor that can be
// named (by GUID or PID).
func writers(p *process.Attribution, l link) []link {
	w := []link{linkAt(p, 0)}
	if l.depth > 0 && (l.guid != "" || l.pid >= 0) {
		w = append(w, l)
	}
	return w
}

// nearest returns the nearest program of p's chain that match accepts.
func (e *Engine) nearest(p *process.Attribution, match func(image string) bool) (link, bool) {
	for i, n := 0, e.chainLen(p); i < n; i++ {
		if l := linkAt(p, i); l.image != "" && match(l.image) {
			return l, true
		}
	}
	return link{}, false
}

// nearestIn is nearest for a list of program names (nameIn's rules).
func (e *Engine) nearestIn(p *process.Attribution, list []string) (link, bool) {
	return e.nearest(p, func(image string) bool { return nameIn(image, list) })
}

// listedOrUnknown is nearestIn for an analytic that also judges flows with
// no process joined: those pass, named "-". It returns the program found,
// its name for windows and dedup keys, and whether the flow is judged.
func (e *Engine) listedOrUnknown(p *process.Attribution, list []string) (l link, name string, ok bool) {
	if p == nil {
		return link{}, "-", true
	}
	if l, ok = e.nearestIn(p, list); !ok {
		return l, "", false
	}
	return l, baseName(l.image), true
}

// whoIn names a chain's program for a title: "scp", or "scp (through ssh)"
// when the socket's owner is another program.
func whoIn(p *process.Attribution, l link) string {
	name := baseName(l.image)
	if l.depth > 0 {
		if owner := baseName(p.Image); owner != "" && owner != name {
			return name + " (through " + owner + ")"
		}
	}
	return name
}

// lineageEvidence puts the program that started the transfer and the
// chain it was found in into an alert: tool and tool_pid, the socket's
// owner, and lineage, the images from the owner up, nearest first.
func (e *Engine) lineageEvidence(a *Alert, p *process.Attribution, l link) {
	m := a.Evidence.Measured
	m["tool"], m["socket_owner"] = baseName(l.image), baseName(p.Image)
	if l.pid >= 0 {
		m["tool_pid"] = l.pid
	}
	n := e.chainLen(p)
	images := make([]string, 0, n)
	for i := 0; i < n; i++ {
		images = append(images, linkAt(p, i).image)
	}
	m["lineage"] = images
	if l.depth > 0 {
		m["tool_depth"] = l.depth
	}
	a.Evidence.Thresholds["LineageDepth"] = e.cfg.LineageDepth
}
