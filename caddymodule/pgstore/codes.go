package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// codeGuessCounter is the counter key prefix of UseCode's guess count, as
// in the badger engine.
const codeGuessCounter = "codeguess/"

// PutCode stores a code for (purpose, email), replacing an older one.
func (s *Store) PutCode(c storage.VerificationCode) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		rec, err := encode(c)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO code (purpose, email, expires_at, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (purpose, email) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`,
			c.Purpose, c.Email, expiry(c.ExpiresAt), rec)
		return err
	})
}

// UseCode runs check on the code for (purpose, email), nil when there is
// none, and on the address's count of wrong guesses, in one transaction
// that holds the address's lock: uses on every process take turns, so a
// code is consumed once and no wrong guess goes uncounted.
func (s *Store) UseCode(purpose, email string, guessWindow time.Duration, check func(code *storage.VerificationCode, guesses *storage.Counter) (keep bool, err error)) error {
	guessKey := codeGuessCounter + email
	var result error
	err := s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		if err := lock(ctx, tx, "code/"+email); err != nil {
			return err
		}
		c, err := scanRecord[storage.VerificationCode](tx.QueryRow(ctx,
			"SELECT record FROM code WHERE purpose = $1 AND email = $2 AND expires_at > now()", purpose, email))
		code := &c
		if errors.Is(err, pgx.ErrNoRows) {
			code = nil
		} else if err != nil {
			return err
		}
		guesses, err := counter(ctx, tx, guessKey)
		if err != nil {
			return err
		}
		before := guesses
		keep, err := check(code, &guesses)
		result = err
		switch {
		case guesses == before:
		case guesses.Count == 0:
			if _, err := tx.Exec(ctx, "DELETE FROM counter WHERE key = $1", guessKey); err != nil {
				return err
			}
		default:
			if err := putCounter(ctx, tx, guessKey, guesses, guesses.WindowStart.Add(guessWindow)); err != nil {
				return err
			}
		}
		switch {
		case code == nil:
			return nil
		case keep:
			rec, err := encode(c)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "UPDATE code SET record = $3 WHERE purpose = $1 AND email = $2", purpose, email, rec)
			return err
		default:
			_, err := tx.Exec(ctx, "DELETE FROM code WHERE purpose = $1 AND email = $2", purpose, email)
			return err
		}
	})
	if err != nil {
		return err
	}
	return result
}

// PutFlow writes a flow; it expires at ExpiresAt.
func (s *Store) PutFlow(f storage.Flow) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		rec, err := encode(f)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO flow (id, expires_at, record) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`, f.ID, expiry(f.ExpiresAt), rec)
		return err
	})
}

// Flow reads a live flow.
func (s *Store) Flow(id string) (f storage.Flow, err error) {
	err = s.read(func(ctx context.Context) error {
		f, err = scanRecord[storage.Flow](s.pool.QueryRow(ctx, "SELECT record FROM flow WHERE id = $1 AND expires_at > now()", id))
		return err
	})
	return f, err
}

// DeleteFlow removes a flow.
func (s *Store) DeleteFlow(id string) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		_, err := tx.Exec(ctx, "DELETE FROM flow WHERE id = $1", id)
		return err
	})
}

// UpdateCounter applies change to the counter under key, holding the
// key's lock, and keeps it until expires.
func (s *Store) UpdateCounter(key string, expires time.Time, change func(*storage.Counter)) (c storage.Counter, err error) {
	err = s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		if err := lock(ctx, tx, "counter/"+key); err != nil {
			return err
		}
		if c, err = counter(ctx, tx, key); err != nil {
			return err
		}
		change(&c)
		return putCounter(ctx, tx, key, c, expires)
	})
	return c, err
}

// Counter reads a counter; a missing one is a zero Counter.
func (s *Store) Counter(key string) (c storage.Counter, err error) {
	err = s.read(func(ctx context.Context) error {
		c, err = counter(ctx, s.pool, key)
		return err
	})
	return c, err
}

// DeleteCounter removes a counter.
func (s *Store) DeleteCounter(key string) error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		_, err := tx.Exec(ctx, "DELETE FROM counter WHERE key = $1", key)
		return err
	})
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func counter(ctx context.Context, q querier, key string) (storage.Counter, error) {
	c, err := scanRecord[storage.Counter](q.QueryRow(ctx, "SELECT record FROM counter WHERE key = $1 AND expires_at > now()", key))
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Counter{}, nil
	}
	return c, err
}

func putCounter(ctx context.Context, tx pgx.Tx, key string, c storage.Counter, expires time.Time) error {
	rec, err := encode(c)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO counter (key, expires_at, record) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`, key, expiry(expires), rec)
	return err
}
