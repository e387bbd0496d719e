package pgstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestReplicasStartingTogetherMigrateOnce: processes opening one new
// database at the same time take turns at the schema, and each finds it
// complete.
func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	url := pgtest.Database(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(context.Background(), Options{URL: url})
			if err == nil {
				err = s.CreateAccount(storage.Account{ID: "u-" + string(rune('a'+i)), Email: string(rune('a'+i)) + "@example.nl"})
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	s := open(t, url)
	all, err := s.Accounts()
	if err != nil || len(all) != 4 {
		t.Fatalf("accounts after four replicas started: %d, %v", len(all), err)
	}
}

// TestAWriteOnOneProcessMovesTheVersionOnAnother: the change feed carries
// a write's keys to another process's caches, and only those keys.
func TestAWriteOnOneProcessMovesTheVersionOnAnother(t *testing.T) {
	url := pgtest.Database(t)
	a, b := open(t, url), open(t, url)
	waitMoved(t, b, "u-1", b.Version("u-1"), func() {
		if err := a.CreateAccount(storage.Account{ID: "u-1", Email: "jan@example.nl"}); err != nil {
			t.Fatal(err)
		}
	})
	other := b.Version("u-2")
	seen := b.Version("u-1")
	waitMoved(t, b, "u-1", seen, func() {
		if _, err := a.UpdateAccount("u-1", func(acc *storage.Account) error { acc.Disabled = true; return nil }); err != nil {
			t.Fatal(err)
		}
	})
	if got := b.Version("u-2"); got != other && !sharesSlot(b, "u-1", "u-2") {
		t.Errorf("an unrelated key's version moved: %d → %d", other, got)
	}
}

func sharesSlot(s *Store, a, b string) bool { return s.versions.slot(a) == s.versions.slot(b) }

// waitMoved runs write and waits until key's version on s differs from
// before, failing after two seconds.
func waitMoved(t *testing.T, s *Store, key string, before uint64, write func()) {
	t.Helper()
	write()
	deadline := time.Now().Add(2 * time.Second)
	for s.Version(key) == before {
		if time.Now().After(deadline) {
			t.Fatalf("the version of %s did not move within 2s", key)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWithoutItsChangeFeedAProcessTrustsNoCache: while the feed's
// connection is gone, every Version call gives a new number; once it is
// back, versions are stable again and have all moved.
func TestWithoutItsChangeFeedAProcessTrustsNoCache(t *testing.T) {
	s := open(t, pgtest.Database(t))
	before := s.Version("u-1")
	if s.Version("u-1") != before {
		t.Fatal("a version moved with nothing written")
	}
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.versions.trusted.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the process did not notice its change feed was gone")
		}
		time.Sleep(time.Millisecond)
	}
	if a, b := s.Version("u-1"), s.Version("u-1"); a == b || a == before {
		t.Fatalf("without a feed, versions %d, %d, %d: a cache could trust what it holds", before, a, b)
	}
	for !s.versions.trusted.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the change feed did not come back")
		}
		time.Sleep(time.Millisecond)
	}
	if after := s.Version("u-1"); after == before || after != s.Version("u-1") {
		t.Fatalf("after the feed came back: %d (before the loss %d)", after, before)
	}
}

func TestOneTimeThingsAcrossProcesses(t *testing.T) {
	url := pgtest.Database(t)
	a, b := open(t, url), open(t, url)
	inv := storage.Invitation{ID: "i-1", KvK: "12345678", Email: "jan@example.nl", ExpiresAt: time.Now().Add(time.Hour)}
	if err := a.PutInvitation(inv); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []error
	for i := range 8 {
		s := []*Store{a, b}[i%2]
		wg.Go(func() {
			_, err := s.TakeInvitation("i-1", func(storage.Invitation) error { return nil })
			mu.Lock()
			got = append(got, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	ok := slices.IndexFunc(got, func(err error) bool { return err == nil })
	if ok < 0 || slices.ContainsFunc(append(slices.Clone(got[:ok]), got[ok+1:]...), func(err error) bool { return !errors.Is(err, storage.ErrNotFound) }) {
		t.Fatalf("eight takes of one invitation on two processes: %v", got)
	}
}

// TestAnUnreadableURLSaysWhyWithoutItsPassword: the operator reads what is
// wrong with the URL, and the password is nowhere in the message.
func TestAnUnreadableURLSaysWhyWithoutItsPassword(t *testing.T) {
	_, err := Open(context.Background(), Options{URL: "postgres://wijgate:geheim@db.example.nl:notaport/wijgate"})
	if err == nil || !strings.Contains(err.Error(), "invalid port") || strings.Contains(err.Error(), "geheim") {
		t.Fatalf("opening an unreadable URL: %v", err)
	}
}
