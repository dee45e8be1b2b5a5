//go:build unix

package privdrop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrusted: files and directories that only their owner and root can
// change pass; one writable by its group or by all, below such a
// directory, owned by another user, or reached through another user's
// link is refused with a sentence naming it.
func TestTrusted(t *testing.T) {
	d := t.TempDir() // below /tmp, which is writable by all but sticky
	good := filepath.Join(d, "outflow.yaml")
	os.WriteFile(good, []byte("x"), 0o644)
	if err := Trusted(good); err != nil {
		t.Fatalf("a file of the user's in a directory of its own: %v", err)
	}
	if err := Trusted(filepath.Join(d, "not-yet")); err != nil {
		t.Errorf("a path that does not exist yet, below trusted directories: %v", err)
	}

	world := filepath.Join(d, "world.yaml")
	os.WriteFile(world, []byte("x"), 0o644)
	os.Chmod(world, 0o666)
	group := filepath.Join(d, "group.yaml")
	os.WriteFile(group, []byte("x"), 0o644)
	os.Chmod(group, 0o664)
	open := filepath.Join(d, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o777)
	below := filepath.Join(open, "outflow.yaml")
	os.WriteFile(below, []byte("x"), 0o644)
	sticky := filepath.Join(d, "sticky")
	os.Mkdir(sticky, 0o755)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	inSticky := filepath.Join(sticky, "outflow.yaml")
	os.WriteFile(inSticky, []byte("x"), 0o600)
	if err := Trusted(inSticky); err != nil {
		t.Errorf("a file of the user's in a sticky directory: %v", err)
	}
	for _, c := range []struct{ path, want string }{
		{world, world + " is writable by every user (mode 0666)"},
		{group, group + " is writable by its group"},
		{below, below + ": its directory " + open + " is writable by every user (mode 0777)"},
	} {
		err := Trusted(c.path)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q...", c.path, err, c.want)
		}
	}

	if os.Geteuid() != 0 {
		t.Log("not root: files of other users are not tried")
		return
	}
	theirs := filepath.Join(d, "theirs.yaml")
	os.WriteFile(theirs, []byte("x"), 0o644)
	os.Chown(theirs, 65534, 65534)
	if err := Trusted(theirs); err == nil || !strings.HasPrefix(err.Error(), theirs+" is owned by uid 65534") {
		t.Errorf("a file of another user's: %v", err)
	}
	if err := Trusted(theirs, 65534); err != nil {
		t.Errorf("a file of an owner named as allowed: %v", err)
	}
	link := filepath.Join(d, "link.yaml")
	os.Symlink(good, link)
	os.Lchown(link, 65534, 65534)
	if err := Trusted(link); err == nil || !strings.HasPrefix(err.Error(), link+" is owned by uid 65534") {
		t.Errorf("a link of another user's to a good file: %v", err)
	}
	// A good link to a file below an open directory: the target is judged.
	link2 := filepath.Join(d, "link2.yaml")
	os.Symlink(below, link2)
	if err := Trusted(link2); err == nil || !strings.Contains(err.Error(), "its directory "+open) {
		t.Errorf("a link to a file in a directory writable by all: %v", err)
	}
}
