package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// PutInvitation stores an invitation until it expires.
func (s *Store) PutInvitation(inv storage.Invitation) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		rec, err := encode(inv)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO invitation (id, kvk, expires_at, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET kvk = EXCLUDED.kvk, expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`,
			inv.ID, inv.KvK, expiry(inv.ExpiresAt), rec)
		return err
	})
}

// Invitation reads a pending invitation.
func (s *Store) Invitation(id string) (inv storage.Invitation, err error) {
	err = s.read(func(ctx context.Context) error {
		inv, err = scanRecord[storage.Invitation](s.pool.QueryRow(ctx, "SELECT record FROM invitation WHERE id = $1 AND expires_at > now()", id))
		return err
	})
	return inv, err
}

// Invitations lists an organisation's pending invitations, ordered by ID.
func (s *Store) Invitations(kvk string) (out []storage.Invitation, err error) {
	err = s.read(func(ctx context.Context) error {
		out, err = collectRecords[storage.Invitation](s.pool.Query(ctx,
			"SELECT record FROM invitation WHERE kvk = $1 AND expires_at > now() ORDER BY id", kvk))
		return err
	})
	return out, err
}

// TakeInvitation removes an invitation and returns it, once: the row lock
// makes a concurrent take wait, and then find nothing. check may refuse
// (then nothing changes).
func (s *Store) TakeInvitation(id string, check func(storage.Invitation) error) (inv storage.Invitation, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		inv, err = scanRecord[storage.Invitation](tx.QueryRow(ctx,
			"SELECT record FROM invitation WHERE id = $1 AND expires_at > now() FOR UPDATE", id))
		if err != nil {
			return err
		}
		if err := check(inv); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM invitation WHERE id = $1", id)
		return err
	})
	return inv, err
}

// AppendAudit records an entry in the organisation's audit log, kept
// until expires.
func (s *Store) AppendAudit(e storage.AuditEntry, expires time.Time) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		return insertAudit(ctx, tx, e, nil, expires)
	})
}

func insertAudit(ctx context.Context, tx pgx.Tx, e storage.AuditEntry, group *string, expires time.Time) error {
	rec, err := encode(e)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO audit (kvk, at, grp, expires_at, record) VALUES ($1, $2, $3, $4, $5)",
		e.KvK, e.At, group, expiry(expires), rec)
	return err
}

// GroupAudit records e in the organisation's audit log, or, when a live
// entry of the same group is there already, lets merge fold e into that
// entry, which keeps its place in the log. The group's lock makes
// concurrent attempts on every process take turns, so each is counted.
func (s *Store) GroupAudit(group string, e storage.AuditEntry, merge func(into *storage.AuditEntry), expires time.Time) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		if err := lock(ctx, tx, "auditgroup/"+e.KvK+"/"+group); err != nil {
			return err
		}
		var id int64
		var raw []byte
		var live bool
		err := tx.QueryRow(ctx, "SELECT id, record, expires_at > now() FROM audit WHERE kvk = $1 AND grp = $2", e.KvK, group).Scan(&id, &raw, &live)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case live:
			into, err := decode[storage.AuditEntry](raw)
			if err != nil {
				return err
			}
			merge(&into)
			rec, err := encode(into)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "UPDATE audit SET record = $2, expires_at = $3 WHERE id = $1", id, rec, expiry(expires))
			return err
		default:
			// An expired entry of the group only holds its name.
			if _, err := tx.Exec(ctx, "UPDATE audit SET grp = NULL WHERE id = $1", id); err != nil {
				return err
			}
		}
		return insertAudit(ctx, tx, e, &group, expires)
	})
}

// Audit lists a page of an organisation's live audit log, newest first:
// limit entries after skipping the skip newest. more tells whether older
// entries follow.
func (s *Store) Audit(kvk string, skip, limit int) (entries []storage.AuditEntry, more bool, err error) {
	err = s.read(func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT record, expires_at FROM audit WHERE kvk = $1 AND expires_at > now()
			ORDER BY at DESC, id DESC OFFSET $2 LIMIT $3`, kvk, skip, limit+1)
		if err != nil {
			return err
		}
		entries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.AuditEntry, error) {
			var raw []byte
			var exp time.Time
			if err := row.Scan(&raw, &exp); err != nil {
				return storage.AuditEntry{}, err
			}
			e, err := decode[storage.AuditEntry](raw)
			e.ExpiresAt = exp
			return e, err
		})
		return err
	})
	if len(entries) > limit {
		entries, more = entries[:limit], true
	}
	return entries, more, err
}
