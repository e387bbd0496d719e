package caddymodule

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

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
	if n := cache.len(); n < bound/2 || n > bound {
		t.Errorf("past its bound of %d the cache holds %d identities", bound, n)
	}
	if reads := cs.reads.Load(); reads != inUse {
		t.Errorf("the %d accounts in use took %d store reads while the cache filled, want one each", inUse, reads)
	}
}

// TestIdentityCacheKeepsHotSetInEveryShard: a full-size cache, every
// shard filled several times over by accounts seen once, keeps the
// accounts read between them, evicts only the others, and never hands
// out one account's identity for another.
func TestIdentityCacheKeepsHotSetInEveryShard(t *testing.T) {
	cache := newIdentityCache(time.Minute)
	const hot = 1000
	var terms termsTable
	identityOf := func(id string) *identity {
		t.Helper()
		i, err := terms.pack(identityFacts{id: id})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	for i := range hot {
		cache.put(identityOf(fmt.Sprintf("u-hot%04d", i)))
	}
	for i := range 3 * maxCachedIdentities {
		cache.put(identityOf(fmt.Sprintf("u-once%07d", i)))
		if i%(maxCachedIdentities/10) == 0 {
			for j := range hot {
				id := fmt.Sprintf("u-hot%04d", j)
				if got := cache.cached(id); got == nil || got.accountID() != id {
					t.Fatalf("after %d accounts seen once, %s is %v", i, id, got)
				}
			}
		}
	}
	if n := cache.len(); n < maxCachedIdentities*9/10 || n > maxCachedIdentities {
		t.Errorf("past its bound of %d the cache holds %d identities", maxCachedIdentities, n)
	}
	if got := cache.cached("u-once0000000"); got != nil {
		t.Errorf("the first account seen once is still cached after %d others", 3*maxCachedIdentities)
	}
}

// TestIdentityCacheChecksTheAccount: an account whose hash finds another
// account's slot (two IDs of one hash) is a miss, never the other's
// identity.
func TestIdentityCacheChecksTheAccount(t *testing.T) {
	cache := newIdentityCache(time.Minute)
	var terms termsTable
	cached, err := terms.pack(identityFacts{id: "u-cached"})
	if err != nil {
		t.Fatal(err)
	}
	cache.put(cached)
	s, cachedKey := cache.locate("u-cached")
	// Another account of the same shard, given the cached one's slot.
	other := "u-other"
	for i := 0; ; i++ {
		if os, _ := cache.locate(other); os == s {
			break
		}
		other = fmt.Sprintf("u-other%d", i)
	}
	_, otherKey := cache.locate(other)
	s.index[otherKey] = s.index[cachedKey]
	if got := cache.cached(other); got != nil {
		t.Fatalf("%s was handed the identity of %s", other, got.accountID())
	}
	if got := cache.cached("u-cached"); got != cached {
		t.Fatal("the cached account is no longer found")
	}
}

// TestIdentityTermsAreShared: memberships with the same role, assurance
// and apps share one orgTerms, an admin's member form keeps the apps, and
// past the table's bound terms are still right, only no longer shared.
func TestIdentityTermsAreShared(t *testing.T) {
	var terms termsTable
	pack := func(kvk, role string, apps ...string) *orgIdentity {
		t.Helper()
		id, err := terms.pack(identityFacts{id: "u-" + kvk, orgs: []orgFacts{{kvk: kvk, name: "Org " + kvk, role: role, assurance: "eh3", apps: apps}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := id.orgKvK(id.org(0)); got != kvk {
			t.Fatalf("kvk %q, want %q", got, kvk)
		}
		return id.org(0)
	}
	a, b := pack("11111111", "admin", "declaratie"), pack("22222222", "admin", "declaratie")
	if a.terms != b.terms {
		t.Error("two admins with the same apps hold two orgTerms")
	}
	if m := a.asMember(); m.role() != "member" || m.appsHeader() != "declaratie" || m.terms != pack("33333333", "member", "declaratie").terms {
		t.Errorf("an admin as member: role %q, apps %q", m.role(), m.appsHeader())
	}
	if c := pack("44444444", "admin", "rie"); c.terms == a.terms || c.appsHeader() != "rie" {
		t.Error("other apps share the terms")
	}
	for i := len(terms.m); i < maxInternedTerms; i++ {
		terms.intern("member", "eh3", []string{fmt.Sprint(i)})
	}
	x, y := pack("55555555", "member", "over", "bound"), pack("66666666", "member", "over", "bound")
	if x.terms == y.terms || x.appsHeader() != "over,bound" || !x.mayUse("bound") || len(terms.m) != maxInternedTerms {
		t.Errorf("past the bound: shared %v, apps %q, table %d", x.terms == y.terms, x.appsHeader(), len(terms.m))
	}
}

// TestIdentityTooLargeIsRefused: an account whose strings exceed what an
// identity's offsets reach is an error, not a wrong identity.
func TestIdentityTooLargeIsRefused(t *testing.T) {
	var terms termsTable
	if _, err := terms.pack(identityFacts{id: "u-1", name: strings.Repeat("a", maxIdentityText)}); !errors.Is(err, errIdentityTooLarge) {
		t.Errorf("a name of 64 KiB: %v", err)
	}
	name := strings.Repeat("a", maxIdentityText-len("u-1"))
	id, err := terms.pack(identityFacts{id: "u-1", name: name})
	if err != nil || id.name() != name || id.accountID() != "u-1" {
		t.Errorf("a name that just fits: %v", err)
	}
}

// An identity is one per active account: its times in seconds keep it in
// the 80-byte size class (96 with nanoseconds), 16 B per active session.
func TestIdentityFitsEightyBytes(t *testing.T) {
	if size := unsafe.Sizeof(identity{}); size > 80 {
		t.Fatalf("an identity takes %d bytes, want at most 80", size)
	}
}

// The times an identity keeps are rounded down: an expiry comes and the
// outage grace ends up to a second early, never late; a time before 1970
// is an expiry that has passed, not "none".
func TestIdentityTimesRoundDown(t *testing.T) {
	at := time.Unix(1_800_000_000, 999_999_999)
	if got := unixSeconds(at); got != 1_800_000_000 {
		t.Fatalf("unixSeconds(%v) = %d, want 1800000000", at, got)
	}
	if got := unixSeconds(time.Time{}); got != 1 {
		t.Fatalf("unixSeconds of the zero time = %d, want 1 (passed), not 0 (none)", got)
	}
}
