package account

import (
	"bytes"
	"errors"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Passkey rules: discoverable credentials (the passkey names the account,
// so it signs in without an email address), user verification required
// (a PIN or fingerprint on the device), at most MaxPasskeys per account,
// each named by its owner in at most MaxPasskeyName characters.
const (
	MaxPasskeys    = 10
	MaxPasskeyName = 60
)

// Passkey outcomes, each its own message to the person.
var (
	ErrPasskeyExists  = errors.New("this passkey is registered already")
	ErrTooManyPasskey = errors.New("the account has the most passkeys it may have")
	// ErrPasskeyCloned refuses an assertion whose signature counter went
	// back: a copy of the key may be in use.
	ErrPasskeyCloned = errors.New("the passkey's counter went back; it may have been copied")
)

// PasskeySelection is what a passkey must be.
var PasskeySelection = protocol.AuthenticatorSelection{
	ResidentKey:        protocol.ResidentKeyRequirementRequired,
	RequireResidentKey: protocol.ResidentKeyRequired(),
	UserVerification:   protocol.VerificationRequired,
}

// PasskeyUser is an account as the WebAuthn relying party sees it; its
// user handle is the account ID.
type PasskeyUser struct{ Account storage.Account }

// WebAuthnID is the user handle a passkey stores: the account ID.
func (u PasskeyUser) WebAuthnID() []byte { return []byte(u.Account.ID) }

// WebAuthnName is the email address, as the device shows it.
func (u PasskeyUser) WebAuthnName() string { return u.Account.Email }

// WebAuthnDisplayName is the person's name.
func (u PasskeyUser) WebAuthnDisplayName() string { return u.Account.Name }

// WebAuthnCredentials are the account's passkeys as credential records.
func (u PasskeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.Account.Passkeys))
	for _, k := range u.Account.Passkeys {
		c := webauthn.Credential{ID: k.ID, PublicKey: k.PublicKey,
			Flags: webauthn.CredentialFlags{UserPresent: k.UserPresent, UserVerified: k.UserVerified,
				BackupEligible: k.BackupEligible, BackupState: k.BackupState},
			Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount}}
		for _, t := range k.Transports {
			c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
		}
		out = append(out, c)
	}
	return out
}

// AddPasskey keeps a passkey the account just registered, under the name
// its owner gave it.
func (f *Factors) AddPasskey(accountID string, c *webauthn.Credential, name string) (storage.Account, error) {
	now := f.now()
	k := storage.Passkey{ID: c.ID, PublicKey: c.PublicKey, SignCount: c.Authenticator.SignCount,
		AAGUID: c.Authenticator.AAGUID, UserPresent: c.Flags.UserPresent, UserVerified: c.Flags.UserVerified,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState, Name: name, CreatedAt: now}
	for _, t := range c.Transport {
		k.Transports = append(k.Transports, string(t))
	}
	return f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		if passkeyIndex(a.Passkeys, c.ID) >= 0 {
			return ErrPasskeyExists
		}
		if len(a.Passkeys) >= MaxPasskeys {
			return ErrTooManyPasskey
		}
		a.Passkeys = append(slices.Clone(a.Passkeys), k)
		return nil
	})
}

// UsePasskey records a verified assertion of the passkey: its counter,
// backup state and time of use. A counter that went back is refused.
func (f *Factors) UsePasskey(accountID string, c *webauthn.Credential) (storage.Account, error) {
	if c.Authenticator.CloneWarning {
		return storage.Account{}, ErrPasskeyCloned
	}
	now := f.now()
	return f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		i := passkeyIndex(a.Passkeys, c.ID)
		if i < 0 {
			return ErrNoSuchFactor
		}
		a.Passkeys = slices.Clone(a.Passkeys)
		k := &a.Passkeys[i]
		k.SignCount, k.BackupState, k.LastUsedAt = c.Authenticator.SignCount, c.Flags.BackupState, now
		return nil
	})
}

// RemovePasskey takes a passkey off the account, by the rules of
// RemoveTOTP.
func (f *Factors) RemovePasskey(accountID string, id []byte, required bool) (storage.Account, error) {
	return f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		i := passkeyIndex(a.Passkeys, id)
		if i < 0 {
			return ErrNoSuchFactor
		}
		a.Passkeys = slices.Delete(slices.Clone(a.Passkeys), i, i+1)
		return lastFactorRule(a, required)
	})
}

func passkeyIndex(keys []storage.Passkey, id []byte) int {
	return slices.IndexFunc(keys, func(k storage.Passkey) bool { return bytes.Equal(k.ID, id) })
}
