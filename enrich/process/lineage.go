package process

import (
	"slices"
	"strings"
	"time"
)

// Ancestor is one process above the one at a flow's end: its parent, the
// parent's parent, and so on. scp, sftp and rsync hand their connection
// to an ssh child, git to git-remote-https, a script to its interpreter:
// the program that started a transfer is often an ancestor of the one
// that owns the socket (issue 15).
type Ancestor struct {
	PID     int64 // -1 when the feed did not say
	GUID    string
	Image   string
	Command string
	User    string
	Start   time.Time // zero when no start record was seen
}

// DefaultLineageDepth is how many ancestors a join resolves unless
// Config.LineageDepth says otherwise; MaxLineageDepth bounds it.
const (
	DefaultLineageDepth = 4
	MaxLineageDepth     = 16
)

// LineageDepthOf is a configured depth, bounded: 0 is the default, a
// negative depth resolves none, and no more than MaxLineageDepth.
func LineageDepthOf(d int) int {
	switch {
	case d == 0:
		return DefaultLineageDepth
	case d < 0:
		return 0
	}
	return min(d, MaxLineageDepth)
}

// ancestors walks up from p through the stored start records: the parent
// by its GUID, else by host, parent pid and p's start (pids are reused),
// nearest first, up to the configured depth. It stops at a loop or an
// unknown parent; a parent known only by the child's ParentImage and
// ParentCommand is the last ancestor. The strings are the index's own
// records', not copies.
func (x *Index) ancestors(p *Process) []Ancestor {
	depth := LineageDepthOf(x.cfg.LineageDepth)
	if depth == 0 {
		return nil
	}
	// One allocation for the chain, none without one: grown by append it
	// took three for four ancestors, on every attributed flow.
	var out []Ancestor
	var visited []*Process
	cur := p
	for len(out) < depth {
		par := x.parentOf(cur)
		if par == nil {
			if cur.ParentImage != "" || cur.ParentCommand != "" {
				if out == nil {
					out = make([]Ancestor, 0, depth)
				}
				out = append(out, Ancestor{PID: knownPID(cur.PPID), GUID: realGUID(cur.ParentGUID), Image: cur.ParentImage,
					Command: cur.ParentCommand})
			}
			break
		}
		if par == cur || sameRecord(par, p) || slices.Contains(visited, par) {
			break // a loop: a pid that is its own ancestor, or a forged chain
		}
		a := Ancestor{PID: par.PID, GUID: par.GUID, Image: par.Image, Command: par.Command, User: par.User, Start: par.Start}
		// What the child's record says of its parent fills what the
		// parent's own record lacks (a process noticed from a connect
		// event has a short image and no command line).
		if a.Command == "" {
			a.Command = cur.ParentCommand
		}
		if cur.ParentImage != "" && !strings.ContainsAny(a.Image, `\/`) && strings.ContainsAny(cur.ParentImage, `\/`) || a.Image == "" {
			a.Image = cur.ParentImage
		}
		if out == nil {
			out = make([]Ancestor, 0, depth)
		}
		out = append(out, a)
		visited = append(visited, par)
		cur = par
	}
	return out
}

// parentOf finds the stored start record of c's parent, nil when none is
// known. A record found by pid must not contradict c's ParentGUID nor
// have started after c: that is a later process that reused the pid.
func (x *Index) parentOf(c *Process) *Process {
	pg := realGUID(c.ParentGUID)
	if pg != "" {
		if q := x.byGUID[pg]; q != nil && q.Host == c.Host {
			return q
		}
	}
	if c.PPID <= 0 {
		return nil
	}
	q := x.byPIDAt(c.Host, c.PPID, c.Start)
	if q == nil {
		return nil
	}
	if pg != "" && q.GUID != "" && q.GUID != pg {
		return nil
	}
	if !c.Start.IsZero() && !q.Start.IsZero() && q.Start.After(c.Start) {
		return nil
	}
	return q
}

// realGUID returns g, or "" for the all-zero GUID Sysmon writes for a
// parent it did not see.
func realGUID(g string) string {
	if strings.Trim(g, "{}-0") == "" {
		return ""
	}
	return g
}

func knownPID(pid int64) int64 {
	if pid <= 0 {
		return -1
	}
	return pid
}

// sameRecord says whether q is the stored record of the process p (a
// copy): one GUID, or one pid of one host started at one time.
func sameRecord(q, p *Process) bool {
	if q.Host != p.Host {
		return false
	}
	if q.GUID != "" && q.GUID == p.GUID {
		// A forked child keeps its parent's GUID under its own pid.
		return q.PID < 0 || p.PID < 0 || q.PID == p.PID
	}
	return q.PID >= 0 && q.PID == p.PID && q.Start.Equal(p.Start) && !q.Start.IsZero()
}
