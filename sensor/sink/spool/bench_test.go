package spool

import "testing"

// BenchmarkAppend appends 1 KiB entries, one per call and 64 per call,
// synced (what the Delivery sink pays per alert) and not.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		name   string
		batch  int
		noSync bool
	}{
		{"fsync/1", 1, false}, {"fsync/64", 64, false},
		{"nosync/1", 1, true}, {"nosync/64", 64, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), Config{NoSync: c.noSync})
			batch := make([][]byte, c.batch)
			for i := range batch {
				batch[i] = entry(i, 1024)
			}
			b.SetBytes(int64(1024 * c.batch))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Append(batch...); err != nil {
					b.Fatal(err)
				}
				if s.Bytes() > 128<<20 {
					b.StopTimer()
					if err := s.Ack(s.Len()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
		})
	}
}

// peeked keeps benchmark results alive.
var peeked [][]byte

// BenchmarkPeekAck reads and acknowledges 1 KiB entries 64 at a time, as
// a sender does, with the cursor synced and not.
func BenchmarkPeekAck(b *testing.B) {
	for _, c := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nosync", true}} {
		b.Run(c.name, func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), Config{NoSync: c.noSync})
			batch := make([][]byte, 64)
			for i := range batch {
				batch[i] = entry(i, 1024)
			}
			b.SetBytes(64 * 1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if s.Len() == 0 {
					b.StopTimer()
					for range 256 {
						if err := s.Append(batch...); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				got, err := s.Peek(64, 1<<20)
				if err != nil || len(got) != 64 {
					b.Fatal(len(got), err)
				}
				if err := s.Ack(len(got)); err != nil {
					b.Fatal(err)
				}
				peeked = got
			}
		})
	}
}
