package main

import (
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// BenchmarkSeed seeds b.N accounts into an empty store opened for a bulk
// load and closes it, as one step of the scale phase does (with 8
// writers); close-s is the compaction in Close. For a profile:
// go test -run X -bench Seed -benchtime 100000x -cpuprofile cpu.pprof ./bench
func BenchmarkSeed(b *testing.B) {
	s, err := newSeeder()
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: b.TempDir(), BulkLoad: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := s.seedRange(st, 0, b.N, 8); err != nil {
		st.Close()
		b.Fatal(err)
	}
	seeded := b.Elapsed()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accounts/s")
	b.ReportMetric((b.Elapsed() - seeded).Seconds(), "close-s")
}
