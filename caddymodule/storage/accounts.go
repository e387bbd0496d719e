package storage

import (
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
}

// CredentialsDiffer reports whether b logs in differently from a, which
// moves the account's CredentialVersion and ends its sessions. A new kind
// of credential (a second factor) belongs here too.
func CredentialsDiffer(a, b Account) bool {
	return a.PasswordHash != b.PasswordHash || a.Disabled != b.Disabled
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
