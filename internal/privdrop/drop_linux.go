//go:build linux

package privdrop

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Drop makes the process u for good, on every thread: supplementary
// groups, then gid, then uid (Go's syscall package changes every thread's
// credentials, as glibc does with cgo). Leaving uid 0 for good clears the
// permitted, effective and ambient capabilities, so nothing is kept: the
// sockets already open go on working, and nothing needs reopening (an
// interface that goes away stops its capture, logged, and a restart
// captures again). Drop then reads every thread's status from /proc and
// fails unless each runs as u with no capability.
//
// A process that is already u (systemd's User=) has nothing to give up
// here: the unit's capabilities are its bounding set. A process that is
// another user cannot become u.
func Drop(u *User) error {
	if euid := os.Geteuid(); euid != 0 {
		if euid != u.UID {
			return u.needRoot(euid)
		}
		return nil
	}
	if err := syscall.Setgroups(u.Groups); err != nil {
		return fmt.Errorf("cannot take the groups of user %s: %v", u.Name, err)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return fmt.Errorf("cannot take the group id of user %s: %v", u.Name, err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return fmt.Errorf("cannot become user %s: %v", u.Name, err)
	}
	return Verify(u)
}

// Verify reads /proc/self/task/*/status and says whether every thread runs
// as u (real, effective, saved and file-system ids) with no permitted,
// effective or ambient capability.
func Verify(u *User) error {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		return fmt.Errorf("cannot read the threads' status in /proc to check the switch to user %s", u.Name)
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		st := parseStatus(b)
		want := strings.Repeat(strconv.Itoa(u.UID)+" ", 4)
		wantG := strings.Repeat(strconv.Itoa(u.GID)+" ", 4)
		switch {
		case st["Uid"]+" " != want:
			return fmt.Errorf("thread %s still runs with uids %s after the switch to user %s", filepath.Base(filepath.Dir(p)), st["Uid"], u.Name)
		case st["Gid"]+" " != wantG:
			return fmt.Errorf("thread %s still runs with gids %s after the switch to user %s", filepath.Base(filepath.Dir(p)), st["Gid"], u.Name)
		}
		for _, k := range []string{"CapPrm", "CapEff", "CapAmb"} {
			if v, ok := st[k]; ok && strings.Trim(v, "0") != "" {
				return fmt.Errorf("thread %s kept capabilities (%s %s) after the switch to user %s", filepath.Base(filepath.Dir(p)), k, v, u.Name)
			}
		}
	}
	return nil
}

// parseStatus reads the "Key:\tvalue" lines of a /proc status file; a
// value's tabs become single spaces ("Uid: 998 998 998 998").
func parseStatus(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}
