package session

import (
	"fmt"
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

// BenchmarkHotPathIdleTouchWrite is one idle-tracking write of a single
// touch as the background writer does it (a synchronous store
// transaction). The writer puts the touches that wait, up to
// maxTouchBatch, into one such write, so under load far more than 1/this
// sessions per second have their idle time recorded
// (BenchmarkFirstUseTouches).
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
		m.persistTouches([]storage.Touch{{Key: key, At: when}})
	}
}

// BenchmarkFirstUseTouches is the first request of many sessions on a
// server that has just started, as after a restart: each misses the
// cache, is read from a synced badger store, and has its activity
// written; an iteration ends when every touch is on disk (Close waits
// for the writers). Reported per session.
func BenchmarkFirstUseTouches(b *testing.B) {
	const sessions = 1000 // fits the touch queue, so none is dropped
	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	codec, err := NewCodec("__Host-wijgate", NewKeyPair())
	if err != nil {
		b.Fatal(err)
	}
	clock := time.Now()
	now := func() time.Time { return clock }
	creator := NewManager(st, codec, Settings{Now: now})
	raws := make([]string, sessions)
	for i := range raws {
		a := storage.Account{ID: fmt.Sprintf("u-touch%04d", i), Email: fmt.Sprintf("t%d@example.nl", i)}
		if err := st.CreateAccount(a); err != nil {
			b.Fatal(err)
		}
		if raws[i], _, err = creator.Create(a, Start{}); err != nil {
			b.Fatal(err)
		}
	}
	creator.Close()
	for b.Loop() {
		clock = clock.Add(2 * DefaultTouchInterval)
		m := NewManager(st, codec, Settings{Now: now, IdleTimeout: 24 * time.Hour})
		for _, raw := range raws {
			if _, err := m.Lookup(raw); err != nil {
				b.Fatal(err)
			}
		}
		m.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sessions), "ns/session")
	if got, err := st.Session(storageKey(mustDecode(b, codec, raws[0]))); err != nil || !got.LastSeen.Equal(clock) {
		b.Fatalf("the last touch was not written: LastSeen %v, want %v (%v)", got.LastSeen, clock, err)
	}
}

func mustDecode(b *testing.B, codec *Codec, raw string) string {
	b.Helper()
	id, err := codec.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	return id
}
