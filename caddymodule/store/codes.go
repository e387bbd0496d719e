package store

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Key layout of short-lived records, each expiring on its own:
//
//	code/<purpose>/<email>  → VerificationCode
//	flow/<id>               → Flow
//	count/<key>             → Counter
//	count/codeguess/<email> → Counter of wrong code guesses, any purpose
const (
	prefixCode    = "code/"
	prefixFlow    = "flow/"
	prefixCounter = "count/"
	// codeGuessCounter is the counter key prefix of UseCode's guess count.
	codeGuessCounter = "codeguess/"
)

// PutCode stores a code for (purpose, email), replacing an older one.
func (s *Store) PutCode(c storage.VerificationCode) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		return putJSON(txn, prefixCode+c.Purpose+"/"+c.Email, c, c.ExpiresAt)
	})
}

// UseCode runs check on the stored code for (purpose, email), nil when
// there is none, and on the address's count of wrong guesses, in one
// transaction: check may count a wrong attempt (change the records and
// return keep=true) or consume the code (keep=false). Concurrent uses are
// serialised by badger's conflict detection, so a code is consumed once
// and no wrong guess goes uncounted. The guess count lasts guessWindow
// from its WindowStart; a zero count is removed.
func (s *Store) UseCode(purpose, email string, guessWindow time.Duration, check func(code *storage.VerificationCode, guesses *storage.Counter) (keep bool, err error)) error {
	codeKey := prefixCode + purpose + "/" + email
	guessKey := prefixCounter + codeGuessCounter + email
	var result error
	err := s.updateQuiet(func(txn *badger.Txn) error {
		var c storage.VerificationCode
		code := &c
		if err := getJSON(txn, codeKey, &c); errors.Is(err, storage.ErrNotFound) {
			code = nil
		} else if err != nil {
			return err
		}
		var guesses storage.Counter
		if err := getJSON(txn, guessKey, &guesses); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		before := guesses
		keep, err := check(code, &guesses)
		result = err
		switch {
		case guesses == before:
		case guesses.Count == 0:
			if err := del(txn, guessKey); err != nil {
				return err
			}
		default:
			if err := putJSON(txn, guessKey, guesses, guesses.WindowStart.Add(guessWindow)); err != nil {
				return err
			}
		}
		switch {
		case code == nil:
			return nil
		case keep:
			return putJSON(txn, codeKey, c, c.ExpiresAt)
		default:
			return del(txn, codeKey)
		}
	})
	if err != nil {
		return err
	}
	return result
}

// PutFlow writes a flow; it expires at ExpiresAt.
func (s *Store) PutFlow(f storage.Flow) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		return putJSON(txn, prefixFlow+f.ID, f, f.ExpiresAt)
	})
}

// Flow reads a flow.
func (s *Store) Flow(id string) (storage.Flow, error) {
	var f storage.Flow
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixFlow+id, &f) })
	return f, err
}

// DeleteFlow removes a flow.
func (s *Store) DeleteFlow(id string) error {
	return s.updateQuiet(func(txn *badger.Txn) error { return del(txn, prefixFlow+id) })
}

// UpdateCounter applies change to the counter under key in one
// transaction and keeps it until expires.
func (s *Store) UpdateCounter(key string, expires time.Time, change func(*storage.Counter)) (storage.Counter, error) {
	var c storage.Counter
	err := s.updateQuiet(func(txn *badger.Txn) error {
		c = storage.Counter{}
		if err := getJSON(txn, prefixCounter+key, &c); err != nil && err != storage.ErrNotFound {
			return err
		}
		change(&c)
		return putJSON(txn, prefixCounter+key, c, expires)
	})
	return c, err
}

// Counter reads a counter; a missing one is a zero Counter.
func (s *Store) Counter(key string) (storage.Counter, error) {
	var c storage.Counter
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixCounter+key, &c) })
	if err == storage.ErrNotFound {
		err = nil
	}
	return c, err
}

// DeleteCounter removes a counter.
func (s *Store) DeleteCounter(key string) error {
	return s.updateQuiet(func(txn *badger.Txn) error { return del(txn, prefixCounter+key) })
}
