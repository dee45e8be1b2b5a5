package sensor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestReplayFileShrinks: a capture cut short while it is replayed (a
// tcpdump -W ring overwriting its oldest file), mapped and inspected in
// place by two workers: the replay ends that file with an error naming it,
// writes what it read, and the process lives (it used to die of SIGBUS).
func TestReplayFileShrinks(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "pcaps", "outflow-demo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ring0.pcap")
	os.WriteFile(path, src, 0o644)
	var once sync.Once
	var out, errs bytes.Buffer
	st, err := Replay(context.Background(), ReplayConfig{Files: []string{path}, Workers: 2, Table: inspectConfig(),
		Flows: &out, Errors: &errs,
		Progress: func(done, total int64, packets uint64, active int) {
			once.Do(func() { os.Truncate(path, 4096) })
		}})
	if err != nil {
		t.Fatal(err)
	}
	if st.FileErrors != 1 || !strings.Contains(errs.String(), "shrank") || !strings.Contains(errs.String(), path) {
		t.Fatalf("file errors %d, log:\n%s", st.FileErrors, errs.String())
	}
	if st.Frames == 0 || st.Frames >= 7964 {
		t.Errorf("%d frames read of the 7964 the whole file holds", st.Frames)
	}
	t.Logf("%d frames read, %d records, %d packets lost in the workers", st.Frames, st.Records, st.Faulted)
}
