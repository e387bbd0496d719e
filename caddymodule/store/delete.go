package store

import (
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// DeleteAccount removes an account and everything kept for it in one
// transaction (account.Store documents what): the email index, sessions,
// memberships (each organisation keeps what d.Leave returns), pseudonym
// links, pending invitations to its address or sent by it, its codes and
// the flows that name it, and its address in audit entries, which becomes
// d.Pseudonym. Invitations, flows, codes, pseudonym links and the audit
// log have no index by account, so their prefixes are read whole; a
// deletion is rare and the first four are short-lived.
func (s *Store) DeleteAccount(id string, d storage.AccountDeletion) (storage.Account, error) {
	var a storage.Account
	err := s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(id)
		a = storage.Account{}
		if err := getJSON(txn, prefixAccount+id, &a); err != nil {
			return err
		}
		orgs := prefixAccountOrg + id + "/"
		var kvks []string
		if err := scanKeys(txn, orgs, func(k string) error {
			kvks = append(kvks, k[len(orgs):])
			return nil
		}); err != nil {
			return err
		}
		for _, kvk := range kvks {
			if err := leaveOrganisation(txn, ch, kvk, id, d.Leave); err != nil {
				return err
			}
		}
		if err := deleteAccountSessions(txn, ch, id); err != nil {
			return err
		}
		if err := deleteKeysWhere(txn, prefixPseudonym, func(k string) bool { return strings.HasSuffix(k, "/"+id) }); err != nil {
			return err
		}
		if err := deleteKeysWhere(txn, prefixCode, func(k string) bool { return strings.HasSuffix(k, "/"+a.Email) }); err != nil {
			return err
		}
		if err := deleteInvitationsOf(txn, id, a.Email); err != nil {
			return err
		}
		if err := deleteFlowsOf(txn, id, a.Email); err != nil {
			return err
		}
		if err := pseudonymiseAudit(txn, a.Email, d.Pseudonym); err != nil {
			return err
		}
		if err := del(txn, prefixAccountEmail+a.Email); err != nil {
			return err
		}
		return del(txn, prefixAccount+id)
	})
	return a, err
}

// leaveOrganisation writes back what leave keeps of an organisation's
// memberships, within txn, as UpdateMembers does.
func leaveOrganisation(txn *badger.Txn, ch *changed, kvk, id string, leave func(string, []storage.Membership) ([]storage.Membership, error)) error {
	var before []storage.Membership
	if err := scanJSON(txn, prefixMember+kvk+"/", func(m storage.Membership) error {
		before = append(before, m)
		ch.add(m.AccountID)
		return nil
	}); err != nil {
		return err
	}
	after, err := leave(kvk, append([]storage.Membership(nil), before...))
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, m := range after {
		if m.KvK != kvk || m.AccountID == id {
			continue
		}
		kept[m.AccountID] = true
		if err := putJSON(txn, prefixMember+kvk+"/"+m.AccountID, m, time.Time{}); err != nil {
			return err
		}
	}
	for _, m := range before {
		if kept[m.AccountID] {
			continue
		}
		if err := del(txn, prefixMember+kvk+"/"+m.AccountID); err != nil {
			return err
		}
		if err := del(txn, prefixAccountOrg+m.AccountID+"/"+kvk); err != nil {
			return err
		}
	}
	return nil
}

// deleteKeysWhere deletes, within txn, the keys under prefix that match.
func deleteKeysWhere(txn *badger.Txn, prefix string, match func(key string) bool) error {
	var keys []string
	if err := scanKeys(txn, prefix, func(k string) error {
		if match(k) {
			keys = append(keys, k)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := del(txn, k); err != nil {
			return err
		}
	}
	return nil
}

// deleteInvitationsOf deletes the pending invitations to email or sent by
// the account, with their organisations' index entries.
func deleteInvitationsOf(txn *badger.Txn, id, email string) error {
	var gone []storage.Invitation
	if err := scanJSON(txn, prefixInvite, func(inv storage.Invitation) error {
		if inv.Email == email || inv.InvitedBy == id {
			gone = append(gone, inv)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, inv := range gone {
		if err := del(txn, prefixOrgInvite+inv.KvK+"/"+inv.ID); err != nil {
			return err
		}
		if err := del(txn, prefixInvite+inv.ID); err != nil {
			return err
		}
	}
	return nil
}

// deleteFlowsOf deletes the flows that name the account or its address.
func deleteFlowsOf(txn *badger.Txn, id, email string) error {
	var gone []string
	if err := scanJSON(txn, prefixFlow, func(f storage.Flow) error {
		if f.AccountID == id || f.Email == email {
			gone = append(gone, f.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, fid := range gone {
		if err := del(txn, prefixFlow+fid); err != nil {
			return err
		}
	}
	return nil
}

// pseudonymiseAudit replaces email with pseudonym in the Target of every
// audit entry, each keeping its place and its expiry.
func pseudonymiseAudit(txn *badger.Txn, email, pseudonym string) error {
	type rewrite struct {
		key     string
		entry   storage.AuditEntry
		expires time.Time
	}
	var rewrites []rewrite
	p := []byte(prefixAudit)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 64})
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		item := it.Item()
		var e storage.AuditEntry
		if err := item.Value(func(b []byte) error { return jsonUnmarshal(b, &e) }); err != nil {
			it.Close()
			return err
		}
		if e.Target != email {
			continue
		}
		e.Target = pseudonym
		var expires time.Time
		if exp := item.ExpiresAt(); exp != 0 {
			expires = time.Unix(int64(exp), 0)
		}
		rewrites = append(rewrites, rewrite{key: string(item.KeyCopy(nil)), entry: e, expires: expires})
	}
	it.Close()
	for _, r := range rewrites {
		if err := putJSON(txn, r.key, r.entry, r.expires); err != nil {
			return err
		}
	}
	return nil
}

// InvitationsFor lists the pending invitations to an address, in every
// organisation.
func (s *Store) InvitationsFor(email string) ([]storage.Invitation, error) {
	var out []storage.Invitation
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixInvite, func(inv storage.Invitation) error {
			if inv.Email == email {
				out = append(out, inv)
			}
			return nil
		})
	})
	return out, err
}
