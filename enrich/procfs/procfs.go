// Package procfs attributes flows to processes when Outflow runs on the
// host it watches: a connection's socket is found in /proc/net by its
// addresses, its inode among the file descriptors of /proc/PID/fd, and the
// process's image, command line, user and parent are read at once, before
// a short-lived client exits, with its ancestors up to a depth (scp's ssh
// child owns the socket, scp is its parent). The capture tells when to look (a new flow's
// first packet); what was found is kept for a grace period after the
// socket is gone, so a connection of 20 ms is attributed when its record is
// written, seconds later.
package procfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/enrich/process"
)

// Socket is one line of /proc/net/{tcp,udp}{,6}.
type Socket struct {
	Proto         uint8
	Local, Remote netip.AddrPort
	Inode         uint64
}

// ParseNet reads a /proc/net/tcp-style table. Addresses are hex in the
// kernel's byte order: each 32-bit word of an address is little-endian on
// little-endian machines; ports are big-endian hex.
func ParseNet(data []byte, proto uint8, dst []Socket) []Socket {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<16)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		l, ok1 := parseHexAddrPort(f[1])
		r, ok2 := parseHexAddrPort(f[2])
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		dst = append(dst, Socket{Proto: proto, Local: l, Remote: r, Inode: ino})
	}
	return dst
}

func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(s[:i])
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(s[i+1:], 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	// Each 32-bit word was printed as a host-order integer.
	for w := 0; w < len(raw); w += 4 {
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// ReadSockets reads the host's TCP and UDP sockets, IPv4 and IPv6.
func ReadSockets(root string, dst []Socket) []Socket {
	for _, t := range []struct {
		name  string
		proto uint8
	}{{"tcp", 6}, {"tcp6", 6}, {"udp", 17}, {"udp6", 17}} {
		if b, err := os.ReadFile(filepath.Join(root, "net", t.name)); err == nil {
			dst = ParseNet(b, t.proto, dst)
		}
	}
	return dst
}

// Owners finds the pids holding the given socket inodes. It reads the
// newest processes first and stops once all are found: a client that made
// a connection a moment ago is most likely among the last started, and it
// may exit a few milliseconds later.
func Owners(root string, inodes map[uint64]bool) map[uint64]int {
	m := map[uint64]int{}
	dirs, _ := os.ReadDir(root)
	pids := make([]int, 0, len(dirs))
	for _, d := range dirs {
		if pid, err := strconv.Atoi(d.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(pids)))
	for _, pid := range pids {
		fdDir := filepath.Join(root, strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(link[8:], "]"), 10, 64)
			if err == nil && inodes[ino] {
				m[ino] = pid
			}
		}
		if len(m) == len(inodes) {
			break
		}
	}
	return m
}

// Info reads what /proc says of a process.
func Info(root string, pid int) (process.Process, bool) {
	dir := filepath.Join(root, strconv.Itoa(pid))
	p := process.Process{PID: int64(pid), PPID: -1, Feed: "procfs"}
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		return p, false
	}
	p.Image = strings.TrimSuffix(exe, " (deleted)")
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Command = strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case strings.HasPrefix(l, "PPid:"):
				p.PPID, _ = strconv.ParseInt(strings.TrimSpace(l[5:]), 10, 64)
			case strings.HasPrefix(l, "Uid:"):
				if f := strings.Fields(l[4:]); len(f) > 0 {
					p.User = f[0]
					if u, err := user.LookupId(f[0]); err == nil {
						p.User = u.Username
					}
				}
			}
		}
	}
	if p.PPID > 0 {
		pdir := filepath.Join(root, strconv.FormatInt(p.PPID, 10))
		if exe, err := os.Readlink(filepath.Join(pdir, "exe")); err == nil {
			p.ParentImage = strings.TrimSuffix(exe, " (deleted)")
		}
		if b, err := os.ReadFile(filepath.Join(pdir, "cmdline")); err == nil {
			p.ParentCommand = strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
		}
	}
	p.Start = startTime(root, pid)
	return p, true
}

