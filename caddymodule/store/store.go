// Package store keeps every durable wijgate record in one badger directory.
// It is the only package that knows keys, encodings and transactions; the
// domain packages above it hold the rules and call its typed methods.
package store

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// ErrNotFound is returned when a record does not exist (or has expired).
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when a unique record (an email address, a
// single-use token) is already taken.
var ErrExists = errors.New("store: already exists")

// maxConflictRetries bounds how often a transaction that lost a
// read-modify-write race is run again before the error reaches the caller.
const maxConflictRetries = 16

// Logger receives badger's own messages; zap's SugaredLogger fits through
// a small adapter in the caller.
type Logger = badger.Logger

// Options says where and how to open the store.
type Options struct {
	// Dir is the badger directory. Ignored when InMemory is set.
	Dir string
	// InMemory keeps everything in memory (tests of other packages).
	InMemory bool
	// Logger gets badger's messages; nil silences them.
	Logger Logger
	// BulkLoad opens the store for an offline import (Importer) with no
	// server running: writes are not synced one by one but when the store
	// closes, and memory tables are larger (BenchmarkImport: about 1.7
	// times the accounts per second). Never for a store a server uses: a
	// crash loses unsynced writes.
	BulkLoad bool
}

// Store is an open badger database with wijgate's records in it.
type Store struct {
	db *badger.DB
	// generation moves after every committed write that can change who
	// someone is or what they may do; caches compare it before trusting
	// what they hold.
	generation atomic.Uint64
	// bulk is set when opened with BulkLoad: Close syncs first.
	bulk bool
}

// Open opens (creating if needed) the store. Writes are synchronous, so an
// acknowledged write survives a power loss, and the memory options are
// sized for a small authentication database rather than badger's
// defaults of several hundred megabytes.
func Open(o Options) (*Store, error) {
	bo := badger.DefaultOptions(o.Dir).
		WithSyncWrites(true).
		WithLogger(o.Logger).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(16 << 20).
		WithNumCompactors(2).
		WithBaseTableSize(1 << 20).
		WithCompression(options.None)
	if o.BulkLoad {
		bo = bo.WithSyncWrites(false)
	}
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("").WithInMemory(true)
	} else if o.Dir == "" {
		return nil, errors.New("store: no directory given")
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: opening %q: %w", o.Dir, err)
	}
	return &Store{db: db, bulk: o.BulkLoad}, nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if s.bulk {
		if err := s.db.Sync(); err != nil {
			s.db.Close()
			return fmt.Errorf("store: syncing the bulk load: %w", err)
		}
	}
	return s.db.Close()
}

// CollectGarbage rewrites value-log files that are mostly stale, until
// there is nothing left worth rewriting.
func (s *Store) CollectGarbage() {
	for s.db.RunValueLogGC(0.5) == nil {
	}
}

// Size reports the bytes the LSM tree and value log take on disk.
func (s *Store) Size() (lsm, vlog int64) { return s.db.Size() }

// Generation is a counter that changes after every write to accounts,
// sessions or memberships. Equal values mean nothing cached went stale.
func (s *Store) Generation() uint64 { return s.generation.Load() }

// update runs fn in a read-write transaction, running it again when it
// lost a race with a concurrent transaction, and moves the generation.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	err := s.updateQuiet(fn)
	s.generation.Add(1)
	return err
}

// updateQuiet is update for records no cache holds (codes, counters,
// idle-tracking times): it leaves the generation alone.
func (s *Store) updateQuiet(fn func(txn *badger.Txn) error) error {
	var err error
	for range maxConflictRetries {
		err = s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}

func (s *Store) view(fn func(txn *badger.Txn) error) error { return s.db.View(fn) }

func getJSON(txn *badger.Txn, key string, v any) error {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func exists(txn *badger.Txn, key string) (bool, error) {
	_, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// putJSON writes v under key; a non-zero expiry becomes the record's TTL.
func putJSON(txn *badger.Txn, key string, v any, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return put(txn, key, b, expires)
}

func put(txn *badger.Txn, key string, b []byte, expires time.Time) error {
	e := badger.NewEntry([]byte(key), b)
	if !expires.IsZero() {
		e.ExpiresAt = uint64(expires.Unix())
	}
	return txn.SetEntry(e)
}

func del(txn *badger.Txn, key string) error { return txn.Delete([]byte(key)) }

// scanKeys calls fn with every key under prefix (values are not read).
func scanKeys(txn *badger.Txn, prefix string, fn func(key string) error) error {
	p := []byte(prefix)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		if err := fn(string(it.Item().Key())); err != nil {
			return err
		}
	}
	return nil
}

// scanJSON decodes every value under prefix into a fresh T and hands it to fn.
func scanJSON[T any](txn *badger.Txn, prefix string, fn func(T) error) error {
	p := []byte(prefix)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		var v T
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &v) }); err != nil {
			return fmt.Errorf("store: decoding %q: %w", it.Item().Key(), err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// randomSuffix keeps keys written in the same nanosecond apart.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%08x", b)
}
