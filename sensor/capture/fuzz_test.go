package capture

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFileSource reads arbitrary bytes as a capture file: it must end with
// io.EOF or an *Error, never panic, and never run away.
func FuzzFileSource(f *testing.F) {
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		path := filepath.Join(dir, "fuzz.pcap")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(path)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("open: %v is not an *Error", err)
			}
			return
		}
		defer s.Close()
		var p Packet
		for i := 0; ; i++ {
			err := s.Next(&p)
			if err == io.EOF {
				return
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("next: %v is not an *Error", err)
				}
				return
			}
			if i > len(data) {
				t.Fatalf("%d frames from %d bytes", i, len(data))
			}
		}
	})
}
