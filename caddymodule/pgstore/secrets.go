package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Secret returns the secret stored under name, generating and storing it
// with generate the first time. Processes racing here agree on one value:
// the first insert wins and every one of them reads it. A secret that
// exists is only read.
func (s *Store) Secret(name string, generate func() ([]byte, error)) (out []byte, err error) {
	err = s.read(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT value FROM secret WHERE name = $1", name).Scan(&out)
	})
	if !errors.Is(err, storage.ErrNotFound) {
		return out, err
	}
	value, err := generate()
	if err != nil {
		return nil, err
	}
	err = s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		if _, err := tx.Exec(ctx, "INSERT INTO secret (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", name, value); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT value FROM secret WHERE name = $1", name).Scan(&out)
	})
	return out, err
}

// SetSecret replaces the secret stored under name (key rotation).
func (s *Store) SetSecret(name string, value []byte) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		_, err := tx.Exec(ctx, `INSERT INTO secret (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, value)
		return err
	})
}
