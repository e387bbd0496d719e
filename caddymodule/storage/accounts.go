package storage

import (
	"bytes"
	"slices"
	"time"
)

// Account is a Wij Techniek account.
type Account struct {
	ID    string `json:"id"`
	Email string `json:"email"` // normalised by the account package
	Name  string `json:"name"`
	// PasswordHash is an argon2id PHC string.
	PasswordHash string `json:"password_hash"`
	// Lang is the language the person last chose ("nl" or "en").
	Lang              string    `json:"lang,omitempty"`
	Disabled          bool      `json:"disabled,omitempty"`
	CreatedAt         time.Time `json:"created_at"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
	// CredentialVersion moves with every change to what lets the account
	// log in (password, disabled). A session records the version it was
	// made under and is valid only while the account still has it.
	CredentialVersion uint64 `json:"credential_version,omitempty"`
	// TOTP is the authenticator-app factor; nil when there is none.
	TOTP *TOTPFactor `json:"totp,omitempty"`
	// RecoveryCodes are keyed hashes of the recovery codes not yet used.
	RecoveryCodes [][]byte `json:"recovery_codes,omitempty"`
	// RecoveryCodesAt is when the current recovery codes were made.
	RecoveryCodesAt time.Time `json:"recovery_codes_at,omitzero"`
	// Passkeys are the account's WebAuthn credentials.
	Passkeys []Passkey `json:"passkeys,omitempty"`
}

// TOTPFactor is an authenticator app (RFC 6238: SHA-1, six digits, 30 s).
type TOTPFactor struct {
	// SealedSecret is the shared secret, sealed with the server's factor
	// key, so a copy of the store alone does not yield codes.
	SealedSecret []byte `json:"sealed_secret"`
	// LastStep is the time step of the last accepted code; a code of that
	// step or an earlier one is refused, so each code works once.
	LastStep  int64     `json:"last_step,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Passkey is a WebAuthn credential, with what the relying party must keep.
type Passkey struct {
	ID         []byte   `json:"id"`
	PublicKey  []byte   `json:"public_key"`
	SignCount  uint32   `json:"sign_count,omitempty"`
	Transports []string `json:"transports,omitempty"`
	AAGUID     []byte   `json:"aaguid,omitempty"`
	// The authenticator flags seen at registration; BackupState is
	// updated at each use.
	UserPresent    bool      `json:"user_present,omitempty"`
	UserVerified   bool      `json:"user_verified,omitempty"`
	BackupEligible bool      `json:"backup_eligible,omitempty"`
	BackupState    bool      `json:"backup_state,omitempty"`
	Name           string    `json:"name"`
	CreatedAt      time.Time `json:"created_at"`
	LastUsedAt     time.Time `json:"last_used_at,omitzero"`
}

// HasSecondFactor reports whether the account has a factor besides its
// password (recovery codes alone are not one: they back up a factor).
func (a Account) HasSecondFactor() bool { return a.TOTP != nil || len(a.Passkeys) > 0 }

// CredentialsDiffer reports whether b logs in differently from a, which
// moves the account's CredentialVersion and ends its sessions. A second
// factor that is removed or replaced counts: whoever set it up elsewhere
// loses what it let them do. One that is added, or used (its last step,
// sign count, a spent recovery code), does not: adding a passkey must not
// log its owner out.
func CredentialsDiffer(a, b Account) bool {
	return a.PasswordHash != b.PasswordHash || a.Disabled != b.Disabled ||
		totpRemoved(a.TOTP, b.TOTP) || passkeyRemoved(a.Passkeys, b.Passkeys)
}

func totpRemoved(a, b *TOTPFactor) bool {
	return a != nil && (b == nil || !bytes.Equal(a.SealedSecret, b.SealedSecret))
}

func passkeyRemoved(a, b []Passkey) bool {
	for _, k := range a {
		if !slices.ContainsFunc(b, func(o Passkey) bool { return bytes.Equal(o.ID, k.ID) }) {
			return true
		}
	}
	return false
}

// ChangeAccount is the rule every engine's UpdateAccount applies to the
// record it read: change may not touch the email (it has an index) nor set
// the credential version, which moves when the credentials differ, and
// then endSessions says that every session of the account ends in the same
// transaction, so no session outlives the credentials that made it.
func ChangeAccount(before Account, change func(*Account) error) (after Account, endSessions bool, err error) {
	after = before
	if err := change(&after); err != nil {
		return before, false, err
	}
	after.Email = before.Email
	after.CredentialVersion = before.CredentialVersion
	if CredentialsDiffer(before, after) {
		after.CredentialVersion++
		return after, true, nil
	}
	return after, false, nil
}

// VerificationCode is an emailed code, stored only as a keyed hash.
type VerificationCode struct {
	Purpose   string    `json:"purpose"`
	Email     string    `json:"email"`
	Hash      []byte    `json:"hash"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Flow is the server-side state of a multi-step form (registration,
// password reset), found through a random ID in a cookie.
type Flow struct {
	ID      string `json:"id"`
	Purpose string `json:"purpose"`
	Email   string `json:"email,omitempty"`
	// AccountID is the account a flow acts for once it is known (a login
	// waiting for its second factor, an email change).
	AccountID string `json:"account_id,omitempty"`
	// Stage is how far the person got: "email", "code", "verified".
	Stage     string    `json:"stage"`
	Return    string    `json:"return,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Ceremony is a passkey ceremony's state (its challenge), kept until
	// the browser answers it once.
	Ceremony []byte `json:"ceremony,omitempty"`
}

// Counter counts events in a window, for rate limits and login
// regulation.
type Counter struct {
	Count       int       `json:"count"`
	WindowStart time.Time `json:"window_start"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Lockouts is how many times in a row the key was locked; it makes
	// the next wait longer.
	Lockouts int `json:"lockouts,omitempty"`
}
