package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func createAccount(t *testing.T, e Engine, id string) storage.Account {
	t.Helper()
	a := storage.Account{ID: id, Email: id + "@example.nl", Name: id, PasswordHash: "hash-" + id, CreatedAt: now(), PasswordChangedAt: now()}
	if err := e.CreateAccount(a); err != nil {
		t.Fatal(err)
	}
	return a
}

func testAccountEmailIsUnique(t *testing.T, e Engine) {
	if err := e.CreateAccount(storage.Account{ID: "a", Email: "x@example.nl"}); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateAccount(storage.Account{ID: "b", Email: "x@example.nl"}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second account with the same email: %v, want ErrExists", err)
	}
	if _, err := e.Account("b"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused account was half written: %v", err)
	}
	if a, err := e.AccountByEmail("x@example.nl"); err != nil || a.ID != "a" {
		t.Fatalf("the email leads to %q (%v), want the first account", a.ID, err)
	}
}

func testConcurrentRegistrationsOfOneEmail(t *testing.T, e Engine) {
	exactlyOnce(t, storage.ErrExists, func(string) error { return nil }, func(email string, i int) error {
		return e.CreateAccount(storage.Account{ID: fmt.Sprint(email, "-", i), Email: email + "@example.nl"})
	})
}

func testAccountsAreFoundByIDAndEmail(t *testing.T, e Engine) {
	var want []storage.Account
	for _, id := range []string{"u-c", "u-a", "u-b"} {
		want = append(want, createAccount(t, e, id))
	}
	for _, a := range want {
		if got, err := e.Account(a.ID); err != nil || !same(got, a) {
			t.Errorf("Account(%q) = %+v, %v, want %+v", a.ID, got, err, a)
		}
		if got, err := e.AccountByEmail(a.Email); err != nil || !same(got, a) {
			t.Errorf("AccountByEmail(%q) = %+v, %v, want %+v", a.Email, got, err, a)
		}
	}
	if _, err := e.Account("u-none"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an unknown ID: %v, want ErrNotFound", err)
	}
	if _, err := e.AccountByEmail("none@example.nl"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an unknown email: %v, want ErrNotFound", err)
	}
	all, err := e.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b storage.Account) int { return strings.Compare(a.ID, b.ID) })
	if !same(all, want) {
		t.Fatalf("Accounts() = %+v, want %+v, ordered by ID", all, want)
	}
}

func testUpdateAccountRunsTheChangeInOneTransaction(t *testing.T, e Engine) {
	createAccount(t, e, "jan")
	got, err := e.UpdateAccount("jan", func(a *storage.Account) error { a.Name = "Jan Jansen"; a.Lang = "en"; return nil })
	if err != nil || got.Name != "Jan Jansen" || got.Lang != "en" {
		t.Fatalf("UpdateAccount returned %+v, %v", got, err)
	}
	if stored, err := e.Account("jan"); err != nil || !same(stored, got) {
		t.Fatalf("stored %+v (%v), returned %+v", stored, err, got)
	}

	refused := errors.New("refused")
	if _, err := e.UpdateAccount("jan", func(a *storage.Account) error { a.Name = "Half"; return refused }); !errors.Is(err, refused) {
		t.Fatalf("a change that failed: %v, want its error", err)
	}
	if stored, _ := e.Account("jan"); stored.Name != "Jan Jansen" {
		t.Fatalf("a change that failed was written: name %q", stored.Name)
	}

	// The email is the unique index and the credential version is the
	// engine's to move: a change cannot set either.
	got, err = e.UpdateAccount("jan", func(a *storage.Account) error {
		a.Email = "other@example.nl"
		a.CredentialVersion = 7
		return nil
	})
	if err != nil || got.Email != "jan@example.nl" || got.CredentialVersion != 0 {
		t.Fatalf("a change of email and version gave %q, %d (%v), want both kept", got.Email, got.CredentialVersion, err)
	}
	if a, err := e.AccountByEmail("jan@example.nl"); err != nil || a.ID != "jan" {
		t.Fatalf("the email no longer leads to the account: %v", err)
	}
	if _, err := e.AccountByEmail("other@example.nl"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the email the change tried leads somewhere: %v", err)
	}

	if _, err := e.UpdateAccount("nobody", func(*storage.Account) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("updating a missing account: %v, want ErrNotFound", err)
	}
	if _, err := e.Account("nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("updating a missing account made one: %v", err)
	}
}

// Each change reads the record it changes, so no update overwrites
// another.
func testConcurrentAccountUpdatesAreAllKept(t *testing.T, e Engine) {
	createAccount(t, e, "jan")
	errs := race(racers, func(int) error {
		_, err := e.UpdateAccount("jan", func(a *storage.Account) error { yield(); a.Name += "+"; return nil })
		return err
	})
	if n := succeeded(errs); n != racers {
		t.Fatalf("%d of %d updates succeeded: %v", n, racers, errors.Join(errs...))
	}
	if a, _ := e.Account("jan"); a.Name != "jan"+strings.Repeat("+", racers) {
		t.Fatalf("name after %d appends: %q", racers, a.Name)
	}
}

