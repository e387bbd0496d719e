// Package pgstore is the PostgreSQL engine: wijgate's records in one
// database that any number of wijgate processes share. It implements the
// same storage interfaces as the badger engine (the contract suite in
// storage/storagetest runs against both); every user action is one
// transaction, and what must happen once (a code, an artifact, an
// invitation, a parked result) is taken with a row lock or an atomic
// statement, never read-then-write. Caches in every process learn of each
// other's writes through LISTEN/NOTIFY (versions.go).
package pgstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Options open a Store.
type Options struct {
	// URL is the connection string (postgres://…).
	URL string
	// Logger gets the change feed's and the sweeper's messages; nil
	// silences them.
	Logger *zap.Logger
	// Timeout bounds each operation, so that a database that stops
	// answering fails requests instead of holding them. Zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds one storage operation.
const DefaultTimeout = 5 * time.Second

// sweepInterval is how often expired rows are deleted. Reads never see
// them before that: every read of an expiring record asks for
// expires_at > now().
const sweepInterval = 10 * time.Minute

// Store is an open PostgreSQL database with wijgate's records in it.
type Store struct {
	pool     *pgxpool.Pool
	logger   *zap.Logger
	timeout  time.Duration
	versions *versions
	// connected is set once the schema is up to date and the change feed
	// listens; until then every operation fails with ErrUnavailable.
	connected atomic.Bool
	// waiting says, while not connected, since when and why not.
	waiting atomic.Pointer[string]
	stop    context.CancelFunc
	done    chan struct{}
}

// Open connects, brings the schema up to date and starts following other
// processes' writes. It fails when the database cannot be reached: for the
// operator commands, which should say so at once.
func Open(ctx context.Context, o Options) (*Store, error) {
	s, cc, bg, err := newStore(ctx, o)
	if err != nil {
		return nil, err
	}
	feed, err := s.connect(ctx, bg, cc)
	if err != nil {
		s.stop()
		s.pool.Close()
		return nil, err
	}
	go func() {
		defer close(s.done)
		s.sweepUntil(bg, feed)
	}()
	return s, nil
}

// OpenWaiting is Open for a server, which starts while the database is
// down: when the first attempt finds it unreachable, the store is returned
// anyway and keeps trying in the background, with one log line per
// attempt. Until it has connected, every operation fails with
// storage.ErrUnavailable and Health says since when it waits. An error
// other than an unreachable database (a connection string that does not
// parse, a migration the database refuses) fails as in Open.
func OpenWaiting(ctx context.Context, o Options) (*Store, error) {
	s, cc, bg, err := newStore(ctx, o)
	if err != nil {
		return nil, err
	}
	feed, err := s.connect(ctx, bg, cc)
	if err != nil && !errors.Is(err, storage.ErrUnavailable) {
		s.stop()
		s.pool.Close()
		return nil, err
	}
	since := time.Now()
	if err != nil {
		s.notConnected(since, firstConnectWait, err)
	}
	go func() {
		defer close(s.done)
		if err != nil {
			if feed = s.keepConnecting(bg, cc, since); feed == nil {
				return
			}
		}
		s.sweepUntil(bg, feed)
	}()
	return s, nil
}

func newStore(ctx context.Context, o Options) (*Store, *pgx.ConnConfig, context.Context, error) {
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		// pgx masks the password in the URL it quotes.
		return nil, nil, nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("postgres: %w", err)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	s := &Store{pool: pool, logger: o.Logger, timeout: o.Timeout, versions: newVersions(), done: make(chan struct{})}
	var bg context.Context
	bg, s.stop = context.WithCancel(context.Background())
	return s, cfg.ConnConfig, bg, nil
}

// connectTimeout bounds one attempt to connect, which may wait for
// another replica's migrations; a server that does not answer at all must
// not hold a start for longer.
const connectTimeout = 30 * time.Second

// connect brings the schema up to date and starts the change feed.
func (s *Store) connect(ctx, bg context.Context, cc *pgx.ConnConfig) (feed <-chan struct{}, err error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := migrate(ctx, s.pool); err != nil {
		return nil, unavailable(err)
	}
	if feed, err = s.versions.follow(ctx, bg, cc, s.logger); err != nil {
		return nil, unavailable(err)
	}
	s.connected.Store(true)
	return feed, nil
}

// Waiting between connection attempts doubles from the first to the last.
const (
	firstConnectWait = 500 * time.Millisecond
	lastConnectWait  = 10 * time.Second
)

// keepConnecting tries to connect, after the failed attempt at since,
// until it succeeds or bg ends (nil then).
func (s *Store) keepConnecting(bg context.Context, cc *pgx.ConnConfig, since time.Time) (feed <-chan struct{}) {
	for wait := firstConnectWait; ; {
		select {
		case <-bg.Done():
			return nil
		case <-time.After(wait):
		}
		feed, err := s.connect(bg, bg, cc)
		switch {
		case err == nil:
			s.logger.Info("PostgreSQL answers: serving", zap.Duration("waited", time.Since(since)))
			return feed
		case bg.Err() != nil:
			return nil
		}
		wait = min(2*wait, lastConnectWait)
		s.notConnected(since, wait, err)
	}
}

// notConnected tells the log and Health of a failed attempt to connect.
func (s *Store) notConnected(since time.Time, retryIn time.Duration, err error) {
	detail := "waiting for PostgreSQL since " + since.UTC().Format(time.RFC3339) + ": " + err.Error()
	s.waiting.Store(&detail)
	s.logger.Error("PostgreSQL cannot be reached: not serving yet, trying again",
		zap.Time("since", since), zap.Duration("retry_in", retryIn), zap.Error(err))
}

// sweepUntil deletes expired rows now and then until bg ends, then waits
// for the change feed to stop.
func (s *Store) sweepUntil(bg context.Context, feed <-chan struct{}) {
	ticker := time.NewTicker(sweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-bg.Done():
			<-feed
			return
		case <-ticker.C:
			s.sweep()
		}
	}
}

