package store

import (
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Key layout of accounts:
//
//	acct/<id>          → Account (JSON)
//	acctemail/<email>  → <id>, the unique index on the normalised email
const (
	prefixAccount      = "acct/"
	prefixAccountEmail = "acctemail/"
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

// credentialsDiffer reports whether b logs in differently from a. A new
// kind of credential (a second factor) belongs here too.
func credentialsDiffer(a, b Account) bool {
	return a.PasswordHash != b.PasswordHash || a.Disabled != b.Disabled
}

// CreateAccount writes a new account and its email index in one
// transaction; ErrExists if the email is taken.
func (s *Store) CreateAccount(a Account) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(a.ID)
		taken, err := exists(txn, prefixAccountEmail+a.Email)
		if err != nil {
			return err
		}
		if taken {
			return ErrExists
		}
		if err := put(txn, prefixAccountEmail+a.Email, []byte(a.ID), time.Time{}); err != nil {
			return err
		}
		return putJSON(txn, prefixAccount+a.ID, a, time.Time{})
	})
}

// Account reads an account by ID.
func (s *Store) Account(id string) (Account, error) {
	var a Account
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixAccount+id, &a) })
	return a, err
}

// AccountByEmail reads an account by its normalised email.
func (s *Store) AccountByEmail(email string) (Account, error) {
	var a Account
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixAccountEmail + email))
		if err == badger.ErrKeyNotFound {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		id, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		return getJSON(txn, prefixAccount+string(id), &a)
	})
	return a, err
}

// UpdateAccount applies change to the stored account in one transaction.
// The email (and so its index) cannot be changed here, nor the credential
// version by hand: a change of the password or of Disabled moves it and
// ends every session of the account in the same transaction, so no
// session outlives the credentials that made it.
func (s *Store) UpdateAccount(id string, change func(*Account) error) (Account, error) {
	var a Account
	err := s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(id)
		a = Account{}
		if err := getJSON(txn, prefixAccount+id, &a); err != nil {
			return err
		}
		before := a
		if err := change(&a); err != nil {
			return err
		}
		a.Email = before.Email
		a.CredentialVersion = before.CredentialVersion
		if credentialsDiffer(before, a) {
			a.CredentialVersion++
			if err := deleteAccountSessions(txn, ch, id); err != nil {
				return err
			}
		}
		return putJSON(txn, prefixAccount+id, a, time.Time{})
	})
	return a, err
}

// Accounts lists every account, ordered by ID.
func (s *Store) Accounts() ([]Account, error) {
	var out []Account
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixAccount, func(a Account) error {
			out = append(out, a)
			return nil
		})
	})
	return out, err
}
