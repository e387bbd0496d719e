package store

import (
	"time"

	"github.com/dgraph-io/badger/v4"
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

// Organisation is a company, identified by its KvK number.
type Organisation struct {
	KvK string `json:"kvk"`
	// Name as the broker gave it (may be empty).
	Name string `json:"name,omitempty"`
	RSIN string `json:"rsin,omitempty"`
	// Branch is the vestigingsnummer when the machtiging is limited to one.
	Branch    string    `json:"branch,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Membership says that an account acts for an organisation.
type Membership struct {
	KvK       string `json:"kvk"`
	AccountID string `json:"account_id"`
	// Role is "admin" or "member".
	Role string `json:"role"`
	// Anchor is how the membership is anchored: "eh3" (the person proved
	// it with eHerkenning) or "invited" (an admin invited them).
	Anchor string `json:"anchor"`
	// Level is the eHerkenning level achieved, e.g. "loa3", for Anchor eh3.
	Level     string `json:"level,omitempty"`
	Pseudonym string `json:"pseudonym,omitempty"`
	// InvitedBy is the admin's account ID, for Anchor invited.
	InvitedBy string `json:"invited_by,omitempty"`
	// Apps are the apps a member may use; admins may use all.
	Apps       []string  `json:"apps,omitempty"`
	Since      time.Time `json:"since"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
}

// LinkOrganisation records, in one transaction, that an account proved it
// acts for an organisation: the organisation is created or updated and the
// account's membership becomes (or stays) an eh3-anchored admin one. It
// returns the accounts that arrived earlier with the same pseudonym.
func (s *Store) LinkOrganisation(o Organisation, m Membership) (samePseudonym []string, err error) {
	err = s.update(func(txn *badger.Txn, ch *changed) error {
		samePseudonym = samePseudonym[:0]
		// The organisation's record may change (its name), and every
		// member's cached identity carries it.
		ch.add(m.AccountID)
		if err := ch.addMembers(txn, o.KvK); err != nil {
			return err
		}
		var existing Organisation
		switch err := getJSON(txn, prefixOrg+o.KvK, &existing); err {
		case nil:
			o.CreatedAt = existing.CreatedAt
			if o.Name == "" {
				o.Name = existing.Name
			}
			if o.RSIN == "" {
				o.RSIN = existing.RSIN
			}
		case ErrNotFound:
		default:
			return err
		}
		if err := putJSON(txn, prefixOrg+o.KvK, o, time.Time{}); err != nil {
			return err
		}
		var old Membership
		switch err := getJSON(txn, prefixMember+o.KvK+"/"+m.AccountID, &old); err {
		case nil:
			m.Since = old.Since
			m.Apps = old.Apps
		case ErrNotFound:
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
func (s *Store) Organisation(kvk string) (Organisation, error) {
	var o Organisation
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixOrg+kvk, &o) })
	return o, err
}

// Organisations lists every organisation.
func (s *Store) Organisations() ([]Organisation, error) {
	var out []Organisation
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixOrg, func(o Organisation) error {
			out = append(out, o)
			return nil
		})
	})
	return out, err
}

// Membership reads one account's membership of an organisation.
func (s *Store) Membership(kvk, accountID string) (Membership, error) {
	var m Membership
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, prefixMember+kvk+"/"+accountID, &m) })
	return m, err
}

// Members lists an organisation's memberships.
func (s *Store) Members(kvk string) ([]Membership, error) {
	var out []Membership
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixMember+kvk+"/", func(m Membership) error {
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// AccountMemberships lists the memberships of an account.
func (s *Store) AccountMemberships(accountID string) ([]Membership, error) {
	var out []Membership
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
			var m Membership
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
func (s *Store) PutMembership(m Membership) error {
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
func (s *Store) UpdateMembers(kvk string, change func([]Membership) ([]Membership, error)) error {
	return s.update(func(txn *badger.Txn, ch *changed) error {
		var before []Membership
		if err := scanJSON(txn, prefixMember+kvk+"/", func(m Membership) error {
			before = append(before, m)
			ch.add(m.AccountID)
			return nil
		}); err != nil {
			return err
		}
		after, err := change(append([]Membership(nil), before...))
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
