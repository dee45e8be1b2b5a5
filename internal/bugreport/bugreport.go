// Package bugreport keeps the input a parser failed on, so a bug that some
// frame, datagram or record reached can be reported and reproduced. The
// sensor survives such a failure (it is counted and the input is skipped);
// what is kept is bounded, per report and in all, because the input comes
// from the network and an attacker who found the bug can repeat it.
package bugreport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// MaxInput is how much of one input a report keeps: a frame is at most a
// snap length, a datagram 64 KiB, a record is cut.
const MaxInput = 64 << 10

// DefaultMaxBytes bounds what one run writes to its directory.
const DefaultMaxBytes = 16 << 20

// Dir is a directory of reports. A nil *Dir keeps nothing: Save returns
// "" and the caller's log line is the only trace.
type Dir struct {
	path string
	max  int64

	mu      sync.Mutex
	used    int64
	seq     int
	saved   uint64
	unsaved uint64
}

// Open makes path (mode 0700: inputs may carry others' traffic) and
// returns a Dir that writes at most maxBytes there (0: DefaultMaxBytes).
func Open(path string, maxBytes int64) (*Dir, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("bug reports: %w", err)
	}
	return &Dir{path: path, max: maxBytes}, nil
}

// Report is one failure: where the input came from, what failed (the
// panic's value), the stack, and the input.
type Report struct {
	Source string // "live eth0", "flow listener 127.0.0.1:2055 from 10.0.0.1", "host events syslog+tcp://..."
	What   string
	Stack  []byte
	// Input is the bytes the parser failed on; with LinkType set it is a
	// frame, written as a one-packet pcap that replay reads back.
	Input    []byte
	LinkType uint16
	Frame    bool
	Time     time.Time
}

// Save writes r as NAME.txt (source, failure, stack, input size) and
// NAME.pcap or NAME.bin (the input, cut to MaxInput), and returns the
// .txt's path. Past the directory's budget nothing is written; that is
// counted, and Save returns "" and no error.
func (d *Dir) Save(r Report) (string, error) {
	if d == nil {
		return "", nil
	}
	in := r.Input[:min(len(r.Input), MaxInput)]
	text := fmt.Sprintf("source: %s\nfailure: %s\ninput: %d bytes (%d kept)\n\n%s", r.Source, r.What, len(r.Input), len(in), r.Stack)
	cost := int64(len(text) + len(in) + 64)
	d.mu.Lock()
	if d.used+cost > d.max {
		d.unsaved++
		d.mu.Unlock()
		return "", nil
	}
	d.used += cost
	d.seq++
	seq := d.seq
	d.mu.Unlock()
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	name := filepath.Join(d.path, fmt.Sprintf("%s-%d-%04d-%s", r.Time.UTC().Format("20060102T150405Z"), os.Getpid(), seq, slug(r.Source)))
	var err error
	if r.Frame {
		err = writeFrame(name+".pcap", in, len(r.Input), r.LinkType, r.Time)
	} else {
		err = os.WriteFile(name+".bin", in, 0o600)
	}
	if err == nil {
		err = os.WriteFile(name+".txt", []byte(text), 0o600)
	}
	d.mu.Lock()
	if err != nil {
		d.unsaved++
	} else {
		d.saved++
	}
	d.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("bug report: %w", err)
	}
	return name + ".txt", nil
}

// Counts returns how many reports were saved and how many were not (the
// budget was spent or the write failed).
func (d *Dir) Counts() (saved, unsaved uint64) {
	if d == nil {
		return 0, 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.saved, d.unsaved
}

func writeFrame(path string, frame []byte, wire int, lt uint16, ts time.Time) error {
	var b bytes.Buffer
	w := pcapgo.NewWriterNanos(&b)
	if err := w.WriteFileHeader(MaxInput, layers.LinkType(lt)); err != nil {
		return err
	}
	// gopacket keeps a link type in a byte; SLL2 is 276. The header's
	// field is 32 bits wide.
	binary.LittleEndian.PutUint32(b.Bytes()[20:24], uint32(lt))
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: max(wire, len(frame))}
	if err := w.WritePacket(ci, frame); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// slug makes a source's name safe and short for a file name.
func slug(s string) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len() >= 40 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
