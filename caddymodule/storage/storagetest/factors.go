package storagetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// testSecondFactorsAreKeptAndRemovingOneEndsSessions: an account's second
// factors come back as written; adding one or using one (its last step,
// a spent recovery code) leaves the sessions, removing one ends them in
// the same transaction.
func testSecondFactorsAreKeptAndRemovingOneEndsSessions(t *testing.T, e Engine) {
	a := createAccount(t, e, "u-factors")
	session := func(key string, version uint64) {
		t.Helper()
		if err := e.CreateSession(storage.Session{Key: key, AccountID: a.ID, CredentialVersion: version, AMR: []string{"pwd"}, CreatedAt: now(), LastSeen: now(), ExpiresAt: now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	session("s-before", a.CredentialVersion)
	withFactors, err := e.UpdateAccount(a.ID, func(a *storage.Account) error {
		a.TOTP = &storage.TOTPFactor{SealedSecret: []byte("sealed"), LastStep: 7, CreatedAt: now()}
		a.RecoveryCodes, a.RecoveryCodesAt = [][]byte{[]byte("h1"), []byte("h2")}, now()
		a.Passkeys = []storage.Passkey{{ID: []byte("cred"), PublicKey: []byte("pk"), SignCount: 3, Transports: []string{"internal"},
			UserPresent: true, UserVerified: true, Name: "Laptop", CreatedAt: now()}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Account(a.ID); err != nil || !same(got, withFactors) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, withFactors)
	}
	used, err := e.UpdateAccount(a.ID, func(a *storage.Account) error {
		t := *a.TOTP
		t.LastStep = 8
		a.TOTP = &t
		a.RecoveryCodes = slices.Clone(a.RecoveryCodes[1:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if used.CredentialVersion != a.CredentialVersion {
		t.Fatal("adding or using a factor moved the credential version")
	}
	if _, err := e.Session("s-before"); err != nil {
		t.Fatalf("adding or using a factor ended a session: %v", err)
	}
	removed, err := e.UpdateAccount(a.ID, func(a *storage.Account) error {
		a.Passkeys = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if removed.CredentialVersion == used.CredentialVersion {
		t.Fatal("removing a passkey did not move the credential version")
	}
	if _, err := e.Session("s-before"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a session outlived the removal of a passkey: %v", err)
	}
	session("s-after", removed.CredentialVersion)
	if _, err := e.UpdateAccount(a.ID, func(a *storage.Account) error {
		a.TOTP = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session("s-after"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a session outlived the removal of the authenticator app: %v", err)
	}
}

// testPasskeyCeremonyIsKeptInItsFlow: a flow keeps a passkey ceremony's
// state as written.
func testPasskeyCeremonyIsKeptInItsFlow(t *testing.T, e Engine) {
	f := storage.Flow{ID: "ceremony-1", Purpose: "passkey-login", Stage: "code", Ceremony: []byte(`{"challenge":"abc"}`),
		CreatedAt: now(), ExpiresAt: now().Add(5 * time.Minute)}
	if err := e.PutFlow(f); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Flow(f.ID); err != nil || !same(got, f) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, f)
	}
}
