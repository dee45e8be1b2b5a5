package sensor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/fserr"
)

// dirSource watches a directory for captures (a tcpdump -w -G ring, files
// dropped by a collection job) and reads each once, when it has stopped
// growing. Each file is replayed on its own, as `outflow replay FILE`
// would: its flows end at its end, so its records are out as soon as it
// is read rather than when the next file comes. A flow that goes on into
// the next file of a ring becomes two records; the upload windows of the
// analytics add them up all the same.
type dirSource struct {
	cfg  DirectoryConfig
	tc   tableConfig
	sh   *core
	seen map[string]fileSeen
	mu   sync.Mutex
	st   DirectoryStats
}

// fileSeen is what the watch knows of a file: its size and time when last
// listed, since when they have held, and whether it was read.
type fileSeen struct {
	size   int64
	mtime  time.Time
	stable time.Time
	done   bool
}

func openDirectory(cfg DirectoryConfig, tc tableConfig, sh *core) (*dirSource, error) {
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot watch the directory: %w", cfg.Path, fserr.Plain(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", cfg.Path)
	}
	s := &dirSource{cfg: cfg, tc: tc, sh: sh, seen: map[string]fileSeen{}, st: DirectoryStats{Path: cfg.Path}}
	return s, nil
}

// run watches until ctx ends, then ends every open flow.
func (s *dirSource) run(ctx context.Context) {
	poll := min(s.cfg.Settle.D()/4, time.Second)
	poll = max(poll, 50*time.Millisecond)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		s.scan(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scan lists the directory and reads, oldest first, every matching file
// whose size and time have held for Settle.
func (s *dirSource) scan(ctx context.Context, now time.Time) {
	ents, err := os.ReadDir(s.cfg.Path)
	if err != nil {
		s.sh.log.Warn(fmt.Sprintf("%s: cannot list the directory: %v", s.cfg.Path, fserr.Plain(err)))
		return
	}
	type ready struct {
		path  string
		mtime time.Time
	}
	var todo []ready
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if ok, _ := filepath.Match(s.cfg.Pattern, e.Name()); !ok {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		path := filepath.Join(s.cfg.Path, e.Name())
		f, known := s.seen[path]
		if known && f.done && f.size == fi.Size() && f.mtime.Equal(fi.ModTime()) {
			continue
		}
		if !known || f.size != fi.Size() || !f.mtime.Equal(fi.ModTime()) {
			// New, or changed since the last look: wait until it holds.
			s.seen[path] = fileSeen{size: fi.Size(), mtime: fi.ModTime(), stable: now}
			if s.cfg.Settle > 0 {
				continue
			}
		}
		if now.Sub(s.seen[path].stable) >= s.cfg.Settle.D() {
			todo = append(todo, ready{path, fi.ModTime()})
		}
	}
	sort.Slice(todo, func(i, j int) bool {
		if !todo[i].mtime.Equal(todo[j].mtime) {
			return todo[i].mtime.Before(todo[j].mtime)
		}
		return todo[i].path < todo[j].path
	})
	for _, r := range todo {
		if ctx.Err() != nil {
			return
		}
		s.read(ctx, r.path)
		f := s.seen[r.path]
		f.done = true
		s.seen[r.path] = f
	}
	// Forget files that are gone, so the map holds what the directory does.
	if len(s.seen) > len(ents) {
		names := map[string]bool{}
		for _, e := range ents {
			names[filepath.Join(s.cfg.Path, e.Name())] = true
		}
		for p := range s.seen {
			if !names[p] {
				delete(s.seen, p)
			}
		}
	}
}

// read replays one file into the core.
func (s *dirSource) read(ctx context.Context, path string) {
	st, _ := replayFiles(ctx, ReplayConfig{Files: []string{path}, Workers: s.tc.Workers, Table: s.tc.Table,
		HomeNets: s.tc.HomeNets, CommunityIDSeed: s.tc.Seed, Log: s.sh.log}, s.sh)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Files += uint64(st.Files)
	s.st.FileErrors += uint64(st.FileErrors)
	s.st.Frames += st.Frames
	s.st.Bytes += st.Bytes
	s.st.Records += st.Records
	addDecodeStats(&s.st.Decode, &st.Decode)
	addTableStats(&s.st.Table, &st.Table)
	s.st.Inspect.Add(&st.Inspect)
}

// DirectoryStats is what a watched directory's source counted. A file's
// counts are added when it has been read whole.
type DirectoryStats struct {
	Path       string
	Files      uint64
	FileErrors uint64
	Frames     uint64
	Bytes      uint64
	Records    uint64
	Decode     flows.DecodeStats
	Table      flows.TableStats
	Inspect    flows.InspectStats
}

// stats returns the counts so far.
func (s *dirSource) stats() DirectoryStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}