// Close stops following other processes' writes (or trying to connect)
// and closes the pool.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	s.pool.Close()
	return nil
}

// Health reports whether the database answers, for /healthz.
func (s *Store) Health() (ok bool, detail string) {
	if !s.connected.Load() {
		if w := s.waiting.Load(); w != nil {
			return false, *w
		}
		return false, "waiting for PostgreSQL"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return false, "postgres unreachable: " + err.Error()
	}
	if !s.versions.trusted.Load() {
		return false, "postgres reachable, change feed catching up"
	}
	st := s.pool.Stat()
	return true, "postgres ok (" + strconv.Itoa(int(st.TotalConns())) + " connections)"
}

// Size is what PostgreSQL says the database takes on disk (tables,
// indexes and their free space, for the whole database).
func (s *Store) Size() (int64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var size int64
	err := s.pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size)
	return size, err
}

// Version is the cache-invalidation contract (storage.Versions).
func (s *Store) Version(key string) uint64 { return s.versions.of(key) }

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// changed records the keys a transaction touched.
type changed struct{ keys []string }

func (c *changed) add(keys ...string) { c.keys = append(c.keys, keys...) }

// maxRetries bounds how often a transaction that lost a deadlock or a
// serialization race runs again.
const maxRetries = 8

// write runs fn in one transaction. The keys fn names are announced to
// every process (NOTIFY, delivered only if the transaction commits) and
// their versions move here after the commit. They move on failure as
// well: a reload too many is harmless, a stale cache is not.
func (s *Store) write(fn func(ctx context.Context, tx pgx.Tx, ch *changed) error) error {
	if !s.connected.Load() {
		return errNotConnected
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var ch changed
	var err error
	for range maxRetries {
		ch.keys = ch.keys[:0]
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := fn(ctx, tx, &ch); err != nil {
				return err
			}
			return s.versions.announce(ctx, tx, ch.keys)
		})
		if !retryable(err) {
			break
		}
	}
	for _, k := range ch.keys {
		s.versions.moved(k)
	}
	return mapErr(err)
}

// read runs one query function with the operation timeout.
func (s *Store) read(fn func(ctx context.Context) error) error {
	if !s.connected.Load() {
		return errNotConnected
	}
	ctx, cancel := s.ctx()
	defer cancel()
	return mapErr(fn(ctx))
}

// errNotConnected answers every operation before the store has connected.
var errNotConnected = fmt.Errorf("%w: not connected to PostgreSQL yet", storage.ErrUnavailable)

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// mapErr turns pgx's errors into the storage contract's: no row is
// ErrNotFound, an error of reaching the database wraps ErrUnavailable,
// and every other error (a refusal from a caller's change or check
// function, an answer of the database) passes unchanged.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return storage.ErrNotFound
	}
	return unavailable(err)
}

// unavailable wraps ErrUnavailable around an error of reaching the
// database: no connection, a broken one, no answer in time, or a server
// shutting down or starting up.
func unavailable(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) || !unreachable(err) {
		return err
	}
	return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
}

func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P: operator intervention
		// (shutdown, crash, starting up).
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, puddle.ErrClosedPool)
}

// lock serialises transactions on one name (an organisation, an address)
// until the transaction ends; names that hash alike only wait for each
// other.
func lock(ctx context.Context, tx pgx.Tx, name string) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)
	return err
}

// expiry is a record's expiry as stored: a zero time never expires.
func expiry(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// scanRecord reads one JSON record.
func scanRecord[T any](row pgx.Row) (T, error) {
	var raw []byte
	if err := row.Scan(&raw); err != nil {
		var zero T
		return zero, err
	}
	return decode[T](raw)
}

func decode[T any](raw []byte) (T, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// collectRecords reads the JSON records a query returns.
func collectRecords[T any](rows pgx.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scanRecord[T](row) })
}

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock names the advisory lock that makes replicas starting
// together take turns at the schema.
const migrationLock = 0x77696a67617465 // "wijgate"

// migrate applies the embedded migrations not applied yet, in order, each
// in one transaction with its row in schema_migration, under a session
// advisory lock: a second replica starting at the same time waits, then
// finds nothing left to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLock) }()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migration (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: the name must start with its number", base)
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "INSERT INTO schema_migration (version, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", version, base)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			_, err = tx.Exec(ctx, string(sql))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

// expiring are the tables whose rows expire, swept by sweep.
var expiring = []string{"session", "code", "flow", "counter", "invitation", "audit", "saml_request", "saml_seen", "parked_result"}

// sweep deletes expired rows.
func (s *Store) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, table := range expiring {
		if _, err := s.pool.Exec(ctx, "DELETE FROM "+table+" WHERE expires_at <= now()"); err != nil {
			s.logger.Warn("deleting expired records", zap.String("table", table), zap.Error(err))
			return
		}
	}
}
