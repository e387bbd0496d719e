package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func testSessions(t *testing.T, e Engine) {
	createAccount(t, e, "jan")
	start := now()
	s := storage.Session{Key: "s1", AccountID: "jan", CreatedAt: start, LastSeen: start, ExpiresAt: start.Add(time.Hour)}
	if err := e.CreateSession(s); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Session("s1"); err != nil || !same(got, s) {
		t.Fatalf("Session = %+v, %v, want %+v", got, err, s)
	}
	if _, err := e.Session("unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an unknown session: %v, want ErrNotFound", err)
	}

	if err := e.UpdateSession("s1", func(s *storage.Session) { s.ActiveOrg = "12345678" }); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Session("s1"); got.ActiveOrg != "12345678" {
		t.Fatalf("an updated session has ActiveOrg %q", got.ActiveOrg)
	}

	later := start.Add(time.Minute)
	if err := e.TouchSessions([]storage.Touch{{Key: "s1", At: later}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Session("s1"); !got.LastSeen.Equal(later) || got.ActiveOrg != "12345678" {
		t.Fatalf("after a touch: LastSeen %v, ActiveOrg %q; want %v and the org kept", got.LastSeen, got.ActiveOrg, later)
	}
	// Touches are written behind the requests that make them, so one may
	// arrive after a later one.
	if err := e.TouchSessions([]storage.Touch{{Key: "s1", At: start}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Session("s1"); !got.LastSeen.Equal(later) {
		t.Fatalf("a late touch moved LastSeen back to %v", got.LastSeen)
	}

	if err := e.CreateSession(storage.Session{Key: "s2", AccountID: "jan", ExpiresAt: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// One batch: a session touched twice (the later time holds, in either
	// order), another session, and one that never existed (skipped, the
	// rest written).
	latest := later.Add(2 * time.Minute)
	if err := e.TouchSessions([]storage.Touch{{Key: "s1", At: latest}, {Key: "missing", At: latest},
		{Key: "s1", At: later.Add(time.Minute)}, {Key: "s2", At: later}}); err != nil {
		t.Fatalf("a batch with a missing session: %v", err)
	}
	if got, _ := e.Session("s1"); !got.LastSeen.Equal(latest) {
		t.Fatalf("after a batch touching s1 twice: LastSeen %v, want %v", got.LastSeen, latest)
	}
	if got, _ := e.Session("s2"); !got.LastSeen.Equal(later) {
		t.Fatalf("after a batch: s2 LastSeen %v, want %v", got.LastSeen, later)
	}
	if _, err := e.Session("missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a touch created a session: %v", err)
	}
	if err := e.DeleteSession("s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session("s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted session: %v, want ErrNotFound", err)
	}
	if _, err := e.Session("s2"); err != nil {
		t.Fatalf("deleting one session ended another of the account: %v", err)
	}
	if err := e.DeleteSession("s1"); err != nil {
		t.Fatalf("deleting a missing session: %v", err)
	}
	// A late update or touch never brings a revoked session back.
	if err := e.UpdateSession("s1", func(s *storage.Session) { s.ActiveOrg = "87654321" }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("updating a deleted session: %v, want ErrNotFound", err)
	}
	if err := e.TouchSessions([]storage.Touch{{Key: "s1", At: latest.Add(time.Minute)}}); err != nil {
		t.Fatalf("touching a deleted session: %v, want it skipped", err)
	}
	if _, err := e.Session("s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a late write brought a deleted session back: %v", err)
	}
	// A deleted session does not trouble the ending of the rest.
	if _, err := e.UpdateAccount("jan", func(a *storage.Account) error { a.PasswordHash = "new"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session("s2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a session survived its account's new password: %v", err)
	}
}
