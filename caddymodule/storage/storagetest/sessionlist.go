package storagetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// testAccountSessionsListsTheLiveOnes checks what the person's list of
// sessions is built from: the account's own live sessions, every one of
// them, and none that ended, expired or belongs to another account.
func testAccountSessionsListsTheLiveOnes(t *testing.T, e Engine) {
	createAccount(t, e, "jan")
	createAccount(t, e, "piet")
	start := now()
	mk := func(key, account string, expires time.Time) storage.Session {
		t.Helper()
		s := storage.Session{Key: key, AccountID: account, CreatedAt: start, LastSeen: start, ExpiresAt: expires,
			AMR: []string{"pwd"}, UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", Address: "192.0.2.7"}
		if err := e.CreateSession(s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	jan1 := mk("jan-1", "jan", start.Add(time.Hour))
	jan2 := mk("jan-2", "jan", start.Add(2*time.Hour))
	mk("jan-gone", "jan", start.Add(-time.Second))
	piet := mk("piet-1", "piet", start.Add(time.Hour))

	list := func(account string) []storage.Session {
		t.Helper()
		got, err := e.AccountSessions(account)
		if err != nil {
			t.Fatalf("AccountSessions(%q): %v", account, err)
		}
		slices.SortFunc(got, func(a, b storage.Session) int { return strings.Compare(a.Key, b.Key) })
		return got
	}
	if got := list("jan"); !same(got, []storage.Session{jan1, jan2}) {
		t.Fatalf("jan's sessions = %+v, want the two live ones, every field kept", got)
	}
	if got := list("piet"); !same(got, []storage.Session{piet}) {
		t.Fatalf("piet's sessions = %+v, want his one", got)
	}
	if got := list("nobody"); len(got) != 0 {
		t.Fatalf("an account without sessions has %+v", got)
	}

	// Ending one from the list moves its version, so no cache serves it
	// on the next request, and leaves the others listed.
	before := e.Version(jan1.Key)
	if err := e.DeleteSession(jan1.Key); err != nil {
		t.Fatal(err)
	}
	if e.Version(jan1.Key) == before {
		t.Fatal("deleting a session did not move its version")
	}
	if got := list("jan"); !same(got, []storage.Session{jan2}) {
		t.Fatalf("after ending one, jan's sessions = %+v, want the other", got)
	}
	if _, err := e.UpdateAccount("jan", func(a *storage.Account) error { a.PasswordHash = "new"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := list("jan"); len(got) != 0 {
		t.Fatalf("after a new password jan still lists %+v", got)
	}
	if got := list("piet"); len(got) != 1 {
		t.Fatalf("jan's new password ended piet's sessions: %+v", got)
	}
}
