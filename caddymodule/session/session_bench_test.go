package session

import (
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// The guard's hot path through this package, for `make bench` (go test
// -bench ^BenchmarkHotPath -benchmem). The store is a real badger
// directory, as in production.

func hotPathManager(b *testing.B) (*Manager, *store.Store) {
	b.Helper()
	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	codec, err := NewCodec("__Host-wijgate", NewKeyPair())
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(st, codec, Settings{})
	b.Cleanup(func() { m.Close(); st.Close() })
	return m, st
}

func hotPathSession(b *testing.B, m *Manager) string {
	b.Helper()
	a := storage.Account{ID: "u-benchaccount", Email: "bench@example.nl"}
	if err := m.store.(*store.Store).CreateAccount(a); err != nil {
		b.Fatal(err)
	}
	raw, _, err := m.Create(a, Start{ActiveOrg: "12345678"})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkHotPathCookieDecode is a securecookie decode of a session
// cookie: what every cache miss pays first.
func BenchmarkHotPathCookieDecode(b *testing.B) {
	m, _ := hotPathManager(b)
	raw := hotPathSession(b, m)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.codec.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPathCookieDecodeForged is the decode of a cookie that fails
// its MAC: what an attacker's made-up cookies cost.
func BenchmarkHotPathCookieDecodeForged(b *testing.B) {
	m, _ := hotPathManager(b)
	raw := []byte(hotPathSession(b, m))
	raw[len(raw)/2] ^= 1
	forged := string(raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.codec.Decode(forged); err == nil {
			b.Fatal("forged cookie decoded")
		}
	}
}

// BenchmarkHotPathLookupHit is Lookup of a cached session: the common case.
func BenchmarkHotPathLookupHit(b *testing.B) {
	m, _ := hotPathManager(b)
	raw := hotPathSession(b, m)
	if _, err := m.Lookup(raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Lookup(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPathLookupHitParallel is LookupHit from every CPU at once
// on one session (one cache shard).
func BenchmarkHotPathLookupHitParallel(b *testing.B) {
	m, _ := hotPathManager(b)
	raw := hotPathSession(b, m)
	if _, err := m.Lookup(raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Lookup(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHotPathLookupMiss is Lookup of a live session that is not in
// the cache: decode, one store read, cache insert. It is also what every
// cached session pays once after its version in the store moves.
func BenchmarkHotPathLookupMiss(b *testing.B) {
	m, _ := hotPathManager(b)
	raw := hotPathSession(b, m)
	b.ReportAllocs()
	for b.Loop() {
		m.cache.delete(digestCookie(raw))
		if _, err := m.Lookup(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPathLookupUnknown is Lookup of a well-formed cookie whose
// session is gone (logged out, expired): decode and a store miss, every
// time, since unknown cookies are not cached.
func BenchmarkHotPathLookupUnknown(b *testing.B) {
	m, _ := hotPathManager(b)
	raw, err := m.codec.Encode(NewID())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Lookup(raw); err != ErrNoSession {
			b.Fatalf("err = %v, want ErrNoSession", err)
		}
	}
}

// BenchmarkHotPathIdleTouchWrite is one idle-tracking write as the
// background writer does it (a synchronous store transaction). One writer
// does them one after another, so 1/this is the most sessions per second
// whose idle time can be recorded: with the default one-minute interval,
// sessions active at once ≤ 60 s / this.
func BenchmarkHotPathIdleTouchWrite(b *testing.B) {
	m, _ := hotPathManager(b)
	raw := hotPathSession(b, m)
	id, err := m.codec.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	key := storageKey(id)
	when := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		when = when.Add(time.Second)
		m.persistTouch(touch{key: key, when: when})
	}
}
