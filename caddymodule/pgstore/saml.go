package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
)

// TrackRequest tracks a started eHerkenning login until it expires.
func (s *Store) TrackRequest(_ context.Context, r eherkenning.TrackedRequest) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		rec, err := encode(r)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO saml_request (id, expires_at, record) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`, r.ID, expiry(r.ExpiresAt), rec)
		return err
	})
}

// TakeRequest returns and forgets a tracked login in one statement: of two
// answers to one request, on any processes, one gets it.
func (s *Store) TakeRequest(_ context.Context, id string) (r eherkenning.TrackedRequest, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		r, err = scanRecord[eherkenning.TrackedRequest](tx.QueryRow(ctx,
			"DELETE FROM saml_request WHERE id = $1 AND expires_at > now() RETURNING record", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return eherkenning.ErrUnknownRequest
		}
		return err
	})
	return r, err
}

// MarkAssertionSeen records an assertion until it can no longer be
// replayed, and reports whether it was new, in one statement: an expired
// mark is replaced, a live one is left and reported.
func (s *Store) MarkAssertionSeen(_ context.Context, key string, until time.Time) (first bool, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		tag, err := tx.Exec(ctx, `INSERT INTO saml_seen (key, expires_at) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE saml_seen.expires_at <= now()`, key, expiry(until))
		first = err == nil && tag.RowsAffected() == 1
		return err
	})
	return first, err
}

// ParkResult keeps a verified answer until the browser that started the
// login comes to collect it.
func (s *Store) ParkResult(_ context.Context, key string, p eherkenning.ParkedResult) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		rec, err := encode(p)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO parked_result (key, expires_at, record) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`, key, expiry(p.ExpiresAt), rec)
		return err
	})
}

// TakeParkedResult returns and forgets a parked answer in one statement.
func (s *Store) TakeParkedResult(_ context.Context, key string) (p eherkenning.ParkedResult, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		p, err = scanRecord[eherkenning.ParkedResult](tx.QueryRow(ctx,
			"DELETE FROM parked_result WHERE key = $1 AND expires_at > now() RETURNING record", key))
		if errors.Is(err, pgx.ErrNoRows) {
			return eherkenning.ErrUnknownResult
		}
		return err
	})
	return p, err
}

var _ eherkenning.StateStore = (*Store)(nil)
