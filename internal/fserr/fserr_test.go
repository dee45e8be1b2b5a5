package fserr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPlain(t *testing.T) {
	_, err := os.Open(filepath.Join(t.TempDir(), "missing"))
	if got := Plain(err); !errors.Is(got, os.ErrNotExist) || got.Error() != "no such file or directory" {
		t.Errorf("%v", got)
	}
	other := errors.New("x")
	if Plain(other) != other {
		t.Error("other errors change")
	}
}
