package account

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Second-factor outcomes, each its own message to the person.
var (
	// ErrFactorWrong is a wrong, reused or expired authenticator or
	// recovery code.
	ErrFactorWrong = errors.New("the code is not right or was used already")
	// ErrNoTOTP means the account has no authenticator app set up.
	ErrNoTOTP = errors.New("no authenticator app is set up")
	// ErrTOTPExists means an authenticator app is set up already; it is
	// removed before another is set up.
	ErrTOTPExists = errors.New("an authenticator app is set up already")
	// ErrSetupExpired is a setup form that is too old or not ours.
	ErrSetupExpired = errors.New("the setup has expired; start again")
	// ErrLastFactor refuses removing the last second factor of an account
	// the policy requires one of.
	ErrLastFactor = errors.New("the last second factor cannot be removed")
	// ErrNoSuchFactor names a factor the account does not have.
	ErrNoSuchFactor = errors.New("the account has no such factor")
)

// Factors keeps an account's second factors: an authenticator app,
// recovery codes and passkeys. Every change goes through the store's
// UpdateAccount, so a code is checked and spent in one transaction.
type Factors struct {
	Store Store
	// Key is the server's factor secret: it seals authenticator secrets
	// and keys the recovery-code hashes, so a copy of the store without
	// it yields neither codes nor a way to test guesses offline.
	Key []byte
	// Issuer names the service in authenticator apps.
	Issuer string
	Now    func() time.Time
}

func (f *Factors) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// subkey derives the key for one use from the factor secret.
func (f *Factors) subkey(use string) []byte {
	k, err := hkdf.Key(sha256.New, f.Key, nil, "wijgate factors: "+use, 32)
	if err != nil {
		// hkdf.Key fails only for a length beyond 255 hash sizes.
		panic(err)
	}
	return k
}

// seal encrypts plain with AES-GCM, bound to context (the account, the
// purpose), so a sealed value moved to another account does not open.
func (f *Factors) seal(plain []byte, context string) []byte {
	gcm := f.gcm()
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plain, []byte(context))
}

// open decrypts what seal made for context.
func (f *Factors) open(sealed []byte, context string) ([]byte, error) {
	gcm := f.gcm()
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("account: sealed value too short")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte(context))
}

func (f *Factors) gcm() cipher.AEAD {
	block, err := aes.NewCipher(f.subkey("seal"))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return gcm
}

// RemoveTOTP takes the authenticator app off the account. While a factor
// is required, the last one stays; recovery codes go with the last one,
// since they only back a factor up. Removing moves the credential version
// (storage.CredentialsDiffer), which ends the account's sessions; the
// portal starts the current browser a new one.
func (f *Factors) RemoveTOTP(accountID string, required bool) (storage.Account, error) {
	return f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		if a.TOTP == nil {
			return ErrNoSuchFactor
		}
		a.TOTP = nil
		return lastFactorRule(a, required)
	})
}

// lastFactorRule keeps the last factor while one is required, and drops
// the recovery codes with it otherwise.
func lastFactorRule(a *storage.Account, required bool) error {
	if a.HasSecondFactor() {
		return nil
	}
	if required {
		return ErrLastFactor
	}
	a.RecoveryCodes, a.RecoveryCodesAt = nil, time.Time{}
	return nil
}

// Policy says who must have a second factor: the `second_factor` option.
type Policy string

// The policies; the zero value reads as PolicyAdmins.
const (
	PolicyAdmins   Policy = "admins"
	PolicyEveryone Policy = "everyone"
	PolicyOff      Policy = "off"
)

// ParsePolicy reads a configured policy; "" is the default, admins.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "", PolicyAdmins:
		return PolicyAdmins, nil
	case PolicyEveryone, PolicyOff:
		return Policy(s), nil
	}
	return "", fmt.Errorf("second_factor must be admins, everyone or off, not %q", s)
}

// Requires reports whether an account must have a second factor; admin
// says whether it is an admin of some organisation.
func (p Policy) Requires(admin bool) bool {
	switch p {
	case PolicyOff:
		return false
	case PolicyEveryone:
		return true
	}
	return admin
}

// AdminNeedsMFA reports whether acting as an admin takes a session that
// passed a second factor: under every policy but off.
func (p Policy) AdminNeedsMFA() bool { return p != PolicyOff }
