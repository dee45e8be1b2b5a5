//go:build linux

package privdrop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"github.com/outflow-sensor/outflow/internal/fserr"
	"golang.org/x/sys/unix"
)

// Prepare makes and checks every path of needs as u would: what is missing
// is made by u, so that it is u's (a file output root made now could not be
// reopened by u on SIGHUP), and what exists must be open to u. It returns
// one sentence per path that is not, naming it, before anything is opened;
// then nothing is made.
//
// The checks run on a thread of their own that takes u's groups, gid and
// uid, and only it: the rest of the process stays root until Drop. The
// thread's goroutine stays locked to it and ends, so the Go runtime ends
// the thread with it and never runs another goroutine there; a thread it
// starts meanwhile is cloned from a clean one, never from this one.
func (u *User) Prepare(needs []Need) error {
	euid := os.Geteuid()
	if euid != 0 {
		if euid != u.UID {
			return u.needRoot(euid)
		}
		return check(u, needs) // already the user
	}
	var err error
	onThreadThatEnds(func() {
		if err = becomeOnThread(u); err != nil {
			err = fmt.Errorf("cannot check files as user %s: %v", u.Name, err)
			return
		}
		err = check(u, needs)
	})
	return err
}

// onThreadThatEnds runs f on a thread that ends when f returns: its
// goroutine locks it and never unlocks it. The main thread cannot end (the
// runtime parks it for ever instead), so a goroutine that finds itself
// there keeps it locked while another goroutine, which therefore runs
// elsewhere, calls f; then it unlocks the main thread, untouched.
func onThreadThatEnds(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			onThreadThatEnds(f)
			runtime.UnlockOSThread()
			return
		}
		f()
	}()
	<-done
}

func (u *User) needRoot(euid int) error {
	return fmt.Errorf("switching to user %s needs root: outflow runs as uid %d (leave the user out to run as uid %d)", u.Name, euid, euid)
}

// becomeOnThread gives the calling thread, and no other, u's groups, gid
// and uid. Raw system calls, not the syscall package's, which change every
// thread of the process.
func becomeOnThread(u *User) error {
	gids := make([]uint32, len(u.Groups))
	for i, g := range u.Groups {
		gids[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	if _, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(gids)), uintptr(p), 0); e != 0 {
		return e
	}
	if _, _, e := unix.RawSyscall(sysSetresgid, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return e
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return e
	}
	runtime.KeepAlive(gids)
	return nil
}

// check does what each need says as the calling thread's user, in two
// passes: the first judges every path and makes nothing, so a start that
// is refused leaves nothing behind; the second makes what is missing.
// access(2) judges with the thread's real ids, which are u's here: ACLs
// and read-only mounts are judged as a write would be.
func check(u *User, needs []Need) error {
	var errs []error
	for _, n := range needs {
		err := checkOne(n)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist) && n.Access == Append:
			errs = append(errs, fmt.Errorf("%s %s: its directory %s does not exist", n.What, n.Path, filepath.Dir(n.Path)))
		default:
			errs = append(errs, fmt.Errorf("%s %s: user %s cannot %s it (%v)", n.What, n.Path, u.Name, n.Access.verb(), fserr.Plain(err)))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, n := range needs {
		if err := makeOne(n); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: user %s cannot make it (%v)", n.What, n.Path, u.Name, fserr.Plain(err)))
		}
	}
	return errors.Join(errs...)
}

// checkOne judges one need, making nothing: a missing file or directory
// is judged by the directory it would be made in.
func checkOne(n Need) error {
	fi, err := os.Stat(n.Path)
	if errors.Is(err, fs.ErrNotExist) && n.Access != Read {
		if n.Access == Append {
			return unix.Access(filepath.Dir(n.Path), unix.W_OK|unix.X_OK)
		}
		// MkdirAll makes every missing directory, from the first that
		// exists.
		p := filepath.Dir(n.Path)
		for {
			if _, err := os.Stat(p); err == nil || filepath.Dir(p) == p {
				return unix.Access(p, unix.W_OK|unix.X_OK)
			}
			p = filepath.Dir(p)
		}
	}
	if err != nil {
		return err
	}
	switch {
	case n.Access == Read && fi.IsDir():
		return unix.Access(n.Path, unix.R_OK|unix.X_OK)
	case n.Access == Read:
		return unix.Access(n.Path, unix.R_OK)
	case n.Access == Append:
		return unix.Access(n.Path, unix.W_OK)
	}
	if err := unix.Access(n.Path, unix.W_OK|unix.X_OK|unix.R_OK); err != nil {
		return err
	}
	if n.Access != WriteAll {
		return nil
	}
	ents, err := os.ReadDir(n.Path)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := unix.Access(filepath.Join(n.Path, e.Name()), unix.R_OK|unix.W_OK); err != nil {
			return fmt.Errorf("%s in it: %v", e.Name(), err)
		}
	}
	return nil
}

// makeOne makes what a need names when it is missing, as the user.
func makeOne(n Need) error {
	switch n.Access {
	case Read:
		return nil
	case Append:
		mode := n.Mode
		if mode == 0 {
			mode = 0o640
		}
		// O_APPEND without a write: an existing file is left as it is.
		f, err := os.OpenFile(n.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fs.FileMode(mode))
		if err != nil {
			return err
		}
		return f.Close()
	}
	mode := n.Mode
	if mode == 0 {
		mode = 0o750
	}
	return os.MkdirAll(n.Path, fs.FileMode(mode))
}