func testSessionNeedsTheCurrentCredentials(t *testing.T, e Engine) {
	hour := now().Add(time.Hour)
	if err := e.CreateAccount(storage.Account{ID: "jan", Email: "jan@example.nl", PasswordHash: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateAccount(storage.Account{ID: "piet", Email: "piet@example.nl", PasswordHash: "old"}); err != nil {
		t.Fatal(err)
	}
	session := func(key string, version uint64) error {
		return e.CreateSession(storage.Session{Key: key, AccountID: "jan", ExpiresAt: hour, CredentialVersion: version})
	}
	if err := session("before", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateSession(storage.Session{Key: "bystander", AccountID: "piet", ExpiresAt: hour}); err != nil {
		t.Fatal(err)
	}

	a, err := e.UpdateAccount("jan", func(a *storage.Account) error { a.PasswordHash = "new"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if a.CredentialVersion != 1 {
		t.Fatalf("credential version after a new password: %d, want 1", a.CredentialVersion)
	}
	if _, err := e.Session("before"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a session made with the old password survived the change: %v", err)
	}
	if _, err := e.Session("bystander"); err != nil {
		t.Fatalf("another account's session ended with the change: %v", err)
	}
	if err := session("old-password", 0); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("session for a login checked against the old password: %v, want ErrStale", err)
	}
	if _, err := e.Session("old-password"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a refused session was written")
	}
	if err := session("new-password", 1); err != nil {
		t.Fatal(err)
	}

	if a, err = e.UpdateAccount("jan", func(a *storage.Account) error { a.Name = "Jan"; a.CredentialVersion = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	if a.CredentialVersion != 1 {
		t.Fatalf("a name change (trying to set the version) left version %d, want 1", a.CredentialVersion)
	}
	if _, err := e.Session("new-password"); err != nil {
		t.Fatalf("a name change ended a session: %v", err)
	}

	if a, err = e.UpdateAccount("jan", func(a *storage.Account) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if a.CredentialVersion != 2 {
		t.Fatalf("credential version after disabling: %d, want 2", a.CredentialVersion)
	}
	if _, err := e.Session("new-password"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a session survived disabling its account: %v", err)
	}
	if err := session("disabled", 2); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("session for a disabled account: %v, want ErrStale", err)
	}
	if err := e.CreateSession(storage.Session{Key: "nobody", AccountID: "nobody", ExpiresAt: hour}); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("session for a missing account: %v, want ErrStale", err)
	}
}

// Logins that checked the old password race a password change: whichever
// commits first, no session made under the old credentials remains
// afterwards.
func testLoginsRacingAPasswordChangeLeaveNoOldSession(t *testing.T, e Engine) {
	hour := now().Add(time.Hour)
	const rounds = 20
	for round := range rounds {
		id := fmt.Sprintf("acct-%d", round)
		if err := e.CreateAccount(storage.Account{ID: id, Email: id + "@example.nl", PasswordHash: "old"}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var made []string
		errs := race(racers, func(i int) error {
			if i == 0 {
				_, err := e.UpdateAccount(id, func(a *storage.Account) error { yield(); a.PasswordHash = "new"; return nil })
				return err
			}
			key := fmt.Sprintf("%s-s%d", id, i)
			err := e.CreateSession(storage.Session{Key: key, AccountID: id, ExpiresAt: hour})
			if err == nil {
				mu.Lock()
				made = append(made, key)
				mu.Unlock()
			}
			if errors.Is(err, storage.ErrStale) {
				return nil
			}
			return err
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for _, key := range made {
			if s, err := e.Session(key); err == nil {
				t.Fatalf("round %d: session %s made under credential version %d outlived the password change", round, key, s.CredentialVersion)
			}
		}
	}
}

func testFlows(t *testing.T, e Engine) {
	f := storage.Flow{ID: "f1", Purpose: "register", Email: "jan@example.nl", Stage: "code", Return: "/x", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}
	if err := e.PutFlow(f); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Flow("f1"); err != nil || !same(got, f) {
		t.Fatalf("Flow = %+v, %v, want %+v", got, err, f)
	}
	f.Stage = "verified"
	if err := e.PutFlow(f); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Flow("f1"); err != nil || got.Stage != "verified" {
		t.Fatalf("a flow written again: %+v, %v", got, err)
	}
	if err := e.DeleteFlow("f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Flow("f1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted flow: %v, want ErrNotFound", err)
	}
	if _, err := e.Flow("unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an unknown flow: %v, want ErrNotFound", err)
	}
}
