// Package privdrop lets a sensor started as root give root up once its
// capture sockets and listeners are open: Prepare makes and checks, as the
// user it will become, every file it writes later; Drop becomes that user
// on every thread, with no capability left. Trusted refuses a config or a
// state that someone other than its owner and root could change, as
// OpenSSH's StrictModes refuses an authorized_keys file.
package privdrop

import (
	"fmt"
	"os/user"
	"strconv"
)

// User is who the process becomes.
type User struct {
	Name string
	UID  int
	GID  int
	// Groups are the supplementary groups of the user, its primary group
	// among them, as login would give them.
	Groups []int
}

// Lookup finds a user by name, or by number.
func Lookup(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q does not exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin %s) or name another", name, name)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has uid %q and gid %q, which are not numbers", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %q is root: name the unprivileged user to run as once the sockets are open", name)
	}
	out := &User{Name: u.Username, UID: uid, GID: gid, Groups: []int{gid}}
	// A user whose groups cannot be listed keeps its primary group only:
	// fewer rights, never more.
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != gid {
				out.Groups = append(out.Groups, g)
			}
		}
	}
	return out, nil
}

// String names the user for messages: outflow (uid 998, gid 998).
func (u *User) String() string {
	return fmt.Sprintf("%s (uid %d, gid %d)", u.Name, u.UID, u.GID)
}

// Access is what the process does with a path once it is the user.
type Access int

const (
	// Read: a file read (a config reloaded on SIGHUP, a followed file),
	// or a directory listed.
	Read Access = iota
	// Append: a file appended to and reopened on SIGHUP; made, empty,
	// when missing, so that it is the user's.
	Append
	// Write: a directory whose files are made, renamed and removed (where
	// a file output rotates, where the state is saved); made when missing.
	Write
	// WriteAll: Write, and every file already in the directory is read
	// and written too (a spool's segments).
	WriteAll
)

// Need is one path the process uses after the drop.
type Need struct {
	// What names the path for the user: the flag or config key.
	What   string
	Path   string
	Access Access
	// Mode is the permission of what Prepare makes (default 0640 for a
	// file, 0750 for a directory).
	Mode uint32
}

func (a Access) verb() string {
	switch a {
	case Read:
		return "read"
	case Append:
		return "write"
	}
	return "write in"
}
