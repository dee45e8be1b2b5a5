//go:build unix

package privdrop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// Trusted refuses a file or directory that someone other than its owner
// and root could change, as OpenSSH's StrictModes does: the path, every
// directory above it, and every symbolic link on the way must belong to
// root, to the user this process runs as, or to one of owners, and none may
// be writable by its group or by others. A directory with the sticky bit
// (/tmp) may be writable by all: there no one can rename or remove what
// another user owns. A path that does not exist yet is judged by the
// directories above it that do.
//
// The error is one sentence that starts with the path, so that the caller
// can put the flag or key before it.
func Trusted(path string, owners ...int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	owners = append(owners, 0, os.Geteuid())
	if err := trustedChain(path, abs, owners); err != nil {
		return err
	}
	// The links on the way were judged above; where they lead is judged
	// here.
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		return trustedChain(path, real, owners)
	}
	return nil
}

// trustedChain judges p and every directory above it, without following
// a link at p itself.
func trustedChain(path, p string, owners []int) error {
	leaf := p
	for {
		fi, err := os.Lstat(p)
		switch {
		case err == nil:
			if err := judge(path, p, p == leaf, fi, owners); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s: cannot check who may change %s: %v", path, p, fserr.Plain(err))
		}
		up := filepath.Dir(p)
		if up == p {
			return nil
		}
		p = up
	}
}

func judge(path, p string, leaf bool, fi fs.FileInfo, owners []int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	subject := path
	if !leaf {
		kind := "its directory"
		if fi.Mode()&fs.ModeSymlink != 0 {
			kind = "the link"
		}
		subject = fmt.Sprintf("%s: %s %s", path, kind, p)
	}
	if uid := int(st.Uid); !slices.Contains(owners, uid) {
		return fmt.Errorf("%s is owned by %s, not by root or the user outflow runs as (%s), who alone may be able to change it: chown root %s",
			subject, userName(uid), userName(os.Geteuid()), p)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil // a link's own mode means nothing
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 || fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 {
		return nil
	}
	who := "every user"
	if perm&0o002 == 0 {
		who = "its group " + groupName(int(st.Gid))
	}
	return fmt.Errorf("%s is writable by %s (mode %04o), so someone other than its owner and root could change what outflow does: chmod go-w %s",
		subject, who, perm, p)
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}
