package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Check reads the whole store in one snapshot and reports every record
// that another record contradicts: an account without its email index
// (or the reverse), a session whose account is gone or that is missing
// from its account's list, a membership without its organisation, account
// or index entry. Each transaction writes all of these together, so after
// any crash Check must find nothing; nil means the store is consistent.
func (s *Store) Check() error {
	var problems []error
	report := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	err := s.view(func(txn *badger.Txn) error {
		has := func(key string) (bool, error) { return exists(txn, key) }

		if err := scanJSON(txn, prefixAccount, func(a storage.Account) error {
			var id string
			switch err := getRaw(txn, prefixAccountEmail+a.Email, &id); {
			case errors.Is(err, storage.ErrNotFound):
				report("account %s: no email index for %q", a.ID, a.Email)
			case err != nil:
				return err
			case id != a.ID:
				report("account %s: its email %q is indexed to %s", a.ID, a.Email, id)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := scanKeys(txn, prefixAccountEmail, func(key string) error {
			email := strings.TrimPrefix(key, prefixAccountEmail)
			var id string
			if err := getRaw(txn, key, &id); err != nil {
				return err
			}
			var a storage.Account
			switch err := getJSON(txn, prefixAccount+id, &a); {
			case errors.Is(err, storage.ErrNotFound):
				report("email index %q: account %s does not exist", email, id)
			case err != nil:
				return err
			case a.Email != email:
				report("email index %q: account %s has the email %q", email, id, a.Email)
			}
			return nil
		}); err != nil {
			return err
		}

		if err := scanJSON(txn, prefixSession, func(ss storage.Session) error {
			for _, key := range []string{prefixAccount + ss.AccountID, prefixAccountSession + ss.AccountID + "/" + ss.Key} {
				ok, err := has(key)
				if err != nil {
					return err
				}
				if !ok {
					report("session %s of account %s: no %s", ss.Key, ss.AccountID, key)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := scanKeys(txn, prefixAccountSession, func(key string) error {
			accountID, sessionKey, _ := strings.Cut(strings.TrimPrefix(key, prefixAccountSession), "/")
			var ss storage.Session
			switch err := getJSON(txn, prefixSession+sessionKey, &ss); {
			case errors.Is(err, storage.ErrNotFound):
				report("account %s lists session %s, which does not exist", accountID, sessionKey)
			case err != nil:
				return err
			case ss.AccountID != accountID:
				report("account %s lists session %s of account %s", accountID, sessionKey, ss.AccountID)
			}
			return nil
		}); err != nil {
			return err
		}

		if err := scanJSON(txn, prefixMember, func(m storage.Membership) error {
			for _, key := range []string{prefixOrg + m.KvK, prefixAccount + m.AccountID, prefixAccountOrg + m.AccountID + "/" + m.KvK} {
				ok, err := has(key)
				if err != nil {
					return err
				}
				if !ok {
					report("membership of %s in %s: no %s", m.AccountID, m.KvK, key)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		return scanKeys(txn, prefixAccountOrg, func(key string) error {
			accountID, kvk, _ := strings.Cut(strings.TrimPrefix(key, prefixAccountOrg), "/")
			ok, err := has(prefixMember + kvk + "/" + accountID)
			if err != nil {
				return err
			}
			if !ok {
				report("account %s lists organisation %s without a membership", accountID, kvk)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: checking: %w", err)
	}
	return errors.Join(problems...)
}

// getRaw reads a value stored as plain bytes (an index entry) into *v.
func getRaw(txn *badger.Txn, key string, v *string) error {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return storage.ErrNotFound
	}
	if err != nil {
		return err
	}
	b, err := item.ValueCopy(nil)
	*v = string(b)
	return err
}
