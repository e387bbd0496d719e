package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// testChangeEmailMovesTheAddressAndEndsSessions: the account and its
// unique address move together, the old address is free again, the
// credential version moves and every session ends, in one write that
// moves the versions of the account and of each session.
func testChangeEmailMovesTheAddressAndEndsSessions(t *testing.T, e Engine) {
	jan := createAccount(t, e, "jan")
	start := now()
	var keys []string
	for i := range 2 {
		s := storage.Session{Key: fmt.Sprint("jan-", i), AccountID: "jan", CreatedAt: start, LastSeen: start, ExpiresAt: start.Add(time.Hour)}
		if err := e.CreateSession(s); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Key)
	}
	before := map[string]uint64{"jan": e.Version("jan")}
	for _, k := range keys {
		before[k] = e.Version(k)
	}

	got, err := e.ChangeEmail("jan", "jan.nieuw@example.nl")
	if err != nil {
		t.Fatal(err)
	}
	want := jan
	want.Email, want.CredentialVersion = "jan.nieuw@example.nl", jan.CredentialVersion+1
	if !same(got, want) {
		t.Fatalf("ChangeEmail returned %+v, want %+v", got, want)
	}
	if stored, err := e.Account("jan"); err != nil || !same(stored, want) {
		t.Fatalf("stored account %+v, %v; want %+v", stored, err, want)
	}
	if a, err := e.AccountByEmail("jan.nieuw@example.nl"); err != nil || a.ID != "jan" {
		t.Fatalf("the new address leads to %q, %v", a.ID, err)
	}
	if _, err := e.AccountByEmail(jan.Email); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the old address still leads somewhere: %v", err)
	}
	for k, v := range before {
		if e.Version(k) == v {
			t.Errorf("the version of %s did not move", k)
		}
	}
	for _, k := range keys {
		if _, err := e.Session(k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session %s survived the change: %v", k, err)
		}
	}
	if list, err := e.AccountSessions("jan"); err != nil || len(list) != 0 {
		t.Errorf("sessions listed after the change: %+v, %v", list, err)
	}
	// A login that read the account before the change gets no session.
	late := storage.Session{Key: "late", AccountID: "jan", ExpiresAt: start.Add(time.Hour), CredentialVersion: jan.CredentialVersion}
	if err := e.CreateSession(late); !errors.Is(err, storage.ErrStale) {
		t.Errorf("a session under the old credentials: %v, want ErrStale", err)
	}
	if err := e.CreateAccount(storage.Account{ID: "other", Email: jan.Email}); err != nil {
		t.Errorf("the old address is not free again: %v", err)
	}
}

// testChangeEmailToATakenAddressChangesNothing: ErrExists, and the
// account, its address and its sessions are as they were.
func testChangeEmailToATakenAddressChangesNothing(t *testing.T, e Engine) {
	jan := createAccount(t, e, "jan")
	piet := createAccount(t, e, "piet")
	start := now()
	if err := e.CreateSession(storage.Session{Key: "jan-1", AccountID: "jan", ExpiresAt: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ChangeEmail("jan", piet.Email); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("moving to another account's address: %v, want ErrExists", err)
	}
	if stored, err := e.Account("jan"); err != nil || !same(stored, jan) {
		t.Fatalf("a refused change changed the account: %+v, %v", stored, err)
	}
	for email, id := range map[string]string{jan.Email: "jan", piet.Email: "piet"} {
		if a, err := e.AccountByEmail(email); err != nil || a.ID != id {
			t.Fatalf("%s leads to %q, %v; want %s", email, a.ID, err, id)
		}
	}
	if _, err := e.Session("jan-1"); err != nil {
		t.Fatalf("a refused change ended a session: %v", err)
	}
	if _, err := e.ChangeEmail("nobody", "nobody@example.nl"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("changing a missing account: %v, want ErrNotFound", err)
	}
	if _, err := e.AccountByEmail("nobody@example.nl"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused change left its address behind: %v", err)
	}
}

// testConcurrentClaimsOfOneAddress: accounts moving to an address race
// registrations of it; each address ends up with exactly one account, and
// every address leads to the account that holds it. Each address has
// movers of its own, so no winner moves on and frees it.
func testConcurrentClaimsOfOneAddress(t *testing.T, e Engine) {
	mover := func(key string, i int) string { return fmt.Sprint(key, "-mover-", i) }
	exactlyOnce(t, storage.ErrExists, func(key string) error {
		for i := 1; i < racers; i += 2 {
			if err := e.CreateAccount(storage.Account{ID: mover(key, i), Email: mover(key, i) + "@example.nl"}); err != nil {
				return err
			}
		}
		return nil
	}, func(key string, i int) error {
		email := key + "@example.nl"
		if i%2 == 0 {
			return e.CreateAccount(storage.Account{ID: fmt.Sprint(key, "-", i), Email: email})
		}
		_, err := e.ChangeEmail(mover(key, i), email)
		return err
	})
	all, err := e.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]string{}
	for _, a := range all {
		if other, ok := held[a.Email]; ok {
			t.Fatalf("%s and %s both hold %s", other, a.ID, a.Email)
		}
		held[a.Email] = a.ID
		if b, err := e.AccountByEmail(a.Email); err != nil || b.ID != a.ID {
			t.Fatalf("%s holds %s, which leads to %q (%v)", a.ID, a.Email, b.ID, err)
		}
	}
}
