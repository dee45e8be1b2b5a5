// Package fserr words file-system errors for messages that name the file
// themselves: "flows.json: cannot open it: permission denied", not Go's
// "open flows.json: permission denied" inside another sentence.
package fserr

import (
	"errors"
	"os"
)

// Plain drops the operation and path of an *os.PathError (or
// *os.LinkError's), leaving the reason; other errors are returned as
// they are.
func Plain(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
