package feed

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/outflow-sensor/outflow/internal/fserr"
)

// tokenFile is the bearer token a listener requires, read from its file
// and read again when the file changes (looked at once a second at most),
// so a token is rotated by replacing the file, without a restart. A file
// that cannot be read, or holds nothing, keeps the token it held.
type tokenFile struct {
	path    string
	mu      sync.Mutex
	digest  [32]byte // SHA-256 of the token
	mod     time.Time
	size    int64
	checked time.Time
}

// loadToken reads the token file; its errors name the option.
func loadToken(path string) (*tokenFile, error) {
	t := &tokenFile{path: path}
	fi, err := os.Stat(path)
	if err == nil {
		err = t.read(fi)
	}
	if err != nil {
		return nil, fmt.Errorf("option token_file: %s: cannot read it: %w", path, fserr.Plain(err))
	}
	if t.digest == ([32]byte{}) {
		return nil, fmt.Errorf("option token_file: %s holds no token", path)
	}
	t.checked = time.Now()
	return t, nil
}

// read takes the file's token, when it holds one.
func (t *tokenFile) read(fi os.FileInfo) error {
	b, err := os.ReadFile(t.path)
	if err != nil {
		return err
	}
	t.mod, t.size = fi.ModTime(), fi.Size()
	if tok := bytes.TrimSpace(b); len(tok) > 0 {
		t.digest = sha256.Sum256(tok)
	}
	return nil
}

// current is the token's digest now.
func (t *tokenFile) current() [32]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := time.Now(); now.Sub(t.checked) >= time.Second {
		t.checked = now
		if fi, err := os.Stat(t.path); err == nil && (!fi.ModTime().Equal(t.mod) || fi.Size() != t.size) {
			_ = t.read(fi)
		}
	}
	return t.digest
}
