package session

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestManager(t *testing.T, s Settings) (*Manager, *store.Store, *clock) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	s.Now = clk.Now
	codec, err := NewCodec("wij", NewKeyPair())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(st, codec, s)
	t.Cleanup(func() { m.Close(); st.Close() })
	for _, a := range []storage.Account{acct1, acct2} {
		if err := st.CreateAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	return m, st, clk
}

// The accounts newTestManager stores, to make sessions for.
var (
	acct1 = storage.Account{ID: "acct1", Email: "acct1@example.nl"}
	acct2 = storage.Account{ID: "acct2", Email: "acct2@example.nl"}
)

func TestIdleTimeout(t *testing.T) {
	m, _, clk := newTestManager(t, Settings{IdleTimeout: 30 * time.Minute})
	raw, _, err := m.Create(acct1, Start{})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(29 * time.Minute)
	if _, err := m.Lookup(raw); err != nil {
		t.Fatalf("activity at 29 min: %v", err)
	}
	clk.Add(29 * time.Minute) // 58 min since login, 29 since last use
	if _, err := m.Lookup(raw); err != nil {
		t.Fatalf("activity extends the session: %v", err)
	}
	clk.Add(30*time.Minute + time.Second)
	if _, err := m.Lookup(raw); err != ErrNoSession {
		t.Fatalf("after 30 min + 1 s idle: err = %v, want ErrNoSession", err)
	}
}

func TestAbsoluteLifetime(t *testing.T) {
	m, _, clk := newTestManager(t, Settings{IdleTimeout: 30 * time.Minute, Lifetime: 12 * time.Hour})
	raw, _, _ := m.Create(acct1, Start{})
	for elapsed := time.Duration(0); elapsed < 12*time.Hour-20*time.Minute; elapsed += 20 * time.Minute {
		clk.Add(20 * time.Minute)
		if _, err := m.Lookup(raw); err != nil {
			t.Fatalf("active session refused after %v: %v", elapsed, err)
		}
	}
	clk.Add(20 * time.Minute)
	if _, err := m.Lookup(raw); err != ErrNoSession {
		t.Fatalf("after 12 h of activity: err = %v, want ErrNoSession", err)
	}
}

func TestRevoke(t *testing.T) {
	m, st, _ := newTestManager(t, Settings{})
	raw, s, _ := m.Create(acct1, Start{})
	if _, err := m.Lookup(raw); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(raw); err != ErrNoSession {
		t.Fatalf("revoked session still valid: %v", err)
	}
	if _, err := st.Session(s.Key); err != storage.ErrNotFound {
		t.Fatalf("record still in store: %v", err)
	}
}

// One person logging out must not cost everyone else a store read: the
// other cached sessions stay as they were.
func TestRevokeLeavesOtherCachedSessionsAlone(t *testing.T) {
	m, st, _ := newTestManager(t, Settings{})
	mine, me, _ := m.Create(acct1, Start{})
	if _, err := m.Lookup(mine); err != nil { // warm the cache
		t.Fatal(err)
	}
	cached := m.cache.get(digestCookie(mine))
	// Sessions share a version counter one time in 4096; another person's
	// session that happens to share mine's is a fair reason to reload, so
	// the test logs out people until one does not.
	independent := false
	for range 8 {
		theirs, _, _ := m.Create(acct2, Start{})
		if _, err := m.Lookup(theirs); err != nil {
			t.Fatal(err)
		}
		before := st.Version(me.Key)
		if err := m.Revoke(theirs); err != nil {
			t.Fatal(err)
		}
		if st.Version(me.Key) == before {
			independent = true
			break
		}
		if _, err := m.Lookup(mine); err != nil {
			t.Fatal(err)
		}
		cached = m.cache.get(digestCookie(mine))
	}
	if !independent {
		t.Fatal("8 other people's logouts all moved this session's version in the store")
	}
	if _, err := m.Lookup(mine); err != nil {
		t.Fatal(err)
	}
	if m.cache.get(digestCookie(mine)) != cached {
		t.Fatal("another person's logout made the guard read this session from the store again")
	}
}

