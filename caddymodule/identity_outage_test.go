package caddymodule

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// unreachableStore is the badger engine cut off as a shared database is
// in an outage: account reads fail with storage.ErrUnavailable and
// Version moves on every call, as the contract asks of an engine that lost
// its feed of other processes' writes.
type unreachableStore struct {
	*store.Store
	down  atomic.Bool
	moved atomic.Uint64
}

func (u *unreachableStore) Account(id string) (storage.Account, error) {
	if u.down.Load() {
		return storage.Account{}, fmt.Errorf("%w: connection refused", storage.ErrUnavailable)
	}
	return u.Store.Account(id)
}

func (u *unreachableStore) Version(key string) uint64 {
	if u.down.Load() {
		return 1<<63 | u.moved.Add(1)
	}
	return u.Store.Version(key)
}

// TestIdentityServedForTheOutageGrace: while the store cannot be reached,
// a cached identity is served until the grace has passed since the store
// last confirmed it; then the error says the store is unavailable, and
// once it is back the identity is read again.
func TestIdentityServedForTheOutageGrace(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u := &unreachableStore{Store: st}
	accounts, orgs := domainServices(u, nil, 0)
	for _, id := range []string{"u-cached", "u-other"} {
		if err := st.CreateAccount(storage.Account{ID: id, Email: id + "@example.nl", Name: "Jan"}); err != nil {
			t.Fatal(err)
		}
	}
	clk := &testClock{now: time.Now()}
	cache := newIdentityCache(10 * time.Second)
	apps := func() []string { return nil }
	if _, err := cache.get(u, accounts, orgs, apps, "u-cached", clk.Now()); err != nil {
		t.Fatal(err)
	}

	u.down.Store(true)
	clk.Add(9 * time.Second)
	if id, err := cache.get(u, accounts, orgs, apps, "u-cached", clk.Now()); err != nil || id.email() != "u-cached@example.nl" {
		t.Fatalf("9 s into a 10 s grace: %v, %v", id, err)
	}
	if _, err := cache.get(u, accounts, orgs, apps, "u-other", clk.Now()); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("an identity not cached during the outage: err = %v, want ErrUnavailable", err)
	}
	clk.Add(2 * time.Second)
	if _, err := cache.get(u, accounts, orgs, apps, "u-cached", clk.Now()); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("11 s into a 10 s grace: err = %v, want ErrUnavailable", err)
	}

	u.down.Store(false)
	if _, err := cache.get(u, accounts, orgs, apps, "u-cached", clk.Now()); err != nil {
		t.Fatalf("the store is back: %v", err)
	}
}
