package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// recordPrefixes are where each kind of record lives. The other prefixes
// (acctemail/, acctsess/, acctorg/, orginvite/, auditgroup/) are indexes,
// rebuilt from the records when they are written.
var recordPrefixes = []struct {
	kind   storage.Kind
	prefix string
}{
	{storage.KindSecret, prefixSecret},
	{storage.KindAccount, prefixAccount},
	{storage.KindSession, prefixSession},
	{storage.KindCode, prefixCode},
	{storage.KindFlow, prefixFlow},
	{storage.KindCounter, prefixCounter},
	{storage.KindOrganisation, prefixOrg},
	{storage.KindMembership, prefixMember},
	{storage.KindPseudonym, prefixPseudonym},
	{storage.KindInvitation, prefixInvite},
	{storage.KindAudit, prefixAudit},
	{storage.KindSAMLRequest, prefixSAMLRequest},
	{storage.KindSAMLSeen, prefixSAMLSeen},
	{storage.KindParked, prefixParked},
}

// Locked reports whether Open failed because another process (a running
// server) holds the directory.
func Locked(err error) bool {
	// badger words the flock failure with %+v, so only its text is left.
	return err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// VisitRecords hands every live record to fn, kind by kind, from one
// snapshot. The copy marker is left out.
func (s *Store) VisitRecords(ctx context.Context, fn func(storage.Record) error) error {
	return s.view(func(txn *badger.Txn) error {
		groups, err := auditGroups(txn)
		if err != nil {
			return err
		}
		for _, kp := range recordPrefixes {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := visitPrefix(txn, kp.kind, kp.prefix, groups, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// visitPrefix hands fn the records of one kind. An audit entry's key
// becomes its organisation, and its group is found in groups.
func visitPrefix(txn *badger.Txn, kind storage.Kind, prefix string, groups map[string]string, fn func(storage.Record) error) error {
	p := []byte(prefix)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		item := it.Item()
		r := storage.Record{Kind: kind, Key: string(item.Key()[len(p):])}
		if kind == storage.KindSecret && r.Key == storage.CopyMarker {
			continue
		}
		if exp := item.ExpiresAt(); exp != 0 {
			r.ExpiresAt = time.Unix(int64(exp), 0)
		}
		if kind == storage.KindAudit {
			r.Group = groups[string(item.Key())]
			r.Key, _, _ = strings.Cut(r.Key, "/")
		}
		value, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if len(value) > 0 {
			r.Value = value
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// auditGroups maps the key of every audit entry that heads a group to the
// group's name.
func auditGroups(txn *badger.Txn) (map[string]string, error) {
	groups := map[string]string{}
	p := []byte(prefixAuditGroup)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true})
	defer it.Close()
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		entry, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		_, group, _ := strings.Cut(string(it.Item().Key()[len(p):]), "/")
		groups[string(entry)] = group
	}
	return groups, nil
}

// CountRecords counts, kind by kind, the records whose expiry, to the
// second (as badger keeps it), is after liveAfter's second, by their keys
// alone: a check of what VisitRecords and WriteRecords did
// that shares no code with them. The copy marker is left out.
func (s *Store) CountRecords(ctx context.Context, liveAfter time.Time) (storage.Counts, error) {
	counts := storage.Counts{}
	after := uint64(max(liveAfter.Unix(), 0))
	err := s.view(func(txn *badger.Txn) error {
		for _, kp := range recordPrefixes {
			if err := ctx.Err(); err != nil {
				return err
			}
			counts[kp.kind] = 0
			p := []byte(kp.prefix)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
			for it.Seek(p); it.ValidForPrefix(p); it.Next() {
				item := it.Item()
				if kp.kind == storage.KindSecret && string(item.Key()[len(p):]) == storage.CopyMarker {
					continue
				}
				if exp := item.ExpiresAt(); exp == 0 || exp > after {
					counts[kp.kind]++
				}
			}
			it.Close()
		}
		return nil
	})
	return counts, err
}

// WriteRecords writes a batch of records, with the indexes they imply, in
// one transaction. A record that has expired already is left out. Caches
// see the batch as one change.
func (s *Store) WriteRecords(ctx context.Context, batch []storage.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	err := s.updateQuiet(func(txn *badger.Txn) error {
		for _, r := range batch {
			if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now) {
				continue
			}
			if err := writeRecord(txn, r); err != nil {
				return fmt.Errorf("store: writing %s %q: %w", r.Kind, r.Key, err)
			}
		}
		return nil
	})
	s.versions.all.Add(1)
	return err
}

func writeRecord(txn *badger.Txn, r storage.Record) error {
	switch r.Kind {
	case storage.KindSecret:
		return put(txn, prefixSecret+r.Key, r.Value, time.Time{})
	case storage.KindAccount:
		var a storage.Account
		if err := json.Unmarshal(r.Value, &a); err != nil {
			return err
		}
		if err := put(txn, prefixAccountEmail+a.Email, []byte(r.Key), time.Time{}); err != nil {
			return err
		}
		return put(txn, prefixAccount+r.Key, r.Value, time.Time{})
	case storage.KindSession:
		var ss storage.Session
		if err := json.Unmarshal(r.Value, &ss); err != nil {
			return err
		}
		if err := put(txn, prefixAccountSession+ss.AccountID+"/"+r.Key, nil, r.ExpiresAt); err != nil {
			return err
		}
		return put(txn, prefixSession+r.Key, r.Value, r.ExpiresAt)
	case storage.KindMembership:
		var m storage.Membership
		if err := json.Unmarshal(r.Value, &m); err != nil {
			return err
		}
		if err := put(txn, prefixAccountOrg+m.AccountID+"/"+m.KvK, nil, time.Time{}); err != nil {
			return err
		}
		return put(txn, prefixMember+r.Key, r.Value, time.Time{})
	case storage.KindInvitation:
		var inv storage.Invitation
		if err := json.Unmarshal(r.Value, &inv); err != nil {
			return err
		}
		if err := put(txn, prefixOrgInvite+inv.KvK+"/"+r.Key, nil, r.ExpiresAt); err != nil {
			return err
		}
		return put(txn, prefixInvite+r.Key, r.Value, r.ExpiresAt)
	case storage.KindAudit:
		var e storage.AuditEntry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return err
		}
		key := auditKey(e)
		if err := put(txn, key, r.Value, r.ExpiresAt); err != nil {
			return err
		}
		if r.Group == "" {
			return nil
		}
		return put(txn, prefixAuditGroup+e.KvK+"/"+r.Group, []byte(key), r.ExpiresAt)
	}
	for _, kp := range recordPrefixes {
		if kp.kind == r.Kind {
			return put(txn, kp.prefix+r.Key, r.Value, r.ExpiresAt)
		}
	}
	return errors.New("unknown kind of record")
}

// EmptyRecords deletes every record, for a copy that replaces what a
// store holds.
func (s *Store) EmptyRecords(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.writable(); err != nil {
		return err
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return errUnavailable
	}
	err := s.db.DropAll()
	s.versions.all.Add(1)
	return err
}

// CopyMark returns the note of an incomplete copy, nil when the store
// holds none.
func (s *Store) CopyMark() (note []byte, err error) {
	err = s.view(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixSecret + storage.CopyMarker))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		note, err = item.ValueCopy(nil)
		return err
	})
	return note, err
}

// ClearCopyMark removes the note of an incomplete copy.
func (s *Store) ClearCopyMark() error {
	return s.updateQuiet(func(txn *badger.Txn) error { return del(txn, prefixSecret+storage.CopyMarker) })
}