type key struct {
	proto         uint8
	local, remote netip.AddrPort
}

type entry struct {
	proc      process.Process
	ancestors []process.Ancestor
	lastSeen  time.Time
}

// Stats counts the watcher's work.
type Stats struct {
	Lookups, Found, Scans uint64
	Joined, Missed        uint64
}

// Watcher attributes the host's own connections. Safe for concurrent use.
type Watcher struct {
	root  string
	grace time.Duration
	host  string
	trig  chan struct{}
	mu    sync.Mutex
	want  map[key]wanted // flows seen on the wire, not yet found
	found map[key]*entry
	Stats Stats
	// OnEvents, when set, is given the host events each attribution
	// stands for (the process, its connection, the crypto libraries it
	// has mapped), so they can be kept as a host-event log. It is called
	// on the watcher's goroutine.
	OnEvents func([]feed.Event)
	started  map[[2]int64]bool // pid and start time of processes given to OnEvents
	// LineageDepth is how many ancestors of a socket's owner are read
	// (process.Config's meaning: 0 the default, negative none, at most
	// process.MaxLineageDepth); set it before Run.
	LineageDepth int
}

type wanted struct {
	at   time.Time
	orig bool // the key's local end sent the flow's first packet
}

// NewWatcher reads /proc at root ("/proc" on a live host) and keeps what
// it found for grace after the socket is gone.
func NewWatcher(root string, grace time.Duration) *Watcher {
	h, _ := os.Hostname()
	return &Watcher{root: root, grace: grace, host: strings.ToLower(h), trig: make(chan struct{}, 1),
		want: map[key]wanted{}, found: map[key]*entry{}, started: map[[2]int64]bool{}}
}

// Notice tells the watcher a flow began between a and b; it looks for the
// socket at once, on its own goroutine. Cheap when the flow is known.
func (w *Watcher) Notice(proto uint8, a, b netip.AddrPort) {
	if proto != 6 && proto != 17 {
		return
	}
	k1, k2 := key{proto, a, b}, key{proto, b, a}
	w.mu.Lock()
	_, f1 := w.found[k1]
	_, f2 := w.found[k2]
	_, p1 := w.want[k1]
	if !f1 && !f2 && !p1 {
		now := time.Now()
		w.want[k1], w.want[k2] = wanted{now, true}, wanted{now, false}
	}
	w.mu.Unlock()
	if !f1 && !f2 && !p1 {
		select {
		case w.trig <- struct{}{}:
		default:
		}
	}
}

// Run looks up noticed flows until ctx ends, and every second refreshes
// what is alive and forgets what has been gone longer than the grace.
func (w *Watcher) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.trig:
			w.scan()
		case <-tick.C:
			w.scan()
			w.expire(time.Now())
		}
	}
}

func (w *Watcher) scan() {
	socks := ReadSockets(w.root, nil)
	now := time.Now()
	w.mu.Lock()
	w.Stats.Scans++
	// Which sockets are flows the capture noticed and not yet found.
	type hit struct {
		k    key
		sock Socket
	}
	var hits []hit
	need := map[uint64]bool{}
	for _, s := range socks {
		k := key{s.Proto, s.Local, s.Remote}
		if e := w.found[k]; e != nil {
			e.lastSeen = now
			continue
		}
		if _, ok := w.want[k]; !ok {
			if s.Proto != 17 || !s.Remote.Addr().IsUnspecified() {
				continue
			}
			// An unconnected UDP socket answers for any remote: match
			// it by its local end.
			matched := false
			for wk := range w.want {
				if wk.proto == 17 && wk.local.Port() == s.Local.Port() &&
					(s.Local.Addr().IsUnspecified() || wk.local.Addr() == s.Local.Addr()) {
					k, matched = wk, true
					break
				}
			}
			if !matched {
				continue
			}
		}
		if s.Inode == 0 {
			continue // TIME_WAIT: no owner any more
		}
		hits = append(hits, hit{k, s})
		need[s.Inode] = true
	}
	w.mu.Unlock()
	if len(hits) == 0 {
		w.forget(now)
		return
	}
	owners := Owners(w.root, need)
	procs := map[int]process.Process{}
	lineage := map[int][]process.Process{}
	read := map[int]process.Process{} // ancestors read in this scan
	depth := process.LineageDepthOf(w.LineageDepth)
	for _, pid := range owners {
		if _, done := procs[pid]; done {
			continue
		}
		p, ok := read[pid]
		if !ok {
			p, ok = Info(w.root, pid)
			p.Host = w.host
		}
		if ok {
			procs[pid] = p
			lineage[pid] = Ancestors(w.root, p, depth, read)
		}
	}
	var evs []feed.Event
	w.mu.Lock()
	for _, h := range hits {
		pid := owners[h.sock.Inode]
		p, ok := procs[pid]
		if !ok {
			continue
		}
		want := w.want[h.k]
		w.found[h.k] = &entry{proc: p, ancestors: asAncestors(lineage[pid]), lastSeen: now}
		delete(w.want, h.k)
		w.Stats.Found++
		if w.OnEvents != nil {
			evs = w.events(evs, pid, p, lineage[pid], h.k, want, now)
		}
	}
	w.mu.Unlock()
	if len(evs) > 0 {
		w.OnEvents(evs)
	}
	w.forget(now)
}

