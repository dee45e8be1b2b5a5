package sensor

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/flows"
)

// inspectConfig is the default table with inspection on.
func inspectConfig() flows.Config {
	c := flows.DefaultConfig()
	c.Inspect = flows.DefaultInspectConfig()
	return c
}

// syncBuf is a buffer several goroutines write.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunDirectory: a watched directory reads a capture once it has
// stopped growing, with the records `replay` makes of it, and logs a
// statistics line per source while it runs.
func TestRunDirectory(t *testing.T) {
	demo := filepath.Join("..", "pcaps", "outflow-demo.pcap")
	var want bytes.Buffer
	if _, err := Replay(context.Background(), ReplayConfig{Files: []string{demo}, Table: inspectConfig(), Flows: &want}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rc := DefaultRunConfig()
	rc.Detect = detect.Compiled()
	rc.Sources.Directories = []DirectoryConfig{{Path: dir, Pattern: "*.pcap", Settle: detect.Duration(300 * time.Millisecond)}}
	rc.Logging.StatsInterval = detect.Duration(100 * time.Millisecond)
	var out, logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan RunStats)
	go func() {
		st, err := Run(ctx, &rc, RunOptions{Flows: &out, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	// A capture written in two halves, the second after a pause longer
	// than the poll: it must not be read half.
	data, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "a.pcap")
	os.WriteFile(part, data[:len(data)/2], 0o644)
	time.Sleep(200 * time.Millisecond)
	f, _ := os.OpenFile(part, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(data[len(data)/2:])
	f.Close()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a capture, not matched"), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < strings.Count(want.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, %d records of %d", strings.Count(out.String(), "\n"), strings.Count(want.String(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // read once: no second copy comes
	cancel()
	st := <-done
	if out.String() != want.String() {
		t.Errorf("the watched directory's records differ from replay's")
	}
	if len(st.Directories) != 1 || st.Directories[0].Files != 1 || st.Directories[0].FileErrors != 0 {
		t.Errorf("%+v", st.Directories)
	}
	if !strings.Contains(logs.String(), "msg=statistics source=directory") || !strings.Contains(logs.String(), "files=1") {
		t.Errorf("no statistics line:\n%s", logs.String())
	}
}

// TestListenersDefaultToLoopback: a flow listener given no host binds the
// loopback address only.
func TestListenersDefaultToLoopback(t *testing.T) {
	var got []net.Addr
	st, err := Collect(canceled(), CollectConfig{Listen: []string{"netflow://:0", "sflow://:0"},
		Ready: func(a []net.Addr) { got = a }})
	if err != nil {
		t.Fatal(err)
	}
	_ = st
	if len(got) != 2 {
		t.Fatalf("%v", got)
	}
	for _, a := range got {
		if ua, ok := a.(*net.UDPAddr); !ok || !ua.IP.IsLoopback() {
			t.Errorf("bound %v", a)
		}
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
