package store

import (
	"errors"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Key layout of sessions (both records expire with the session):
//
//	sess/<key>                   → Session (JSON)
//	acctsess/<accountID>/<key>   → empty, to end all of an account's sessions
const (
	prefixSession        = "sess/"
	prefixAccountSession = "acctsess/"
)

// CreateSession writes a new session, only if its account still has the
// credential version the session carries and is not disabled: a login
// that checked a password just replaced gets ErrStale, never a session.
// The account record is written back unchanged, so a concurrent
// credential change, which reads it, conflicts with this transaction and
// runs again, then seeing and ending this session (badger detects
// conflicts on keys read, not on a prefix scanned). A new session is in
// no cache yet, so no version moves.
func (s *Store) CreateSession(ss storage.Session) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		var a storage.Account
		err := getJSON(txn, prefixAccount+ss.AccountID, &a)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.ErrStale
		}
		if err != nil {
			return err
		}
		if a.Disabled || a.CredentialVersion != ss.CredentialVersion {
			return storage.ErrStale
		}
		if err := putJSON(txn, prefixAccount+ss.AccountID, a, time.Time{}); err != nil {
			return err
		}
		if err := put(txn, prefixAccountSession+ss.AccountID+"/"+ss.Key, nil, ss.ExpiresAt); err != nil {
			return err
		}
		return putJSON(txn, prefixSession+ss.Key, ss, ss.ExpiresAt)
	})
}

// Session reads a session by key.
func (s *Store) Session(key string) (storage.Session, error) {
	var ss storage.Session
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixSession+key, &ss) })
	return ss, err
}

// UpdateSession applies change to a stored session; ErrNotFound once it
// is gone, so a touch never resurrects a revoked session.
func (s *Store) UpdateSession(key string, change func(*storage.Session)) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		var ss storage.Session
		if err := getJSON(txn, prefixSession+key, &ss); err != nil {
			return err
		}
		ch.add(key)
		change(&ss)
		return putJSON(txn, prefixSession+key, ss, ss.ExpiresAt)
	})
}

// TouchSessions records activity on sessions in one transaction without
// disturbing caches, skipping those that are gone, so a late touch never
// brings a revoked session back.
func (s *Store) TouchSessions(touches []storage.Touch) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		for _, t := range touches {
			var ss storage.Session
			err := getJSON(txn, prefixSession+t.Key, &ss)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !t.Apply(&ss) {
				continue
			}
			if err := putJSON(txn, prefixSession+t.Key, ss, ss.ExpiresAt); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteSession removes a session; deleting a missing one is not an error.
func (s *Store) DeleteSession(key string) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(key)
		var ss storage.Session
		err := getJSON(txn, prefixSession+key, &ss)
		if err == storage.ErrNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if err := del(txn, prefixAccountSession+ss.AccountID+"/"+key); err != nil {
			return err
		}
		return del(txn, prefixSession+key)
	})
}

// deleteAccountSessions removes, within txn, every session of an account.
func deleteAccountSessions(txn *badger.Txn, ch *changed, accountID string) error {
	prefix := prefixAccountSession + accountID + "/"
	var keys []string
	if err := scanKeys(txn, prefix, func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		sk := strings.TrimPrefix(k, prefix)
		if err := del(txn, k); err != nil {
			return err
		}
		if err := del(txn, prefixSession+sk); err != nil {
			return err
		}
		ch.add(sk)
	}
	return nil
}

// AccountSessions lists the live sessions of an account, through its
// acctsess index, ordered by key.
func (s *Store) AccountSessions(accountID string) ([]storage.Session, error) {
	var out []storage.Session
	err := s.view(func(txn *badger.Txn) error {
		prefix := prefixAccountSession + accountID + "/"
		return scanKeys(txn, prefix, func(k string) error {
			var ss storage.Session
			err := getJSON(txn, prefixSession+strings.TrimPrefix(k, prefix), &ss)
			if errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			out = append(out, ss)
			return nil
		})
	})
	return out, err
}
