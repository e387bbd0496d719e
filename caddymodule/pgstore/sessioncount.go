package pgstore

import "context"

// LiveSessions counts the session rows not past their expiry. Rows past
// it stay until the sweep removes them, so they are left out here as
// Session leaves them out.
func (s *Store) LiveSessions() (n int, err error) {
	err = s.read(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT count(*) FROM session WHERE expires_at > now()").Scan(&n)
	})
	return n, err
}
