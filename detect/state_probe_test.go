package detect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readOnlyDir makes dir read-only for this process: a read-only tmpfs
// mounted on it where the test runs as root (root writes through any
// mode), its mode otherwise. It reports false when neither is possible.
func readOnlyDir(t *testing.T, dir string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		os.Chmod(dir, 0o555)
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return true
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Logf("mount: %v %s", err, out)
		return false
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return true
}

// TestStatePathUnwritable: a state that could not be saved is refused by
// CheckStatePath, naming the state and where it cannot write, with the
// kernel's reason: the directory it goes in, or the state directory itself.
func TestStatePathUnwritable(t *testing.T) {
	for _, c := range []struct {
		name string
		ro   func(t *testing.T, base string) string // makes a read-only place, returns the state path
		want string
	}{
		{"the directory above", func(t *testing.T, base string) string {
			ro := filepath.Join(base, "ro")
			os.Mkdir(ro, 0o755)
			if !readOnlyDir(t, ro) {
				return ""
			}
			return filepath.Join(ro, "state")
		}, "cannot write in "},
		{"the state directory", func(t *testing.T, base string) string {
			state := filepath.Join(base, "state")
			os.Mkdir(state, 0o755)
			if !readOnlyDir(t, state) {
				return ""
			}
			return state
		}, "cannot write in it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := c.ro(t, t.TempDir())
			if state == "" {
				if os.Getenv("CI") == "true" {
					t.Fatal("cannot make a read-only directory (mount -t tmpfs -o ro)")
				}
				t.Skip("SKIPPED — cannot make a read-only directory here (in CI this fails)")
			}
			err := CheckStatePath(state)
			if err == nil || !strings.HasPrefix(err.Error(), "state "+state+" cannot be saved") || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), "read-only file system") && !strings.Contains(err.Error(), "permission denied") {
				t.Fatalf("%v", err)
			}
		})
	}
	// A writable place passes, and the probes leave nothing behind.
	base := t.TempDir()
	state := filepath.Join(base, "state")
	if err := filled(t, 10).Save(state); err != nil {
		t.Fatal(err)
	}
	if err := CheckStatePath(state); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base, state} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.Contains(e.Name(), "probe") {
				t.Errorf("%s left in %s", e.Name(), d)
			}
		}
	}
}
