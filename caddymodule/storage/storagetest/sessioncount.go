package storagetest

import (
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// testLiveSessionsCountsTheUnexpired: sessions past their expiry, deleted
// or ended with their account's credentials are not counted; every other
// session of every account is.
func testLiveSessionsCountsTheUnexpired(t *testing.T, e Engine) {
	count := func(want int) {
		t.Helper()
		if n, err := e.LiveSessions(); err != nil || n != want {
			t.Fatalf("LiveSessions = %d, %v; want %d", n, err, want)
		}
	}
	count(0)
	start := now()
	for _, id := range []string{"jan", "piet"} {
		createAccount(t, e, id)
		for _, key := range []string{id + "-1", id + "-2"} {
			if err := e.CreateSession(storage.Session{Key: key, AccountID: id, CreatedAt: start, LastSeen: start, ExpiresAt: start.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.CreateSession(storage.Session{Key: "expired", AccountID: "jan", CreatedAt: start.Add(-2 * time.Hour),
		ExpiresAt: start.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	count(4)
	if err := e.DeleteSession("jan-1"); err != nil {
		t.Fatal(err)
	}
	count(3)
	if _, err := e.UpdateAccount("piet", func(a *storage.Account) error { a.PasswordHash = "new"; return nil }); err != nil {
		t.Fatal(err)
	}
	count(1)
}
