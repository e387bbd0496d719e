package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/internal/testport"
)

// TestResetFactorsCommand: an operator takes every second factor off an
// account whose owner lost them; the account's sessions end with them,
// and another account keeps its own.
func TestResetFactorsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	accounts := &account.Service{Store: st, Hasher: account.NewTestHasher()}
	now := time.Now()
	withFactors := func(email string) storage.Account {
		a, err := accounts.Create(context.Background(), email, "Iemand", password, "nl")
		if err != nil {
			t.Fatal(err)
		}
		a, err = st.UpdateAccount(a.ID, func(a *storage.Account) error {
			a.TOTP = &storage.TOTPFactor{SealedSecret: []byte("sealed"), CreatedAt: now}
			a.RecoveryCodes, a.RecoveryCodesAt = [][]byte{[]byte("hash")}, now
			a.Passkeys = []storage.Passkey{{ID: []byte("pk"), Name: "laptop", CreatedAt: now}}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSession(storage.Session{Key: "s-" + a.ID, AccountID: a.ID, CreatedAt: now, LastSeen: now,
			ExpiresAt: now.Add(time.Hour), CredentialVersion: a.CredentialVersion}); err != nil {
			t.Fatal(err)
		}
		return a
	}
	jan, piet := withFactors("jan@example.nl"), withFactors("piet@example.nl")
	st.Close()

	where := []string{"--address=" + testport.Addr(t), "--storage", dir}
	out, err := run(t, "", nil, append([]string{"accounts", "reset-factors", "--email", "Jan@Example.nl"}, where...)...)
	if err != nil || !strings.Contains(out, "removed the second factors of jan@example.nl") {
		t.Fatalf("reset-factors: %v\n%s", err, out)
	}
	out, err = run(t, "", nil, append([]string{"accounts", "reset-factors", "--email", "niemand@example.nl"}, where...)...)
	if err == nil || !strings.Contains(out, "no account for niemand@example.nl") {
		t.Errorf("reset-factors of an unknown address: %v\n%s", err, out)
	}

	st, err = store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	after, err := st.Account(jan.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.HasSecondFactor() || len(after.RecoveryCodes) != 0 || after.CredentialVersion == jan.CredentialVersion {
		t.Errorf("after the reset: totp %v, %d passkeys, %d recovery codes, credential version %d (was %d)",
			after.TOTP, len(after.Passkeys), len(after.RecoveryCodes), after.CredentialVersion, jan.CredentialVersion)
	}
	if _, err := st.Session("s-" + jan.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Jan's session after the reset: %v, want ErrNotFound", err)
	}
	other, err := st.Account(piet.ID)
	if err != nil || !other.HasSecondFactor() {
		t.Errorf("Piet's factors after Jan's reset: %+v, %v", other, err)
	}
	if _, err := st.Session("s-" + piet.ID); err != nil {
		t.Errorf("Piet's session after Jan's reset: %v", err)
	}
}