// During a config reload the old instance keeps serving on the same store
// with its own cache: a logout through the new one must end the session
// there too, on its next request.
func TestRevokeReachesAnotherManagerOnTheSameStore(t *testing.T) {
	m, st, clk := newTestManager(t, Settings{})
	draining := NewManager(st, m.codec, Settings{Now: clk.Now})
	t.Cleanup(draining.Close)
	raw, _, _ := m.Create(acct1, Start{})
	for _, mm := range []*Manager{m, draining} {
		if _, err := mm.Lookup(raw); err != nil { // warm both caches
			t.Fatal(err)
		}
	}
	if err := m.Revoke(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := draining.Lookup(raw); err != ErrNoSession {
		t.Fatalf("the other instance still accepts the logged-out cookie: %v", err)
	}
}

func TestCreateUsesFreshIDs(t *testing.T) {
	m, _, _ := newTestManager(t, Settings{})
	a, sa, _ := m.Create(acct1, Start{})
	b, sb, _ := m.Create(acct1, Start{})
	if a == b || sa.Key == sb.Key {
		t.Fatal("two logins share a session")
	}
}

func TestIdleTrackingIsThrottledAndPersisted(t *testing.T) {
	m, st, clk := newTestManager(t, Settings{TouchInterval: time.Minute})
	raw, s, _ := m.Create(acct1, Start{})
	created := s.LastSeen
	clk.Add(10 * time.Second)
	m.Lookup(raw)
	m.Close() // flush the writer
	got, _ := st.Session(s.Key)
	if !got.LastSeen.Equal(created) {
		t.Fatalf("a request 10 s after login wrote LastSeen (%v → %v); want at most one write a minute", created, got.LastSeen)
	}
	m2 := NewManager(st, m.codec, Settings{TouchInterval: time.Minute, Now: clk.Now})
	clk.Add(2 * time.Minute)
	if _, err := m2.Lookup(raw); err != nil {
		t.Fatal(err)
	}
	m2.Close()
	got, _ = st.Session(s.Key)
	if !got.LastSeen.After(created) {
		t.Fatal("idle tracking never reached the store")
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(cacheShards * 2)
	for range 10_000 {
		c.put(digestCookie(NewID()), &entry{})
	}
	if n := c.len(); n > cacheShards*2 {
		t.Fatalf("cache holds %d entries, bound is %d", n, cacheShards*2)
	}
}

func TestUnknownCookiesAreNotCached(t *testing.T) {
	m, _, _ := newTestManager(t, Settings{})
	for range 100 {
		if _, err := m.Lookup(NewID()); err != ErrNoSession {
			t.Fatal("made-up cookie accepted")
		}
	}
	if n := m.cache.len(); n != 0 {
		t.Fatalf("made-up cookies filled the cache with %d entries", n)
	}
}

// heldTouches is a store whose first TouchSessions waits until released,
// and which records every batch it is given.
type heldTouches struct {
	*store.Store
	first   sync.Once
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	batches [][]storage.Touch
}

func (h *heldTouches) TouchSessions(touches []storage.Touch) error {
	h.mu.Lock()
	h.batches = append(h.batches, slices.Clone(touches))
	h.mu.Unlock()
	h.first.Do(func() {
		close(h.entered)
		<-h.release
	})
	return h.Store.TouchSessions(touches)
}

// Touches that wait while a write is under way go to the store together,
// in one write, in key order: after a restart every active session's
// first request brings a touch at once, and one synced write each would
// leave most of them unrecorded.
func TestWaitingTouchesAreWrittenInOneBatch(t *testing.T) {
	_, st, clk := newTestManager(t, Settings{})
	held := &heldTouches{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	codec, err := NewCodec("wij", NewKeyPair())
	if err != nil {
		t.Fatal(err)
	}
	creator := NewManager(st, codec, Settings{Now: clk.Now})
	var raws []string
	for i := range 11 {
		a := storage.Account{ID: fmt.Sprintf("batch%02d", i), Email: fmt.Sprintf("batch%02d@example.nl", i)}
		if err := st.CreateAccount(a); err != nil {
			t.Fatal(err)
		}
		raw, _, err := creator.Create(a, Start{})
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	creator.Close()

	clk.Add(2 * DefaultTouchInterval)
	m := NewManager(held, codec, Settings{Now: clk.Now})
	if _, err := m.Lookup(raws[0]); err != nil {
		t.Fatal(err)
	}
	<-held.entered // the writer is in its first write
	for _, raw := range raws[1:] {
		if _, err := m.Lookup(raw); err != nil {
			t.Fatal(err)
		}
	}
	close(held.release)
	m.Close()

	if len(held.batches) != 2 || len(held.batches[0]) != 1 || len(held.batches[1]) != 10 {
		sizes := []int{}
		for _, b := range held.batches {
			sizes = append(sizes, len(b))
		}
		t.Fatalf("touch batches of sizes %v, want [1 10]", sizes)
	}
	if !slices.IsSortedFunc(held.batches[1], func(a, b storage.Touch) int { return strings.Compare(a.Key, b.Key) }) {
		t.Fatal("a batch is not in key order")
	}
	for _, raw := range raws {
		id, err := codec.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := st.Session(storageKey(id)); err != nil || !got.LastSeen.Equal(clk.Now()) {
			t.Fatalf("a batched touch was not written: LastSeen %v, want %v (%v)", got.LastSeen, clk.Now(), err)
		}
	}
}
