package store

import "github.com/dgraph-io/badger/v4"

// LiveSessions counts the keys under the session prefix. Badger's
// iterator skips entries past their TTL, which is the session's expiry,
// and with values not prefetched it reads keys only (in the LSM tree,
// not the value log).
func (s *Store) LiveSessions() (int, error) {
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		p := []byte(prefixSession)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Seek(p); it.ValidForPrefix(p); it.Next() {
			n++
		}
		return nil
	})
	return n, err
}