// cryptoLibs are the libraries whose mapping is reported as a module
// load: what T1573.001's host variant looks for on Linux.
var cryptoLibs = []string{"libcrypto.so", "libssl.so", "libgcrypt.so", "libsodium.so", "libnettle.so", "libmbedcrypto.so", "libgnutls.so"}

// events describes an attribution as host events: the process's
// ancestors and the process (each once per pid and start, at its start
// time, the farthest first, so a recording reads as they started), the
// connection, and the crypto libraries mapped into the process when it
// was seen.
func (w *Watcher) events(evs []feed.Event, pid int, p process.Process, ancestors []process.Process, k key, want wanted, now time.Time) []feed.Event {
	for i := len(ancestors) - 1; i >= 0; i-- {
		if a := &ancestors[i]; w.firstStart(a) {
			evs = append(evs, startEvent(a, now))
		}
	}
	base := startEvent(&p, now)
	if w.firstStart(&p) {
		evs = append(evs, base)
		for _, lib := range mappedLibs(w.root, pid, cryptoLibs) {
			m := base
			m.Kind, m.Time, m.Target = feed.KindModuleLoad, now, lib
			evs = append(evs, m)
		}
	}
	c := base
	c.Kind, c.Time, c.Proto, c.HasSrcPort, c.Initiated = feed.KindConnect, want.at, k.proto, true, want.orig
	if c.Time.IsZero() {
		c.Time = now
	}
	local, remote := k.local, k.remote
	if want.orig {
		c.Src, c.SrcPort, c.Dst, c.DstPort = local.Addr(), local.Port(), remote.Addr(), remote.Port()
	} else {
		c.Src, c.SrcPort, c.Dst, c.DstPort = remote.Addr(), remote.Port(), local.Addr(), local.Port()
	}
	return append(evs, c)
}

// firstStart says whether p's start has not been given to OnEvents yet,
// and marks it given.
func (w *Watcher) firstStart(p *process.Process) bool {
	id := [2]int64{p.PID, p.Start.UnixNano()}
	if w.started[id] {
		return false
	}
	if len(w.started) > 1<<16 {
		clear(w.started)
	}
	w.started[id] = true
	return true
}

// startEvent is p's process-start event, at its start (now when /proc did
// not say).
func startEvent(p *process.Process, now time.Time) feed.Event {
	e := feed.Event{Kind: feed.KindProcessStart, Host: p.Host, Feed: feed.FeedProcfs, PID: p.PID, PPID: p.PPID, Image: p.Image,
		Command: p.Command, User: p.User, ParentImg: p.ParentImage, ParentCmd: p.ParentCommand, Time: p.Start}
	if e.Time.IsZero() {
		e.Time = now
	}
	return e
}

