package entropy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExamine runs every structure parser (Examine dispatches on the first
// bytes) on arbitrary prefixes, and then the whole Counter path: no panic,
// and a verdict is one of the documented pairs.
func FuzzExamine(f *testing.F) {
	f.Add([]byte("Salted__12345678"))
	f.Add([]byte{0x8c, 0x0d, 0x04, 0x09, 0x03, 0x02})
	f.Add(append([]byte{}, magicZstd...))
	f.Add(append([]byte{}, magicXz...))
	f.Add(append([]byte{}, magic7z...))
	var x Examiner
	f.Fuzz(func(t *testing.T, b []byte) {
		p := b[:min(len(b), PrefixBytes)]
		v := x.Examine(p)
		if v.Reason == ByStatistics && v.Class != Unknown {
			t.Fatalf("%x: class %v without a reason", b, v.Class)
		}
		if v.Header < 0 || v.Header > len(p) {
			t.Fatalf("%x: a header of %d bytes in a prefix of %d", b, v.Header, len(p))
		}
		var c Counter
		c.Reset(4096)
		c.Add(b)
		c.Judge(&x)
	})
}

var writeSeeds = flag.Bool("seeds", false, "rewrite testdata/fuzz/FuzzExamine from the Debian tools' files")

// TestFuzzSeeds rewrites the committed seed corpus, the first KiB of each
// real tool's file, with -seeds.
func TestFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -seeds to rewrite the fuzz seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzExamine")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range toolFiles(t) {
		name := strings.NewReplacer(" ", "-", "/", "-").Replace(f.name)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", f.data[:min(len(f.data), PrefixBytes)])
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
