package store

import (
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Key layout of organisations and memberships:
//
//	org/<kvk>                     → Organisation
//	member/<kvk>/<accountID>      → Membership
//	acctorg/<accountID>/<kvk>     → empty, the account's memberships
//	pseudo/<pseudonym>/<accountID> → empty, who arrived with an eHerkenning pseudonym
const (
	prefixOrg        = "org/"
	prefixMember     = "member/"
	prefixAccountOrg = "acctorg/"
	prefixPseudonym  = "pseudo/"
)

// LinkOrganisation records, in one transaction, that an account proved it
// acts for an organisation: the organisation is created or updated and the
// account's membership becomes (or stays) an eh3-anchored admin one. It
// returns the accounts that arrived earlier with the same pseudonym.
func (s *Store) LinkOrganisation(o storage.Organisation, m storage.Membership) (samePseudonym []string, err error) {
	err = s.update(func(txn *badger.Txn, ch *changed) error {
		samePseudonym = samePseudonym[:0]
		// The organisation's record may change (its name), and every
		// member's cached identity carries it.
		ch.add(m.AccountID)
		if err := ch.addMembers(txn, o.KvK); err != nil {
			return err
		}
		var existing storage.Organisation
		switch err := getJSON(txn, prefixOrg+o.KvK, &existing); err {
		case nil:
			o.CreatedAt = existing.CreatedAt
			if o.Name == "" {
				o.Name = existing.Name
			}
			if o.RSIN == "" {
				o.RSIN = existing.RSIN
			}
		case storage.ErrNotFound:
		default:
			return err
		}
		if err := putJSON(txn, prefixOrg+o.KvK, o, time.Time{}); err != nil {
			return err
		}
		var old storage.Membership
		switch err := getJSON(txn, prefixMember+o.KvK+"/"+m.AccountID, &old); err {
		case nil:
			m.Since = old.Since
			m.Apps = old.Apps
		case storage.ErrNotFound:
		default:
			return err
		}
		if err := putJSON(txn, prefixMember+o.KvK+"/"+m.AccountID, m, time.Time{}); err != nil {
			return err
		}
		if err := put(txn, prefixAccountOrg+m.AccountID+"/"+o.KvK, nil, time.Time{}); err != nil {
			return err
		}
		if m.Pseudonym == "" {
			return nil
		}
		p := prefixPseudonym + m.Pseudonym + "/"
		if err := scanKeys(txn, p, func(k string) error {
			if id := k[len(p):]; id != m.AccountID {
				samePseudonym = append(samePseudonym, id)
			}
			return nil
		}); err != nil {
			return err
		}
		return put(txn, p+m.AccountID, nil, time.Time{})
	})
	return samePseudonym, err
}

// Organisation reads an organisation.
func (s *Store) Organisation(kvk string) (storage.Organisation, error) {
	var o storage.Organisation
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixOrg+kvk, &o) })
	return o, err
}

// Organisations lists every organisation.
func (s *Store) Organisations() ([]storage.Organisation, error) {
	var out []storage.Organisation
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixOrg, func(o storage.Organisation) error {
			out = append(out, o)
			return nil
		})
	})
	return out, err
}

// Membership reads one account's membership of an organisation.
func (s *Store) Membership(kvk, accountID string) (storage.Membership, error) {
	var m storage.Membership
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixMember+kvk+"/"+accountID, &m) })
	return m, err
}

// Members lists an organisation's memberships.
func (s *Store) Members(kvk string) ([]storage.Membership, error) {
	var out []storage.Membership
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixMember+kvk+"/", func(m storage.Membership) error {
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// AccountMemberships lists the memberships of an account.
func (s *Store) AccountMemberships(accountID string) ([]storage.Membership, error) {
	var out []storage.Membership
	err := s.view(func(txn *badger.Txn) error {
		prefix := prefixAccountOrg + accountID + "/"
		var kvks []string
		if err := scanKeys(txn, prefix, func(k string) error {
			kvks = append(kvks, k[len(prefix):])
			return nil
		}); err != nil {
			return err
		}
		for _, kvk := range kvks {
			var m storage.Membership
			if err := getJSON(txn, prefixMember+kvk+"/"+accountID, &m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// addMembers names every member of the organisation as changed: their
// cached identities carry its name and the anchoring of its invitation
// chain.
func (c *changed) addMembers(txn *badger.Txn, kvk string) error {
	members := prefixMember + kvk + "/"
	return scanKeys(txn, members, func(k string) error {
		c.add(k[len(members):])
		return nil
	})
}

// PutMembership writes a membership and the account's index entry, for
// a new member (an accepted invitation) or a changed one. A changed
// inviter changes whether the members they invited are anchored, so every
// member's version moves.
func (s *Store) PutMembership(m storage.Membership) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		ch.add(m.AccountID)
		if err := ch.addMembers(txn, m.KvK); err != nil {
			return err
		}
		if err := putJSON(txn, prefixMember+m.KvK+"/"+m.AccountID, m, time.Time{}); err != nil {
			return err
		}
		return put(txn, prefixAccountOrg+m.AccountID+"/"+m.KvK, nil, time.Time{})
	})
}

// UpdateMembers runs change over all memberships of an organisation in
// one transaction and writes back what it returns; a membership left out
// of the result is removed. It serialises admin actions on one
// organisation, so rules over several members (keep one admin) hold under
// concurrency.
func (s *Store) UpdateMembers(kvk string, change func([]storage.Membership) ([]storage.Membership, error)) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		var before []storage.Membership
		if err := scanJSON(txn, prefixMember+kvk+"/", func(m storage.Membership) error {
			before = append(before, m)
			ch.add(m.AccountID)
			return nil
		}); err != nil {
			return err
		}
		after, err := change(append([]storage.Membership(nil), before...))
		if err != nil {
			return err
		}
		kept := map[string]bool{}
		for _, m := range after {
			if m.KvK != kvk {
				continue
			}
			kept[m.AccountID] = true
			ch.add(m.AccountID)
			if err := putJSON(txn, prefixMember+kvk+"/"+m.AccountID, m, time.Time{}); err != nil {
				return err
			}
			if err := put(txn, prefixAccountOrg+m.AccountID+"/"+kvk, nil, time.Time{}); err != nil {
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
	})
}
