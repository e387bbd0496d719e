package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// DeleteAccount removes an account and everything kept for it in one
// transaction (account.Store documents what), holding the account's row
// lock, so a login racing it waits and then finds no account, and each
// of its organisations' locks in KvK order while d.Leave decides what the
// organisation keeps. Audit entries and invitations are found by their
// records' target and email, through the indexes of migration 0003.
func (s *Store) DeleteAccount(id string, d storage.AccountDeletion) (a storage.Account, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		ch.add(id)
		a, err = scanRecord[storage.Account](tx.QueryRow(ctx, "SELECT record FROM account WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT kvk FROM membership WHERE account_id = $1 ORDER BY kvk", id)
		if err != nil {
			return err
		}
		kvks, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, kvk := range kvks {
			if err := leaveOrganisation(ctx, tx, ch, kvk, id, d.Leave); err != nil {
				return err
			}
		}
		rows, err = tx.Query(ctx, "DELETE FROM session WHERE account_id = $1 RETURNING key", id)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		ch.add(keys...)
		for _, stmt := range []struct {
			sql  string
			args []any
		}{
			{"DELETE FROM pseudonym WHERE account_id = $1", []any{id}},
			{"DELETE FROM code WHERE email = $1", []any{a.Email}},
			{"DELETE FROM invitation WHERE record->>'email' = $1 OR record->>'invited_by' = $2", []any{a.Email, id}},
			{"DELETE FROM flow WHERE record->>'account_id' = $1 OR record->>'email' = $2", []any{id, a.Email}},
			{"UPDATE audit SET record = jsonb_set(record, '{target}', to_jsonb($2::text)) WHERE record->>'target' = $1", []any{a.Email, d.Pseudonym}},
			{"DELETE FROM account WHERE id = $1", []any{id}},
		} {
			if _, err := tx.Exec(ctx, stmt.sql, stmt.args...); err != nil {
				return err
			}
		}
		return nil
	})
	return a, err
}

// leaveOrganisation writes back what leave keeps of an organisation's
// memberships, under the organisation's lock, as UpdateMembers does.
func leaveOrganisation(ctx context.Context, tx pgx.Tx, ch *changed, kvk, id string, leave func(string, []storage.Membership) ([]storage.Membership, error)) error {
	if err := lockOrg(ctx, tx, ch, kvk); err != nil {
		return err
	}
	before, err := collectRecords[storage.Membership](tx.Query(ctx, "SELECT record FROM membership WHERE kvk = $1 ORDER BY account_id", kvk))
	if err != nil {
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
}

// InvitationsFor lists the live invitations to an address, in every
// organisation.
func (s *Store) InvitationsFor(email string) (out []storage.Invitation, err error) {
	err = s.read(func(ctx context.Context) error {
		out, err = collectRecords[storage.Invitation](s.pool.Query(ctx,
			"SELECT record FROM invitation WHERE record->>'email' = $1 AND expires_at > now() ORDER BY id", email))
		return err
	})
	return out, err
}
