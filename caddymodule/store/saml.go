package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Key layout of eHerkenning state, each record expiring on its own:
//
//	samlreq/<request ID>     → eherkenning.TrackedRequest
//	samlseen/<assertion key> → empty, until the assertion can no longer be replayed
//	ehresult/<token hash>    → eherkenning.ParkedResult, a verified answer awaiting its browser
const (
	prefixSAMLRequest = "samlreq/"
	prefixSAMLSeen    = "samlseen/"
	prefixParked      = "ehresult/"
)

// putRaw stores a record until expires.
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

// TrackRequest tracks a started eHerkenning login until it expires.
func (s *Store) TrackRequest(_ context.Context, r eherkenning.TrackedRequest) error {
	return s.putRaw(prefixSAMLRequest, r.ID, r, r.ExpiresAt)
}

// TakeRequest returns and forgets a tracked login: each request can be
// answered once.
func (s *Store) TakeRequest(_ context.Context, id string) (eherkenning.TrackedRequest, error) {
	var r eherkenning.TrackedRequest
	err := s.takeRaw(prefixSAMLRequest, id, &r)
	if errors.Is(err, storage.ErrNotFound) {
		err = eherkenning.ErrUnknownRequest
	}
	return r, err
}

// MarkAssertionSeen records an assertion until it can no longer be
// replayed, and reports whether it was new. Concurrent marks of the same
// key conflict in badger, so only one of them sees first=true.
func (s *Store) MarkAssertionSeen(_ context.Context, key string, until time.Time) (first bool, err error) {
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
func (s *Store) ParkResult(_ context.Context, key string, p eherkenning.ParkedResult) error {
	return s.putRaw(prefixParked, key, p, p.ExpiresAt)
}

// TakeParkedResult returns and forgets a parked answer.
func (s *Store) TakeParkedResult(_ context.Context, key string) (eherkenning.ParkedResult, error) {
	var p eherkenning.ParkedResult
	err := s.takeRaw(prefixParked, key, &p)
	if errors.Is(err, storage.ErrNotFound) {
		err = eherkenning.ErrUnknownResult
	}
	return p, err
}

var _ eherkenning.StateStore = (*Store)(nil)
