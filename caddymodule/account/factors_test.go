package account

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// factorsFixture is an account in a real store with a factor service on
// an injected clock.
func factorsFixture(t *testing.T, now *time.Time) (*Factors, storage.Account) {
	t.Helper()
	st := newTestStore(t)
	a := storage.Account{ID: NewAccountID(), Email: "anna@example.nl", Name: "Anna", PasswordHash: "x", CreatedAt: *now}
	if err := st.CreateAccount(a); err != nil {
		t.Fatal(err)
	}
	return &Factors{Store: st, Key: bytes.Repeat([]byte("k"), 32), Issuer: "Wij Techniek", Now: func() time.Time { return *now }}, a
}

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := hotp.GenerateCodeCustom(secret, uint64(at.Unix()/TOTPPeriod), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withTOTP sets up an authenticator app for the account and returns its
// secret.
func withTOTP(t *testing.T, f *Factors, a storage.Account, now *time.Time) string {
	t.Helper()
	setup, err := f.NewTOTP(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ConfirmTOTP(a.ID, setup.Sealed, setup.Expires, codeAt(t, setup.Secret, *now)); err != nil {
		t.Fatalf("confirming with a right code: %v", err)
	}
	return setup.Secret
}

func TestTOTPSecretIsSealedAtRest(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f, a := factorsFixture(t, &now)
	secret := withTOTP(t, f, a, &now)
	stored, err := f.Store.Account(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.TOTP == nil || bytes.Contains(stored.TOTP.SealedSecret, []byte(secret)) {
		t.Fatalf("stored factor %+v holds the secret in the clear", stored.TOTP)
	}
	// Without the server's key the stored value opens to nothing.
	other := &Factors{Store: f.Store, Key: bytes.Repeat([]byte("o"), 32), Now: f.Now}
	now = now.Add(time.Minute)
	if _, err := other.CheckTOTP(a.ID, codeAt(t, secret, now)); err == nil {
		t.Fatal("a server with another key accepted the code")
	}
}

func TestTOTPCodeWorksOnceAndOneStepOfDrift(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f, a := factorsFixture(t, &now)
	secret := withTOTP(t, f, a, &now)

	// The code that confirmed the setup is spent.
	if _, err := f.CheckTOTP(a.ID, codeAt(t, secret, now)); !errors.Is(err, ErrFactorWrong) {
		t.Fatalf("the setup's code again: %v, want ErrFactorWrong", err)
	}
	now = now.Add(2 * time.Minute)
	code := codeAt(t, secret, now)
	if _, err := f.CheckTOTP(a.ID, code); err != nil {
		t.Fatalf("a fresh code: %v", err)
	}
	if _, err := f.CheckTOTP(a.ID, code); !errors.Is(err, ErrFactorWrong) {
		t.Fatalf("the same code twice: %v, want ErrFactorWrong", err)
	}
	// A phone one step behind or ahead is accepted; two steps is not.
	now = now.Add(5 * time.Minute)
	if _, err := f.CheckTOTP(a.ID, codeAt(t, secret, now.Add(-TOTPPeriod*time.Second))); err != nil {
		t.Fatalf("a code one step old: %v", err)
	}
	now = now.Add(5 * time.Minute)
	if _, err := f.CheckTOTP(a.ID, codeAt(t, secret, now.Add(TOTPPeriod*time.Second))); err != nil {
		t.Fatalf("a code one step ahead: %v", err)
	}
	now = now.Add(5 * time.Minute)
	if _, err := f.CheckTOTP(a.ID, codeAt(t, secret, now.Add(-2*TOTPPeriod*time.Second))); !errors.Is(err, ErrFactorWrong) {
		t.Fatalf("a code two steps old: %v, want ErrFactorWrong", err)
	}
	if _, err := f.CheckTOTP(a.ID, "12345"); !errors.Is(err, ErrFactorWrong) {
		t.Fatalf("five digits: %v, want ErrFactorWrong", err)
	}
}

func TestTOTPSetupFormIsBoundToAccountAndTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f, a := factorsFixture(t, &now)
	setup, err := f.NewTOTP(a)
	if err != nil {
		t.Fatal(err)
	}
	other := storage.Account{ID: NewAccountID(), Email: "bob@example.nl", Name: "Bob", PasswordHash: "x"}
	if err := f.Store.CreateAccount(other); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ConfirmTOTP(other.ID, setup.Sealed, setup.Expires, codeAt(t, setup.Secret, now)); !errors.Is(err, ErrSetupExpired) {
		t.Fatalf("another account's setup: %v, want ErrSetupExpired", err)
	}
	if _, err := f.ConfirmTOTP(a.ID, setup.Sealed, setup.Expires.Add(time.Hour), codeAt(t, setup.Secret, now)); !errors.Is(err, ErrSetupExpired) {
		t.Fatalf("a moved expiry: %v, want ErrSetupExpired", err)
	}
	now = now.Add(TOTPSetupValidity)
	if _, err := f.ConfirmTOTP(a.ID, setup.Sealed, setup.Expires, codeAt(t, setup.Secret, now)); !errors.Is(err, ErrSetupExpired) {
		t.Fatalf("an expired setup: %v, want ErrSetupExpired", err)
	}
}

func TestRecoveryCodesAreHashedAndSingleUse(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f, a := factorsFixture(t, &now)
	codes, stored, err := f.NewRecoveryCodes(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodeCount || len(stored.RecoveryCodes) != RecoveryCodeCount {
		t.Fatalf("%d codes, %d stored; want %d", len(codes), len(stored.RecoveryCodes), RecoveryCodeCount)
	}
	for _, h := range stored.RecoveryCodes {
		for _, c := range codes {
			if bytes.Contains(h, []byte(c)) || bytes.Contains(h, []byte(strings.ReplaceAll(c, "-", ""))) {
				t.Fatal("a recovery code is stored in the clear")
			}
		}
	}
	// Typed with capitals and spaces, it still works — once.
	typed := strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))
	if _, err := f.UseRecoveryCode(a.ID, typed); err != nil {
		t.Fatalf("a right recovery code: %v", err)
	}
	if _, err := f.UseRecoveryCode(a.ID, codes[3]); !errors.Is(err, ErrFactorWrong) {
		t.Fatalf("a spent recovery code: %v, want ErrFactorWrong", err)
	}
	// New codes void the old ones.
	if _, _, err := f.NewRecoveryCodes(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.UseRecoveryCode(a.ID, codes[4]); !errors.Is(err, ErrFactorWrong) {
		t.Fatalf("a code of the old set: %v, want ErrFactorWrong", err)
	}
}

func TestRemovingAFactorMovesTheCredentialVersionAndAddingDoesNot(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f, a := factorsFixture(t, &now)
	secret := withTOTP(t, f, a, &now)
	now = now.Add(time.Minute)
	used, err := f.CheckTOTP(a.ID, codeAt(t, secret, now))
	if err != nil {
		t.Fatal(err)
	}
	if used.CredentialVersion != a.CredentialVersion {
		t.Fatalf("adding and using a factor moved the credential version %d → %d", a.CredentialVersion, used.CredentialVersion)
	}
	if _, err := f.RemoveTOTP(a.ID, true); !errors.Is(err, ErrLastFactor) {
		t.Fatalf("removing the last factor while required: %v, want ErrLastFactor", err)
	}
	removed, err := f.RemoveTOTP(a.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if removed.TOTP != nil || removed.CredentialVersion == used.CredentialVersion {
		t.Fatalf("after removal: totp %v, credential version %d (was %d)", removed.TOTP, removed.CredentialVersion, used.CredentialVersion)
	}
}
