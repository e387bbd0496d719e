package token

import (
	"testing"
	"time"
)

// BenchmarkTokenReuse is the guard's hot path: the token for this session
// and app is cached. It runs on the real clock, whose reading is part of
// the cost.
func BenchmarkTokenReuse(b *testing.B) {
	s := newSigner(b, openStore(b, b.TempDir()), nil, Options{})
	c := claims()
	if _, err := s.Token(CacheKey{"session-key", "declaratie"}, c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Token(CacheKey{"session-key", "declaratie"}, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenReuseParallel is BenchmarkTokenReuse from every CPU at once.
func BenchmarkTokenReuseParallel(b *testing.B) {
	s := newSigner(b, openStore(b, b.TempDir()), nil, Options{})
	c := claims()
	if _, err := s.Token(CacheKey{"session-key", "declaratie"}, c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Token(CacheKey{"session-key", "declaratie"}, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTokenSign is a cache miss: the cached token is always within
// the margin of expiry, so every call signs a new one.
func BenchmarkTokenSign(b *testing.B) {
	clk := newClock()
	s := newSigner(b, openStore(b, b.TempDir()), clk, Options{RotateEvery: 100 * 365 * 24 * time.Hour})
	c := claims()
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(5 * time.Minute)
		if _, err := s.Token(CacheKey{"session-key", "declaratie"}, c); err != nil {
			b.Fatal(err)
		}
	}
}
