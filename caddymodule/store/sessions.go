package store

import (
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Key layout of sessions (both records expire with the session):
//
//	sess/<key>                   → Session (JSON)
//	acctsess/<accountID>/<key>   → empty, to end all of an account's sessions
const (
	prefixSession        = "sess/"
	prefixAccountSession = "acctsess/"
)

// Session is the server-side record behind a session cookie.
type Session struct {
	// Key identifies the record; the session package derives it from the
	// cookie's secret ID so that a copy of the database holds no usable IDs.
	Key       string    `json:"key"`
	AccountID string    `json:"account_id"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
	// ActiveOrg is the KvK number of the organisation the person acts for.
	ActiveOrg string `json:"active_org,omitempty"`
}

// PutSession writes (or overwrites) a session; it expires at ExpiresAt.
// A new session is in no cache yet, so no version moves.
func (s *Store) PutSession(ss Session) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		if err := put(txn, prefixAccountSession+ss.AccountID+"/"+ss.Key, nil, ss.ExpiresAt); err != nil {
			return err
		}
		return putJSON(txn, prefixSession+ss.Key, ss, ss.ExpiresAt)
	})
}

// Session reads a session by key.
func (s *Store) Session(key string) (Session, error) {
	var ss Session
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixSession+key, &ss) })
	return ss, err
}

// UpdateSession applies change to a stored session; ErrNotFound once it
// is gone, so a touch never resurrects a revoked session.
func (s *Store) UpdateSession(key string, change func(*Session)) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		var ss Session
		if err := getJSON(txn, prefixSession+key, &ss); err != nil {
			return err
		}
		ch.add(key)
		change(&ss)
		return putJSON(txn, prefixSession+key, ss, ss.ExpiresAt)
	})
}

// TouchSession records activity on a session without disturbing caches;
// ErrNotFound once the session is gone, so a late touch never brings a
// revoked session back.
func (s *Store) TouchSession(key string, when time.Time) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		var ss Session
		if err := getJSON(txn, prefixSession+key, &ss); err != nil {
			return err
		}
		if !when.After(ss.LastSeen) {
			return nil
		}
		ss.LastSeen = when
		return putJSON(txn, prefixSession+key, ss, ss.ExpiresAt)
	})
}

// DeleteSession removes a session; deleting a missing one is not an error.
func (s *Store) DeleteSession(key string) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(key)
		var ss Session
		err := getJSON(txn, prefixSession+key, &ss)
		if err == ErrNotFound {
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

// DeleteAccountSessions removes every session of an account, except the
// one with keep (empty keeps none), and returns the removed keys.
func (s *Store) DeleteAccountSessions(accountID, keep string) ([]string, error) {
	var removed []string
	err := s.update(func(txn *badger.Txn, ch *changed) error {
		removed = removed[:0]
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
			if sk == keep {
				continue
			}
			if err := del(txn, k); err != nil {
				return err
			}
			if err := del(txn, prefixSession+sk); err != nil {
				return err
			}
			ch.add(sk)
			removed = append(removed, sk)
		}
		return nil
	})
	return removed, err
}
