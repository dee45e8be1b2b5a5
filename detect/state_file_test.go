package detect

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func filled(t *testing.T, n int) *State {
	t.Helper()
	st := NewState(32 << 20)
	for i := 0; i < n; i++ {
		st.set(fmt.Sprintf("k%d", i), forever, []byte("value"))
	}
	return st
}

// A state directory that holds anything else is refused, at start and at
// save, and nothing in it is touched.
func TestStatePathOfItsOwn(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "outflow.yaml"), []byte("HomeNets: []\n"), 0o644)
	err := CheckStatePath(dir)
	if err == nil || !strings.Contains(err.Error(), "outflow.yaml") || !strings.Contains(err.Error(), "a directory of its own") {
		t.Fatalf("%v", err)
	}
	if err := filled(t, 10).Save(dir); err == nil {
		t.Fatal("saved over a shared directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "outflow.yaml")); err != nil {
		t.Fatalf("the other file is gone: %v", err)
	}
	state := filepath.Join(dir, "state")
	if err := filled(t, 10).Save(state); err != nil {
		t.Fatal(err)
	}
	if err := CheckStatePath(state); err != nil {
		t.Fatalf("a saved state is refused: %v", err)
	}
}

// A save killed between its renames leaves PATH.old, which the next start
// takes back; a half-written PATH.saving is dropped.
func TestStateRecoversAnInterruptedSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := filled(t, 100).Save(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(path+".saving", "state"), 0o750)
	os.WriteFile(filepath.Join(path+".saving", "state", "metadata.bin"), []byte("half"), 0o640)
	st, err := LoadState(path, 32<<20)
	if err != nil || st.Entries() != 100 {
		t.Fatalf("entries %d, %v", st.Entries(), err)
	}
	for _, p := range []string{path + ".old", path + ".saving"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", p)
		}
	}
}

// TestStateSurvivesKill saves in a child process over and over and kills
// it at random moments: every time, the state that loads is whole (the
// old one or the new), and nothing is left beside it.
func TestStateSurvivesKill(t *testing.T) {
	if path := os.Getenv("OUTFLOW_STATE_SAVER"); path != "" {
		for i := 0; ; i++ {
			if err := filled(t, 2000+i%2).Save(path); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "state")
	if err := filled(t, 2000).Save(path); err != nil {
		t.Fatal(err)
	}
	kills := 200 // the issue asks at least 200; OUTFLOW_STATE_KILLS sets more
	if n, err := strconv.Atoi(os.Getenv("OUTFLOW_STATE_KILLS")); err == nil && n > 0 {
		kills = n
	}
	for try := 0; try < kills; try++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestStateSurvivesKill$")
		cmd.Env = append(os.Environ(), "OUTFLOW_STATE_SAVER="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+(try*7)%150) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		st, err := LoadState(path, 32<<20)
		if err != nil || (st.Entries() != 2000 && st.Entries() != 2001) {
			t.Fatalf("try %d: %d entries, %v", try, st.Entries(), err)
		}
		// Nothing beside the state: no half save, no temporary directory.
		ents, _ := os.ReadDir(filepath.Dir(path))
		if len(ents) != 1 || ents[0].Name() != "state" {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("try %d: the directory holds %v", try, names)
		}
	}
}

// A state missing its data files is reported, never loaded as empty
// without a word.
func TestStateIncompleteIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := filled(t, 10).Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ := filepath.Glob(filepath.Join(path, "data.*.bin"))
	for _, d := range data {
		os.Remove(d)
	}
	if _, err := LoadState(path, 32<<20); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("%v", err)
	}
}
