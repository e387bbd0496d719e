package store

import (
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Key layout of accounts:
//
//	acct/<id>          → Account (JSON)
//	acctemail/<email>  → <id>, the unique index on the normalised email
const (
	prefixAccount      = "acct/"
	prefixAccountEmail = "acctemail/"
)

// CreateAccount writes a new account and its email index in one
// transaction; ErrExists if the email is taken.
func (s *Store) CreateAccount(a storage.Account) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(a.ID)
		taken, err := exists(txn, prefixAccountEmail+a.Email)
		if err != nil {
			return err
		}
		if taken {
			return storage.ErrExists
		}
		if err := put(txn, prefixAccountEmail+a.Email, []byte(a.ID), time.Time{}); err != nil {
			return err
		}
		return putJSON(txn, prefixAccount+a.ID, a, time.Time{})
	})
}

// Account reads an account by ID.
func (s *Store) Account(id string) (storage.Account, error) {
	var a storage.Account
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixAccount+id, &a) })
	return a, err
}

// AccountByEmail reads an account by its normalised email.
func (s *Store) AccountByEmail(email string) (storage.Account, error) {
	var a storage.Account
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixAccountEmail + email))
		if err == badger.ErrKeyNotFound {
			return storage.ErrNotFound
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

// UpdateAccount applies change to the stored account in one transaction,
// by the rule of storage.ChangeAccount.
func (s *Store) UpdateAccount(id string, change func(*storage.Account) error) (storage.Account, error) {
	var a storage.Account
	err := s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(id)
		a = storage.Account{}
		if err := getJSON(txn, prefixAccount+id, &a); err != nil {
			return err
		}
		var endSessions bool
		var err error
		if a, endSessions, err = storage.ChangeAccount(a, change); err != nil {
			return err
		}
		if endSessions {
			if err := deleteAccountSessions(txn, ch, id); err != nil {
				return err
			}
		}
		return putJSON(txn, prefixAccount+id, a, time.Time{})
	})
	return a, err
}

// Accounts lists every account, ordered by ID.
func (s *Store) Accounts() ([]storage.Account, error) {
	var out []storage.Account
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixAccount, func(a storage.Account) error {
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// ChangeEmail moves the account and its acctemail index to a new
// address, moves its credential version and ends its sessions, in one
// transaction; ErrExists if the address is another account's. Reading the
// new index key makes a racing registration or change of the same
// address conflict with this transaction, and the one run again sees the
// address taken.
func (s *Store) ChangeEmail(id, email string) (storage.Account, error) {
	var a storage.Account
	err := s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(id)
		a = storage.Account{}
		if err := getJSON(txn, prefixAccount+id, &a); err != nil {
			return err
		}
		if a.Email != email {
			taken, err := exists(txn, prefixAccountEmail+email)
			if err != nil {
				return err
			}
			if taken {
				return storage.ErrExists
			}
			if err := del(txn, prefixAccountEmail+a.Email); err != nil {
				return err
			}
			if err := put(txn, prefixAccountEmail+email, []byte(id), time.Time{}); err != nil {
				return err
			}
		}
		a.Email = email
		a.CredentialVersion++
		if err := deleteAccountSessions(txn, ch, id); err != nil {
			return err
		}
		return putJSON(txn, prefixAccount+id, a, time.Time{})
	})
	return a, err
}
