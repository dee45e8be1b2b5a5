package sensor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/outflow-sensor/outflow/detect"
	"github.com/outflow-sensor/outflow/flows"
	"github.com/outflow-sensor/outflow/internal/synth"
)

// writePcap stores frames as a capture file for the benchmarks, one
// microsecond apart.
func writePcap(b *testing.B, frames [][]byte) string {
	return writePcapSpaced(b, frames, time.Microsecond)
}

// writePcapSpaced stores frames gap apart. With OUTFLOW_KEEP_PCAP set to
// a directory, the file is also copied there (bench-GAP.pcap), for timing
// the binary on it.
func writePcapSpaced(b *testing.B, frames [][]byte, gap time.Duration) string {
	path := filepath.Join(b.TempDir(), "bench.pcap")
	defer func() {
		if keep := os.Getenv("OUTFLOW_KEEP_PCAP"); keep != "" {
			if data, err := os.ReadFile(path); err == nil {
				_ = os.WriteFile(filepath.Join(keep, "bench-"+gap.String()+".pcap"), data, 0o644)
			}
		}
	}()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		b.Fatal(err)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * gap), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchReplay(b *testing.B, path string, workers int) {
	benchReplayWith(b, path, workers, flows.DefaultConfig())
}

func benchReplayWith(b *testing.B, path string, workers int, table flows.Config) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Skipf("no capture %s: %v", path, err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	var frames uint64
	for i := 0; i < b.N; i++ {
		st, err := Replay(context.Background(), ReplayConfig{
			Files: []string{path}, Workers: workers, Table: table, Flows: io.Discard,
		})
		if err != nil {
			b.Fatal(err)
		}
		frames = st.Frames
	}
	b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkReplaySmall: a file of ~1M small packets in short flows, read,
// decoded, tracked and written as JSON, end to end.
func BenchmarkReplaySmall(b *testing.B) {
	path := writePcap(b, synth.Frames(1<<20/7, 6))
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) { benchReplay(b, path, w) })
	}
}

// BenchmarkReplayLarge: one bulk transfer in full-size segments.
func BenchmarkReplayLarge(b *testing.B) {
	path := writePcap(b, synth.Bulk(200000, 1448))
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) { benchReplay(b, path, w) })
	}
}

// BenchmarkReplayDemo: the bundled recording of real programs.
func BenchmarkReplayDemo(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) {
			benchReplay(b, filepath.Join("..", "pcaps", "outflow-demo.pcap"), w)
		})
	}
}

// BenchmarkReplayInspect: the same replays with payload inspection off and
// on, one worker, to measure what inspection adds.
func BenchmarkReplayInspect(b *testing.B) {
	inspect := flows.DefaultConfig()
	inspect.Inspect = flows.DefaultInspectConfig()
	for _, c := range []struct {
		name string
		path func(*testing.B) string
	}{
		{"demo", func(*testing.B) string { return filepath.Join("..", "pcaps", "outflow-demo.pcap") }},
		{"large", func(b *testing.B) string { return writePcap(b, synth.Bulk(200000, 1448)) }},
		{"small", func(b *testing.B) string { return writePcap(b, synth.Frames(1<<20/7, 6)) }},
	} {
		// The file is written once, outside the timed runs, on first use.
		path := ""
		get := func() string {
			if path == "" {
				path = c.path(b)
			}
			return path
		}
		b.Run(c.name+"/off", func(b *testing.B) { benchReplayWith(b, get(), 1, flows.DefaultConfig()) })
		b.Run(c.name+"/on", func(b *testing.B) { benchReplayWith(b, get(), 1, inspect) })
	}
}

// BenchmarkReplayDetect: replays with payload inspection on, without and
// with the analytics (default config), one worker, to measure what
// detection adds. "small" is the worst case: 150k flows of 7 packets, each
// one a call into the engine, all ending at the end of the file; "spread"
// is the same flows over 10 minutes, so they end as the replay goes.
func BenchmarkReplayDetect(b *testing.B) {
	inspect := flows.DefaultConfig()
	inspect.Inspect = flows.DefaultInspectConfig()
	small := writePcap(b, synth.Frames(1<<20/7, 6))
	spread := writePcapSpaced(b, synth.Frames(1<<20/7, 6), 600*time.Microsecond)
	for _, c := range []struct {
		name string
		path func(*testing.B) string
	}{
		{"demo", func(*testing.B) string { return filepath.Join("..", "pcaps", "outflow-demo.pcap") }},
		{"small", func(*testing.B) string { return small }},
		{"spread", func(*testing.B) string { return spread }},
	} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/detect=%v", c.name, on), func(b *testing.B) {
				path := c.path(b)
				fi, err := os.Stat(path)
				if err != nil {
					b.Skip(err)
				}
				b.SetBytes(fi.Size())
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					cfg := ReplayConfig{Files: []string{path}, Workers: 1, Table: inspect, Flows: io.Discard}
					if on {
						cfg.Detect = &Detection{Config: detect.Compiled(), Alerts: io.Discard}
					}
					if _, err := Replay(context.Background(), cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
