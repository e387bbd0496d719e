package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Key layout of invitations and the audit log:
//
//	invite/<id>            → Invitation (expires with it); id is a hash of the token
//	orginvite/<kvk>/<id>   → empty, the organisation's pending invitations
//	audit/<kvk>/<time>-<n> → AuditEntry (expires after the retention)
//	auditgroup/<kvk>/<group> → the audit key of the group's entry (expires with it)
const (
	prefixInvite     = "invite/"
	prefixOrgInvite  = "orginvite/"
	prefixAudit      = "audit/"
	prefixAuditGroup = "auditgroup/"
)

// PutInvitation stores an invitation until it expires.
func (s *Store) PutInvitation(inv storage.Invitation) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		if err := put(txn, prefixOrgInvite+inv.KvK+"/"+inv.ID, nil, inv.ExpiresAt); err != nil {
			return err
		}
		return putJSON(txn, prefixInvite+inv.ID, inv, inv.ExpiresAt)
	})
}

// Invitation reads an invitation.
func (s *Store) Invitation(id string) (storage.Invitation, error) {
	var inv storage.Invitation
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixInvite+id, &inv) })
	return inv, err
}

// Invitations lists an organisation's pending invitations.
func (s *Store) Invitations(kvk string) ([]storage.Invitation, error) {
	var out []storage.Invitation
	err := s.view(func(txn *badger.Txn) error {
		prefix := prefixOrgInvite + kvk + "/"
		var ids []string
		if err := scanKeys(txn, prefix, func(k string) error {
			ids = append(ids, k[len(prefix):])
			return nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			var inv storage.Invitation
			switch err := getJSON(txn, prefixInvite+id, &inv); err {
			case nil:
				out = append(out, inv)
			case storage.ErrNotFound:
			default:
				return err
			}
		}
		return nil
	})
	return out, err
}

// TakeInvitation removes an invitation and returns it, once: a second
// take finds nothing. check may refuse (then nothing changes).
func (s *Store) TakeInvitation(id string, check func(storage.Invitation) error) (storage.Invitation, error) {
	var inv storage.Invitation
	err := s.updateQuiet(func(txn *badger.Txn) error {
		inv = storage.Invitation{}
		if err := getJSON(txn, prefixInvite+id, &inv); err != nil {
			return err
		}
		if err := check(inv); err != nil {
			return err
		}
		if err := del(txn, prefixOrgInvite+inv.KvK+"/"+id); err != nil {
			return err
		}
		return del(txn, prefixInvite+id)
	})
	return inv, err
}

// auditKey orders an organisation's entries by time.
func auditKey(e storage.AuditEntry) string {
	return fmt.Sprintf("%s%s/%020d-%s", prefixAudit, e.KvK, e.At.UnixNano(), randomSuffix())
}

// AppendAudit records an entry in the organisation's audit log, kept
// until expires.
func (s *Store) AppendAudit(e storage.AuditEntry, expires time.Time) error {
	key := auditKey(e)
	return s.updateQuiet(func(txn *badger.Txn) error { return putJSON(txn, key, e, expires) })
}

// GroupAudit records e in the organisation's audit log, or, when an entry
// of the same group is there already, lets merge fold e into that entry,
// which keeps its place in the log. A group names attempts that are one
// line in the log (one account's refused attempts in one hour, say). The
// entry, and the note of its group, are kept until expires.
func (s *Store) GroupAudit(group string, e storage.AuditEntry, merge func(into *storage.AuditEntry), expires time.Time) error {
	// Entries of a group are read and rewritten; taking turns here keeps
	// concurrent attempts from failing each other's transactions.
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	groupKey := prefixAuditGroup + e.KvK + "/" + group
	return s.updateQuiet(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(groupKey))
		switch {
		case err == nil:
			key, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			var into storage.AuditEntry
			switch err := getJSON(txn, string(key), &into); err {
			case nil:
				merge(&into)
				if err := putJSON(txn, string(key), into, expires); err != nil {
					return err
				}
				return put(txn, groupKey, key, expires)
			case storage.ErrNotFound:
			default:
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		key := auditKey(e)
		if err := putJSON(txn, key, e, expires); err != nil {
			return err
		}
		return put(txn, groupKey, []byte(key), expires)
	})
}

// Audit lists a page of an organisation's audit log, newest first: limit
// entries after skipping the skip newest. more tells whether older
// entries follow.
func (s *Store) Audit(kvk string, skip, limit int) (entries []storage.AuditEntry, more bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		prefix := []byte(prefixAudit + kvk + "/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		seek := append(append([]byte{}, prefix...), 0xff)
		it.Seek(seek)
		// Skipped entries are only counted: their keys hold all that is needed.
		for ; skip > 0 && it.ValidForPrefix(prefix); it.Next() {
			skip--
		}
		for ; it.ValidForPrefix(prefix); it.Next() {
			if len(entries) == limit {
				more = true
				return nil
			}
			item := it.Item()
			var e storage.AuditEntry
			if err := item.Value(func(b []byte) error { return jsonUnmarshal(b, &e) }); err != nil {
				return err
			}
			if exp := item.ExpiresAt(); exp != 0 {
				e.ExpiresAt = time.Unix(int64(exp), 0)
			}
			entries = append(entries, e)
		}
		return nil
	})
	return entries, more, err
}