// Ancestors reads p's parent, the parent's parent and so on from /proc at
// root, nearest first, up to depth, by each one's status PPid. It stops at
// pid 0, a pid seen already (a loop), or a process gone or unreadable (a
// kernel thread has no exe); what it reads is kept in cache, by pid, for
// the other sockets of the same scan.
func Ancestors(root string, p process.Process, depth int, cache map[int]process.Process) []process.Process {
	var out []process.Process
	seen := map[int64]bool{p.PID: true}
	for ppid := p.PPID; len(out) < depth && ppid > 0 && !seen[ppid]; {
		seen[ppid] = true
		q, ok := cache[int(ppid)]
		if !ok {
			if q, ok = Info(root, int(ppid)); !ok {
				break
			}
			q.Host = p.Host
			cache[int(ppid)] = q
		}
		out = append(out, q)
		ppid = q.PPID
	}
	return out
}

// asAncestors is a chain as an Attribution holds it.
func asAncestors(list []process.Process) []process.Ancestor {
	if len(list) == 0 {
		return nil
	}
	out := make([]process.Ancestor, len(list))
	for i, q := range list {
		out[i] = process.Ancestor{PID: q.PID, Image: q.Image, Command: q.Command, User: q.User, Start: q.Start}
	}
	return out
}

// mappedLibs returns the files among a process's mappings whose names
// contain one of names.
func mappedLibs(root string, pid int, names []string) []string {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		i := strings.IndexByte(l, '/')
		if i < 0 {
			continue
		}
		path := l[i:]
		if seen[path] {
			continue
		}
		for _, n := range names {
			if strings.Contains(filepath.Base(path), n) {
				seen[path] = true
				out = append(out, path)
				break
			}
		}
	}
	return out
}

// startTime reads when a process started: its start in clock ticks after
// boot (/proc/PID/stat) and the boot time (/proc/stat).
func startTime(root string, pid int) time.Time {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return time.Time{}
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return time.Time{}
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	bt := bootTime(root)
	if err != nil || bt == 0 {
		return time.Time{}
	}
	// USER_HZ is 100 on every Linux architecture Go runs on.
	return time.Unix(bt, 0).Add(time.Duration(ticks) * 10 * time.Millisecond)
}

// boot holds each /proc root's boot time, read once: it does not change
// while the machine runs.
var boot sync.Map // root -> int64 seconds

// bootTime returns the boot time (/proc/stat btime) of a /proc root, 0
// when it cannot be read.
func bootTime(root string) int64 {
	if v, ok := boot.Load(root); ok {
		return v.(int64)
	}
	st, err := os.ReadFile(filepath.Join(root, "stat"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "btime ") {
			bt, _ := strconv.ParseInt(strings.TrimSpace(l[6:]), 10, 64)
			boot.Store(root, bt)
			return bt
		}
	}
	return 0
}

// forget drops flows noticed long ago and never found: remote hosts'.
func (w *Watcher) forget(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, t := range w.want {
		if now.Sub(t.at) > 5*time.Second {
			delete(w.want, k)
		}
	}
}

func (w *Watcher) expire(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, e := range w.found {
		if now.Sub(e.lastSeen) > w.grace {
			delete(w.found, k)
		}
	}
}

// Snapshot returns the counters.
func (w *Watcher) Snapshot() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Stats
}

// Join attributes a flow's ends that are sockets of this host.
func (w *Watcher) Join(f process.Flow) (orig, resp *process.Attribution) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.Stats.Lookups++
	if e := w.found[key{f.Proto, f.Orig, f.Resp}]; e != nil {
		orig = &process.Attribution{Process: e.proc, Match: "socket", Feed: "procfs", Ancestors: e.ancestors}
	}
	if e := w.found[key{f.Proto, f.Resp, f.Orig}]; e != nil {
		resp = &process.Attribution{Process: e.proc, Match: "socket", Feed: "procfs", Ancestors: e.ancestors}
	}
	if orig != nil || resp != nil {
		w.Stats.Joined++
	} else {
		w.Stats.Missed++
	}
	return orig, resp
}
