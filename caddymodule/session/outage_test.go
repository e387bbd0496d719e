package session

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// unreachable is a store that can be cut off, as a shared database is in
// an outage: reads fail with storage.ErrUnavailable and, as the contract
// asks of a store that lost its feed of other processes' writes, Version
// moves on every call.
type unreachable struct {
	*store.Store
	down  atomic.Bool
	moved atomic.Uint64
}

func (u *unreachable) Session(key string) (storage.Session, error) {
	if u.down.Load() {
		return storage.Session{}, fmt.Errorf("%w: connection refused", storage.ErrUnavailable)
	}
	return u.Store.Session(key)
}

func (u *unreachable) Version(key string) uint64 {
	if u.down.Load() {
		return 1<<63 | u.moved.Add(1)
	}
	return u.Store.Version(key)
}

// TestCachedSessionServedForTheOutageGrace: while the store cannot be
// reached, a cached session is served until the grace has passed since
// the store last confirmed it, then Lookup fails with ErrUnavailable (not
// ErrNoSession: the person is not logged out), and the same cookie works
// again once the store is back. A cookie not cached fails at once.
func TestCachedSessionServedForTheOutageGrace(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(acct1); err != nil {
		t.Fatal(err)
	}
	u := &unreachable{Store: st}
	clk := &clock{now: time.Now()}
	codec, err := NewCodec("wij", NewKeyPair())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(u, codec, Settings{OutageGrace: 10 * time.Second, Now: clk.Now})
	t.Cleanup(func() { m.Close(); st.Close() })
	cached, _, err := m.Create(acct1, Start{})
	if err != nil {
		t.Fatal(err)
	}
	uncached, _, err := m.Create(acct1, Start{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(cached); err != nil {
		t.Fatal(err)
	}

	u.down.Store(true)
	clk.Add(9 * time.Second)
	if _, err := m.Lookup(cached); err != nil {
		t.Fatalf("9 s into a 10 s grace: %v", err)
	}
	if _, err := m.Lookup(uncached); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a session not cached during the outage: err = %v, want ErrUnavailable", err)
	}
	clk.Add(2 * time.Second)
	if _, err := m.Lookup(cached); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("11 s into a 10 s grace: err = %v, want ErrUnavailable", err)
	}

	u.down.Store(false)
	for _, raw := range []string{cached, uncached} {
		if _, err := m.Lookup(raw); err != nil {
			t.Fatalf("the store is back: %v", err)
		}
	}
}

// TestOutageGraceCountsFromTheLastConfirmation: a session used while the
// store vouched for it gets its grace from that use, not from when it
// was first read.
func TestOutageGraceCountsFromTheLastConfirmation(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(acct1); err != nil {
		t.Fatal(err)
	}
	u := &unreachable{Store: st}
	clk := &clock{now: time.Now()}
	codec, err := NewCodec("wij", NewKeyPair())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(u, codec, Settings{OutageGrace: 10 * time.Second, Now: clk.Now})
	t.Cleanup(func() { m.Close(); st.Close() })
	raw, _, err := m.Create(acct1, Start{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(raw); err != nil {
		t.Fatal(err)
	}
	clk.Add(8 * time.Second)
	if _, err := m.Lookup(raw); err != nil { // a cache hit the store's version vouches for
		t.Fatal(err)
	}
	u.down.Store(true)
	clk.Add(8 * time.Second)
	if _, err := m.Lookup(raw); err != nil {
		t.Fatalf("16 s after the read, 8 s after the last confirmation, grace 10 s: %v", err)
	}
}
