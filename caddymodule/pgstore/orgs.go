package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// lockOrg serialises the changes to one organisation's memberships on
// every process, and names its members as changed: their cached
// identities carry its name and the anchoring of its invitation chain.
func lockOrg(ctx context.Context, tx pgx.Tx, ch *changed, kvk string) error {
	if err := lock(ctx, tx, "org/"+kvk); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, "SELECT account_id FROM membership WHERE kvk = $1", kvk)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	ch.add(ids...)
	return err
}

// LinkOrganisation records, in one transaction, that an account proved it
// acts for an organisation: the organisation is created or updated and
// the account's membership becomes (or stays) an eh3-anchored one. It
// returns the accounts that arrived earlier with the same pseudonym.
func (s *Store) LinkOrganisation(o storage.Organisation, m storage.Membership) (samePseudonym []string, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		samePseudonym = samePseudonym[:0]
		ch.add(m.AccountID)
		if err := lockOrg(ctx, tx, ch, o.KvK); err != nil {
			return err
		}
		existing, err := scanRecord[storage.Organisation](tx.QueryRow(ctx, "SELECT record FROM organisation WHERE kvk = $1", o.KvK))
		switch {
		case err == nil:
			o.CreatedAt = existing.CreatedAt
			if o.Name == "" {
				o.Name = existing.Name
			}
			if o.RSIN == "" {
				o.RSIN = existing.RSIN
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		rec, err := encode(o)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO organisation (kvk, record) VALUES ($1, $2)
			ON CONFLICT (kvk) DO UPDATE SET record = EXCLUDED.record`, o.KvK, rec); err != nil {
			return err
		}
		old, err := scanRecord[storage.Membership](tx.QueryRow(ctx, "SELECT record FROM membership WHERE kvk = $1 AND account_id = $2", o.KvK, m.AccountID))
		switch {
		case err == nil:
			m.Since = old.Since
			m.Apps = old.Apps
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if err := putMembership(ctx, tx, m); err != nil {
			return err
		}
		if m.Pseudonym == "" {
			return nil
		}
		rows, err := tx.Query(ctx, "SELECT account_id FROM pseudonym WHERE pseudonym = $1 AND account_id <> $2 ORDER BY account_id", m.Pseudonym, m.AccountID)
		if err != nil {
			return err
		}
		if samePseudonym, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO pseudonym (pseudonym, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", m.Pseudonym, m.AccountID)
		return err
	})
	return samePseudonym, err
}

func putMembership(ctx context.Context, tx pgx.Tx, m storage.Membership) error {
	rec, err := encode(m)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO membership (kvk, account_id, record) VALUES ($1, $2, $3)
		ON CONFLICT (kvk, account_id) DO UPDATE SET record = EXCLUDED.record`, m.KvK, m.AccountID, rec)
	return err
}

// Organisation reads an organisation.
func (s *Store) Organisation(kvk string) (o storage.Organisation, err error) {
	err = s.read(func(ctx context.Context) error {
		o, err = scanRecord[storage.Organisation](s.pool.QueryRow(ctx, "SELECT record FROM organisation WHERE kvk = $1", kvk))
		return err
	})
	return o, err
}

// Organisations lists every organisation, ordered by KvK number.
func (s *Store) Organisations() (out []storage.Organisation, err error) {
	err = s.read(func(ctx context.Context) error {
		out, err = collectRecords[storage.Organisation](s.pool.Query(ctx, "SELECT record FROM organisation ORDER BY kvk"))
		return err
	})
	return out, err
}

// Membership reads one account's membership of an organisation.
func (s *Store) Membership(kvk, accountID string) (m storage.Membership, err error) {
	err = s.read(func(ctx context.Context) error {
		m, err = scanRecord[storage.Membership](s.pool.QueryRow(ctx, "SELECT record FROM membership WHERE kvk = $1 AND account_id = $2", kvk, accountID))
		return err
	})
	return m, err
}

// Members lists an organisation's memberships, ordered by account ID.
func (s *Store) Members(kvk string) (out []storage.Membership, err error) {
	err = s.read(func(ctx context.Context) error {
		out, err = collectRecords[storage.Membership](s.pool.Query(ctx, "SELECT record FROM membership WHERE kvk = $1 ORDER BY account_id", kvk))
		return err
	})
	return out, err
}

// AccountMemberships lists the memberships of an account, ordered by KvK
// number.
func (s *Store) AccountMemberships(accountID string) (out []storage.Membership, err error) {
	err = s.read(func(ctx context.Context) error {
		out, err = collectRecords[storage.Membership](s.pool.Query(ctx, "SELECT record FROM membership WHERE account_id = $1 ORDER BY kvk", accountID))
		return err
	})
	return out, err
}

// PutMembership writes a membership. A changed inviter changes whether
// the members they invited are anchored, so every member's version moves.
func (s *Store) PutMembership(m storage.Membership) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		ch.add(m.AccountID)
		if err := lockOrg(ctx, tx, ch, m.KvK); err != nil {
			return err
		}
		return putMembership(ctx, tx, m)
	})
}

// UpdateMembers runs change over all memberships of an organisation in
// one transaction that holds the organisation's lock, and writes back what
// it returns; a membership left out of the result is removed.
func (s *Store) UpdateMembers(kvk string, change func([]storage.Membership) ([]storage.Membership, error)) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		if err := lockOrg(ctx, tx, ch, kvk); err != nil {
			return err
		}
		before, err := collectRecords[storage.Membership](tx.Query(ctx, "SELECT record FROM membership WHERE kvk = $1 ORDER BY account_id", kvk))
		if err != nil {
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
			if err := putMembership(ctx, tx, m); err != nil {
				return err
			}
		}
		for _, m := range before {
			if kept[m.AccountID] {
				continue
			}
			if _, err := tx.Exec(ctx, "DELETE FROM membership WHERE kvk = $1 AND account_id = $2", kvk, m.AccountID); err != nil {
				return err
			}
		}
		return nil
	})
}
