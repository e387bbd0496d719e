package store

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Importer loads many records at once: an existing user base moved in,
// or the benchmark's million accounts. It writes exactly the records
// CreateAccount, LinkOrganisation and CreateSession write, but in large
// batches rather than one synchronous transaction each. An email address
// already in the store or earlier in the import, or an account ID already
// in the store, is refused with ErrExists; the check and the write are not one transaction, so an import
// must not run while the server registers accounts in the same store.
//
// An Importer is safe for concurrent use. Nothing it wrote is promised to
// be on disk before Close returns nil.
type Importer struct {
	st *Store
	wb *badger.WriteBatch

	mu     sync.Mutex
	emails map[string]struct{}
}

// NewImporter starts a bulk import.
func (s *Store) NewImporter() *Importer {
	return &Importer{st: s, wb: s.db.NewWriteBatch(), emails: make(map[string]struct{})}
}

// Account adds an account with its email index. A second account with an
// email address the import already holds is refused with ErrExists.
func (im *Importer) Account(a storage.Account) error {
	var taken bool
	if err := im.st.view(func(txn *badger.Txn) error {
		var err error
		if taken, err = exists(txn, prefixAccountEmail+a.Email); err != nil || taken {
			return err
		}
		taken, err = exists(txn, prefixAccount+a.ID)
		return err
	}); err != nil {
		return err
	}
	im.mu.Lock()
	if _, dup := im.emails[a.Email]; dup {
		taken = true
	} else if !taken {
		im.emails[a.Email] = struct{}{}
	}
	im.mu.Unlock()
	if taken {
		return fmt.Errorf("importing account %s: email %s or the ID: %w", a.ID, a.Email, storage.ErrExists)
	}
	if err := im.set(prefixAccountEmail+a.Email, []byte(a.ID), time.Time{}); err != nil {
		return err
	}
	return im.setJSON(prefixAccount+a.ID, a, time.Time{})
}

// Membership adds an organisation and one account's membership of it, as
// LinkOrganisation or an accepted invitation leaves them. Importing the
// same organisation twice keeps the last one.
func (im *Importer) Membership(o storage.Organisation, m storage.Membership) error {
	if m.KvK != o.KvK {
		return fmt.Errorf("importing membership of %s: organisation is %s", m.KvK, o.KvK)
	}
	if err := im.setJSON(prefixOrg+o.KvK, o, time.Time{}); err != nil {
		return err
	}
	if err := im.setJSON(prefixMember+o.KvK+"/"+m.AccountID, m, time.Time{}); err != nil {
		return err
	}
	if err := im.set(prefixAccountOrg+m.AccountID+"/"+o.KvK, nil, time.Time{}); err != nil {
		return err
	}
	if m.Pseudonym == "" {
		return nil
	}
	return im.set(prefixPseudonym+m.Pseudonym+"/"+m.AccountID, nil, time.Time{})
}

// Session adds a session, as CreateSession writes it.
func (im *Importer) Session(ss storage.Session) error {
	if err := im.set(prefixAccountSession+ss.AccountID+"/"+ss.Key, nil, ss.ExpiresAt); err != nil {
		return err
	}
	return im.setJSON(prefixSession+ss.Key, ss, ss.ExpiresAt)
}

// Close writes what is still buffered and waits until all of it is
// committed. Caches see the import as one change.
func (im *Importer) Close() error {
	err := im.wb.Flush()
	im.st.versions.all.Add(1)
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	return nil
}

// Cancel drops what is still buffered; batches already committed stay,
// and caches see them as one change.
func (im *Importer) Cancel() {
	im.wb.Cancel()
	im.st.versions.all.Add(1)
}

func (im *Importer) setJSON(key string, v any, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return im.set(key, b, expires)
}

func (im *Importer) set(key string, b []byte, expires time.Time) error {
	e := badger.NewEntry([]byte(key), b)
	if !expires.IsZero() {
		e.ExpiresAt = uint64(expires.Unix())
	}
	if err := im.wb.SetEntry(e); err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	return nil
}
