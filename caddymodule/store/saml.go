package store

import (
	"encoding/json"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Key layout of eHerkenning state, each record expiring on its own:
//
//	samlreq/<request ID>     → raw JSON of a tracked AuthnRequest
//	samlseen/<assertion key> → empty, until the assertion can no longer be replayed
//	ehresult/<token hash>    → raw JSON of a verified answer awaiting its browser
const (
	prefixSAMLRequest = "samlreq/"
	prefixSAMLSeen    = "samlseen/"
	prefixParked      = "ehresult/"
)

// putRaw stores a record of a caller's own type until expires.
func (s *Store) putRaw(prefix, key string, v any, expires time.Time) error {
	return s.updateQuiet(func(txn *badger.Txn) error { return putJSON(txn, prefix+key, v, expires) })
}

// takeRaw reads and deletes a record in one transaction, so two takes
// racing for it cannot both succeed.
func (s *Store) takeRaw(prefix, key string, v any) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefix + key))
		if err == badger.ErrKeyNotFound {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := item.Value(func(b []byte) error { return json.Unmarshal(b, v) }); err != nil {
			return err
		}
		return del(txn, prefix+key)
	})
}

// PutSAMLRequest tracks a started eHerkenning login until expires.
func (s *Store) PutSAMLRequest(id string, v any, expires time.Time) error {
	return s.putRaw(prefixSAMLRequest, id, v, expires)
}

// TakeSAMLRequest returns and forgets a tracked login: each request can be
// answered once.
func (s *Store) TakeSAMLRequest(id string, v any) error { return s.takeRaw(prefixSAMLRequest, id, v) }

// MarkAssertionSeen records an assertion until it can no longer be
// replayed, and reports whether it was new. Concurrent marks of the same
// key conflict in badger, so only one of them sees first=true.
func (s *Store) MarkAssertionSeen(key string, until time.Time) (first bool, err error) {
	err = s.updateQuiet(func(txn *badger.Txn) error {
		seen, err := exists(txn, prefixSAMLSeen+key)
		if err != nil {
			return err
		}
		first = !seen
		if seen {
			return nil
		}
		return put(txn, prefixSAMLSeen+key, nil, until)
	})
	return first, err
}

// ParkResult keeps a verified eHerkenning answer until the browser that
// started the login comes to collect it.
func (s *Store) ParkResult(token string, v any, expires time.Time) error {
	return s.putRaw(prefixParked, token, v, expires)
}

// TakeParkedResult returns and forgets a parked answer.
func (s *Store) TakeParkedResult(token string, v any) error { return s.takeRaw(prefixParked, token, v) }
