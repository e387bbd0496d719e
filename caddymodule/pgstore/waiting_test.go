package pgstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// TestOpenWaitingWhileTheDatabaseIsDown: a store opened while its
// database is down answers every operation with ErrUnavailable, gives a
// new version on every call and says in Health since when it waits; once
// the database is up it connects by itself, migrates, and serves.
func TestOpenWaitingWhileTheDatabaseIsDown(t *testing.T) {
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url, err := srv.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Options{URL: url}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open of a database that is down: %v, want ErrUnavailable", err)
	}
	s, err := OpenWaiting(context.Background(), Options{URL: url})
	if err != nil {
		t.Fatalf("OpenWaiting of a database that is down: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Account("u-x"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a read before the store connected: %v, want ErrUnavailable", err)
	}
	if err := s.CreateAccount(storage.Account{ID: "u-x", Email: "x@example.nl"}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a write before the store connected: %v, want ErrUnavailable", err)
	}
	if first := s.Version("u-x"); s.Version("u-x") == first {
		t.Fatal("versions are trusted before the change feed listens")
	}
	if ok, detail := s.Health(); ok || !strings.HasPrefix(detail, "waiting for PostgreSQL since ") {
		t.Fatalf("Health while waiting: %v %q", ok, detail)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ok, _ := s.Health(); ok {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the store did not connect once the database was up")
		}
	}
	if err := s.CreateAccount(storage.Account{ID: "u-x", Email: "x@example.nl"}); err != nil {
		t.Fatalf("a write once connected: %v", err)
	}
	if first := s.Version("u-x"); s.Version("u-x") != first {
		t.Fatal("versions are not trusted once the change feed listens")
	}
}

// TestNothingRunsBeforeTheStoreConnected: between the database coming up
// and the store's next attempt to connect, the schema may not be there
// yet; operations then fail with ErrUnavailable, not with the database's
// "no such table".
func TestNothingRunsBeforeTheStoreConnected(t *testing.T) {
	s, _, _, err := newStore(context.Background(), Options{URL: pgtest.Database(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(); s.pool.Close() })
	if _, err := s.Account("u-x"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a read of an unmigrated database before the store connected: %v, want ErrUnavailable", err)
	}
	if err := s.CreateAccount(storage.Account{ID: "u-x", Email: "x@example.nl"}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a write before the store connected: %v, want ErrUnavailable", err)
	}
}
