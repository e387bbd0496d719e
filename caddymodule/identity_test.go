package caddymodule

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// countingStore counts the reads of accounts in use that reach the store.
type countingStore struct {
	*store.Store
	reads atomic.Int64
}

func (c *countingStore) Account(id string) (storage.Account, error) {
	if strings.HasPrefix(id, inUsePrefix) {
		c.reads.Add(1)
	}
	return c.Store.Account(id)
}

const inUsePrefix = "u-inuse"

// TestIdentityCacheEvictsSomeNotAll: an identity cache filled past its
// bound by accounts seen once, while a few others keep sending requests,
// keeps those in use: each is read from the store once, and the cache
// stays near its bound rather than starting over.
func TestIdentityCacheEvictsSomeNotAll(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	accounts, orgs := domainServices(cs, nil, 0)
	const bound, inUse, passing = 100, 10, 300
	id := func(i int) string {
		if i < inUse {
			return fmt.Sprintf("%s%02d", inUsePrefix, i)
		}
		return fmt.Sprintf("u-%04d", i)
	}
	for i := range inUse + passing {
		if err := st.CreateAccount(storage.Account{ID: id(i), Email: id(i) + "@example.nl", Name: "Jan"}); err != nil {
			t.Fatal(err)
		}
	}
	cache := newBoundedIdentityCache(bound, time.Minute)
	apps := func() []string { return nil }
	get := func(i int) {
		t.Helper()
		if got, err := cache.get(cs, accounts, orgs, apps, id(i), time.Now()); err != nil || got.accountID() != id(i) {
			t.Fatalf("%s: %v, %v", id(i), got, err)
		}
	}
	// The accounts in use keep sending requests while the others pass.
	for i := inUse; i < inUse+passing; i++ {
		get(i)
		if i%10 == 0 {
			for j := range inUse {
				get(j)
			}
		}
	}
	cache.entries.CleanUp()
	if n := cache.entries.EstimatedSize(); n < bound/2 || n > bound {
		t.Errorf("past its bound of %d the cache holds %d identities", bound, n)
	}
	if reads := cs.reads.Load(); reads != inUse {
		t.Errorf("the %d accounts in use took %d store reads while the cache filled, want one each", inUse, reads)
	}
}
