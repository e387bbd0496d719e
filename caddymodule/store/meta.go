package store

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// prefixSecret holds generated secrets (cookie keys, signing keys):
//
//	secret/<name> → raw bytes
const prefixSecret = "secret/"

// Secret returns the secret stored under name, generating and storing it
// with generate the first time. Two processes racing here end up with the
// same value: the loser's transaction conflicts and reads the winner's.
// A secret that exists is only read, so a store that refuses writes (a
// full disk) still starts.
func (s *Store) Secret(name string, generate func() ([]byte, error)) ([]byte, error) {
	var out []byte
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixSecret + name))
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return out, err
	}
	err = s.updateQuiet(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixSecret + name))
		if err == nil {
			out, err = item.ValueCopy(nil)
			return err
		}
		if err != badger.ErrKeyNotFound {
			return err
		}
		out, err = generate()
		if err != nil {
			return err
		}
		return put(txn, prefixSecret+name, out, time.Time{})
	})
	return out, err
}

// SetSecret replaces the secret stored under name (key rotation).
func (s *Store) SetSecret(name string, value []byte) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		return put(txn, prefixSecret+name, value, time.Time{})
	})
}
