package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// The names a spool writes in its directory; anything else there was put
// by someone else, and Open refuses the directory rather than share it.
const (
	cursorName = "cursor"
	cursorTemp = "cursor.tmp" // the next cursor, before its rename
	lockName   = "lock"
	segSuffix  = ".seg"
	segDigits  = 20 // a uint64 in decimal, zero-padded, so names sort as ids do
)

func segName(id uint64) string { return fmt.Sprintf("%0*d%s", segDigits, id, segSuffix) }

func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	return id, err == nil
}

// listDir returns the segment ids in dir in order, and refuses a
// directory holding anything the spool did not write.
func listDir(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool %s: cannot list it: %w", dir, fserr.Plain(err))
	}
	var ids []uint64
	for _, e := range ents { // sorted by name, hence by id
		name := e.Name()
		id, isSeg := parseSegName(name)
		ours := isSeg || name == cursorName || name == cursorTemp || name == lockName
		if !ours || !e.Type().IsRegular() {
			return nil, fmt.Errorf("spool %s holds %s, which Outflow did not write: give the spool a directory of its own", dir, name)
		}
		if isSeg {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// syncDir makes a directory's entries (a created segment, a renamed
// cursor) durable. Windows cannot sync a directory, and makes renames
// durable by itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeTemp removes the cursor a crash left half written: the rename
// that would have made it the cursor never happened.
func removeTemp(dir string) error {
	err := os.Remove(filepath.Join(dir, cursorTemp))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("spool %s: cannot remove its unfinished %s: %w", dir, cursorTemp, fserr.Plain(err))
	}
	return nil
}
