package detect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// The state on disk is the directory fastcache writes (metadata.bin and
// data.N.bin), kept at PATH. A save never leaves PATH without a whole state:
// fastcache writes PATH.saving/state (its temporary directory, renamed into
// place, stays inside PATH.saving, a directory of Outflow's own), every file
// is synced, then PATH becomes PATH.old, the new state becomes PATH, and
// PATH.old and PATH.saving go. A process killed at any step leaves PATH, or
// PATH.old that a start takes back. fastcache on its own removes PATH
// before renaming the new one in, so a kill in between lost everything, and
// it removes whatever PATH held: a directory shared with other files.

// stateFile names what a state directory may hold: fastcache's files, and
// the probe CheckStatePath makes and removes at once (a kill in between
// leaves it; the next save replaces the directory whole).
var stateFile = regexp.MustCompile(`^(metadata\.bin|data\.[0-9]+\.bin|\.outflow-probe)$`)

// CheckStatePath says, at start, whether path can hold the state: missing
// (it will be made), or a directory that holds only fastcache's files; and
// whether this process can save it there. A directory holding anything
// else is refused, since a save replaces it whole. A probe file is made and
// removed where a save writes: in the directory above, where its renames
// happen, and in path itself, whose files it removes; so a state that
// cannot be saved is an error at start, not a surprise at the first save
// or at exit.
func CheckStatePath(path string) error {
	if err := checkStateContents(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state %s: cannot make the directory it goes in: %w", path, fserr.Plain(err))
	}
	if err := probe(filepath.Clean(path) + ".probe"); err != nil {
		return fmt.Errorf("state %s cannot be saved: this process cannot write in %s (%v)", path, dir, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		if err := probe(filepath.Join(path, ".outflow-probe")); err != nil {
			return fmt.Errorf("state %s cannot be saved: this process cannot write in it, as a save that replaces it must (%v)", path, err)
		}
	}
	return nil
}

// probe makes and removes a file.
func probe(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fserr.Plain(err)
	}
	f.Close()
	if err := os.Remove(path); err != nil {
		return fserr.Plain(err)
	}
	return nil
}

// checkStateContents is CheckStatePath without the probe, for each save.
func checkStateContents(path string) error {
	ents, err := os.ReadDir(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("state %s: %w", path, fserr.Plain(err))
	}
	var other []string
	for _, e := range ents {
		if !stateFile.MatchString(e.Name()) {
			other = append(other, e.Name())
		}
	}
	if len(other) > 0 {
		if len(other) > 3 {
			other = append(other[:3], "...")
		}
		return fmt.Errorf("state %s holds other files (%s): a save replaces the directory whole, so give the state a directory of its own",
			path, strings.Join(other, ", "))
	}
	return nil
}

// LoadState reads a state saved by Save. A missing or unreadable one is
// reported in err and an empty state returned, so training starts again
// rather than the sensor stopping; ErrNoState says there was none yet.
func LoadState(path string, maxBytes int) (*State, error) {
	recoverState(path)
	if _, err := os.Stat(path); err != nil {
		err = fserr.Plain(err)
		if errors.Is(err, os.ErrNotExist) {
			return NewState(maxBytes), fmt.Errorf("state %s: %w: none saved yet; training starts afresh", path, ErrNoState)
		}
		return NewState(maxBytes), fmt.Errorf("state %s: cannot read it: %w; training starts afresh", path, err)
	}
	// fastcache reads a directory without its data files as an empty
	// cache, which would restart training without a word.
	if _, err := os.Stat(filepath.Join(path, "metadata.bin")); err != nil {
		return NewState(maxBytes), fmt.Errorf("state %s is incomplete (no metadata.bin); training starts afresh", path)
	}
	if data, _ := filepath.Glob(filepath.Join(path, "data.*.bin")); len(data) == 0 {
		return NewState(maxBytes), fmt.Errorf("state %s is incomplete (no data files); training starts afresh", path)
	}
	c, err := loadCache(path, maxBytes)
	if err != nil {
		return NewState(maxBytes), fmt.Errorf("state %s: %v; training starts afresh", path, err)
	}
	return &State{c: c, maxBytes: maxBytes}, nil
}

// recoverState finishes or undoes a save a killed process left: PATH.old
// without PATH is the last whole state; PATH.saving holds a save that may
// not be whole, and fastcache's leftovers.
func recoverState(path string) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(path + ".old"); err == nil {
			_ = os.Rename(path+".old", path)
		}
	}
	_ = os.RemoveAll(path + ".saving")
	_ = os.RemoveAll(path + ".old")
}

// Save writes the state to path so that a kill at any moment leaves a
// whole state, the old or the new (see the top of this file).
func (s *State) Save(path string) error {
	if err := checkStateContents(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	saving := path + ".saving"
	_ = os.RemoveAll(saving)
	if err := os.Mkdir(saving, 0o750); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	defer os.RemoveAll(saving)
	staged := filepath.Join(saving, "state")
	if err := s.c.SaveToFile(staged); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	if err := syncDir(staged, true); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	old := path + ".old"
	_ = os.RemoveAll(old)
	hadOld := false
	if err := os.Rename(path, old); err == nil {
		hadOld = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state %s: %w", path, err)
	}
	if err := os.Rename(staged, path); err != nil {
		if hadOld {
			_ = os.Rename(old, path)
		}
		return fmt.Errorf("state %s: %w", path, err)
	}
	if err := syncDir(dir, false); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	return os.RemoveAll(old)
}

// syncDir syncs a directory, and with files the files in it, so renames
// and contents are on disk before the next step relies on them.
func syncDir(dir string, files bool) error {
	if files {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			f, err := os.Open(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			err = f.Sync()
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
