package store

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Key layout of invitations and the audit log:
//
//	invite/<id>            → Invitation (expires with it); id is a hash of the token
//	orginvite/<kvk>/<id>   → empty, the organisation's pending invitations
//	audit/<kvk>/<time>-<n> → AuditEntry
const (
	prefixInvite    = "invite/"
	prefixOrgInvite = "orginvite/"
	prefixAudit     = "audit/"
)

// Invitation asks someone to join an organisation with a set of apps.
type Invitation struct {
	ID        string    `json:"id"`
	KvK       string    `json:"kvk"`
	Email     string    `json:"email"`
	Apps      []string  `json:"apps,omitempty"`
	InvitedBy string    `json:"invited_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PutInvitation stores an invitation until it expires.
func (s *Store) PutInvitation(inv Invitation) error {
	return s.updateQuiet(func(txn *badger.Txn) error {
		if err := put(txn, prefixOrgInvite+inv.KvK+"/"+inv.ID, nil, inv.ExpiresAt); err != nil {
			return err
		}
		return putJSON(txn, prefixInvite+inv.ID, inv, inv.ExpiresAt)
	})
}

// Invitation reads an invitation.
func (s *Store) Invitation(id string) (Invitation, error) {
	var inv Invitation
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixInvite+id, &inv) })
	return inv, err
}

// Invitations lists an organisation's pending invitations.
func (s *Store) Invitations(kvk string) ([]Invitation, error) {
	var out []Invitation
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
			var inv Invitation
			switch err := getJSON(txn, prefixInvite+id, &inv); err {
			case nil:
				out = append(out, inv)
			case ErrNotFound:
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
func (s *Store) TakeInvitation(id string, check func(Invitation) error) (Invitation, error) {
	var inv Invitation
	err := s.updateQuiet(func(txn *badger.Txn) error {
		inv = Invitation{}
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

// AuditEntry is one recorded change (or refused attempt) in an
// organisation.
type AuditEntry struct {
	At  time.Time `json:"at"`
	KvK string    `json:"kvk"`
	// Actor is the account that acted.
	Actor  string `json:"actor"`
	Action string `json:"action"`
	// Target is the account or invitation acted on.
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// AppendAudit records an entry in the organisation's audit log.
func (s *Store) AppendAudit(e AuditEntry) error {
	key := fmt.Sprintf("%s%s/%020d-%s", prefixAudit, e.KvK, e.At.UnixNano(), randomSuffix())
	return s.updateQuiet(func(txn *badger.Txn) error { return putJSON(txn, key, e, time.Time{}) })
}

// Audit lists an organisation's audit log, newest first, at most limit
// entries.
func (s *Store) Audit(kvk string, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.view(func(txn *badger.Txn) error {
		prefix := []byte(prefixAudit + kvk + "/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true})
		defer it.Close()
		seek := append(append([]byte{}, prefix...), 0xff)
		for it.Seek(seek); it.ValidForPrefix(prefix) && len(out) < limit; it.Next() {
			var e AuditEntry
			if err := it.Item().Value(func(b []byte) error { return jsonUnmarshal(b, &e) }); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
