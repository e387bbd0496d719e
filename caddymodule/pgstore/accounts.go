package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// CreateAccount writes a new account; ErrExists if its email (or ID) is
// taken.
func (s *Store) CreateAccount(a storage.Account) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		ch.add(a.ID)
		rec, err := encode(a)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "INSERT INTO account (id, email, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", a.ID, a.Email, rec)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrExists
		}
		return err
	})
}

// Account reads an account by ID.
func (s *Store) Account(id string) (a storage.Account, err error) {
	err = s.read(func(ctx context.Context) error {
		a, err = scanRecord[storage.Account](s.pool.QueryRow(ctx, "SELECT record FROM account WHERE id = $1", id))
		return err
	})
	return a, err
}

// AccountByEmail reads an account by its normalised email.
func (s *Store) AccountByEmail(email string) (a storage.Account, err error) {
	err = s.read(func(ctx context.Context) error {
		a, err = scanRecord[storage.Account](s.pool.QueryRow(ctx, "SELECT record FROM account WHERE email = $1", email))
		return err
	})
	return a, err
}

// UpdateAccount applies change to the account under a row lock, by the
// rule of storage.ChangeAccount. A login creating a session holds the
// account's row lock too (CreateSession), so the two take turns.
func (s *Store) UpdateAccount(id string, change func(*storage.Account) error) (a storage.Account, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		ch.add(id)
		a, err = scanRecord[storage.Account](tx.QueryRow(ctx, "SELECT record FROM account WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return err
		}
		var endSessions bool
		if a, endSessions, err = storage.ChangeAccount(a, change); err != nil {
			return err
		}
		if endSessions {
			rows, err := tx.Query(ctx, "DELETE FROM session WHERE account_id = $1 RETURNING key", id)
			if err != nil {
				return err
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			ch.add(keys...)
		}
		rec, err := encode(a)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE account SET record = $2 WHERE id = $1", id, rec)
		return err
	})
	return a, err
}

// Accounts lists every account, ordered by ID.
func (s *Store) Accounts() (out []storage.Account, err error) {
	err = s.read(func(ctx context.Context) error {
		out, err = collectRecords[storage.Account](s.pool.Query(ctx, "SELECT record FROM account ORDER BY id"))
		return err
	})
	return out, err
}

// CreateSession writes a new session only while its account has the
// session's credential version and is not disabled (ErrStale otherwise),
// holding the account's row in share mode until it commits: a credential
// change waits for it and then ends the new session too. A new session is
// in no cache yet, so no version moves.
func (s *Store) CreateSession(ss storage.Session) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		a, err := scanRecord[storage.Account](tx.QueryRow(ctx, "SELECT record FROM account WHERE id = $1 FOR SHARE", ss.AccountID))
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrStale
		}
		if err != nil {
			return err
		}
		if a.Disabled || a.CredentialVersion != ss.CredentialVersion {
			return storage.ErrStale
		}
		rec, err := encode(ss)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO session (key, account_id, expires_at, record) VALUES ($1, $2, $3, $4)",
			ss.Key, ss.AccountID, expiry(ss.ExpiresAt), rec)
		return err
	})
}

// Session reads a live session by key.
func (s *Store) Session(key string) (ss storage.Session, err error) {
	err = s.read(func(ctx context.Context) error {
		ss, err = scanRecord[storage.Session](s.pool.QueryRow(ctx, "SELECT record FROM session WHERE key = $1 AND expires_at > now()", key))
		return err
	})
	return ss, err
}

// UpdateSession applies change to a live session; ErrNotFound once it is
// gone, so a change never resurrects a revoked session.
func (s *Store) UpdateSession(key string, change func(*storage.Session)) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		ss, err := scanRecord[storage.Session](tx.QueryRow(ctx, "SELECT record FROM session WHERE key = $1 AND expires_at > now() FOR UPDATE", key))
		if err != nil {
			return err
		}
		ch.add(key)
		change(&ss)
		rec, err := encode(ss)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE session SET record = $2, expires_at = $3 WHERE key = $1", key, rec, expiry(ss.ExpiresAt))
		return err
	})
}

// TouchSessions records activity on sessions in one transaction without
// moving their versions (no cache depends on it), skipping those that are
// gone.
func (s *Store) TouchSessions(touches []storage.Touch) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		for _, t := range touches {
			ss, err := scanRecord[storage.Session](tx.QueryRow(ctx, "SELECT record FROM session WHERE key = $1 AND expires_at > now() FOR UPDATE", t.Key))
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if !t.Apply(&ss) {
				continue
			}
			rec, err := encode(ss)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "UPDATE session SET record = $2 WHERE key = $1", t.Key, rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteSession removes a session; deleting a missing one is not an error.
func (s *Store) DeleteSession(key string) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		ch.add(key)
		_, err := tx.Exec(ctx, "DELETE FROM session WHERE key = $1", key)
		return err
	})
}

// AccountSessions lists the live sessions of an account (index
// session_account), ordered by key.
func (s *Store) AccountSessions(accountID string) (out []storage.Session, err error) {
	err = s.read(func(ctx context.Context) error {
		out, err = collectRecords[storage.Session](s.pool.Query(ctx, "SELECT record FROM session WHERE account_id = $1 AND expires_at > now() ORDER BY key", accountID))
		return err
	})
	return out, err
}

// ChangeEmail moves the account to a new address (the unique email
// column moves with the row), moves its credential version and ends its
// sessions, in one transaction under the account's row lock; ErrExists
// if the address is another account's.
func (s *Store) ChangeEmail(id, email string) (a storage.Account, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error {
		ch.add(id)
		a, err = scanRecord[storage.Account](tx.QueryRow(ctx, "SELECT record FROM account WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return err
		}
		a.Email = email
		a.CredentialVersion++
		rec, err := encode(a)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE account SET email = $2, record = $3 WHERE id = $1", id, email, rec); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
				return storage.ErrExists
			}
			return err
		}
		rows, err := tx.Query(ctx, "DELETE FROM session WHERE account_id = $1 RETURNING key", id)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		ch.add(keys...)
		return err
	})
	return a, err
}

// uniqueViolation is PostgreSQL's SQLSTATE for a unique index refusing a
// row.
const uniqueViolation = "23505"
