// Package store keeps every durable wijgate record in one badger directory.
// It is the only package that knows keys, encodings and transactions; the
// domain packages above it hold the rules and call its typed methods.
package store

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

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
	// closes, the import's tables are not compacted while it runs
	// (bulkLoadOptions), and Close compacts the whole tree into one level
	// in one pass, so the server that opens the store next does not
	// inherit the import's compactions. Never for a store a server uses: a
	// crash loses unsynced writes.
	BulkLoad bool
	// Reserve is the free space on the store's filesystem below which
	// writes are refused with ErrStorageFull. Zero means DefaultReserve.
	Reserve uint64
	// OnSpaceChange is told when writes start or stop being refused
	// for lack of space, once per change.
	OnSpaceChange func(Space)
}

// Store is an open badger database with wijgate's records in it.
type Store struct {
	// dbMu keeps transactions off db while a store opened read-only is
	// reopened for writing.
	dbMu sync.RWMutex
	// db is nil only when that reopening failed both ways.
	db *badger.DB
	// opts are what db was opened with, for the reopening.
	opts badger.Options
	// guard refuses writes when the disk is nearly full; nil in memory.
	guard *spaceGuard
	// versions hold what Version reports.
	versions versions
	// bulk is set when opened with BulkLoad: Close compacts and syncs
	// first.
	bulk bool
	// auditMu makes grouped audit entries take turns (GroupAudit).
	auditMu sync.Mutex
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
		bo = bulkLoadOptions(bo)
	}
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("").WithInMemory(true)
		db, err := badger.Open(bo)
		if err != nil {
			return nil, fmt.Errorf("store: opening in memory: %w", err)
		}
		return newStore(db, bo, nil, o.BulkLoad), nil
	}
	if o.Dir == "" {
		return nil, errors.New("store: no directory given")
	}
	reserve := o.Reserve
	if reserve == 0 {
		reserve = DefaultReserve
	}
	guard, err := newSpaceGuard(o.Dir, reserve, o.OnSpaceChange)
	if err != nil {
		return nil, err
	}
	sp, err := guard.measure()
	if err != nil || !sp.Full {
		db, err := badger.Open(bo)
		if err != nil {
			guard.dir.Close()
			return nil, fmt.Errorf("store: opening %q: %w", o.Dir, err)
		}
		return newStore(db, bo, guard, o.BulkLoad), nil
	}
	// Opened for writing, badger would write at once (a new log file,
	// the flush of a log left by a crash), into space that may not be
	// there. Read-only it writes nothing, and reads are what keeps
	// people with a session working.
	guard.readOnly.Store(true)
	db, err := badger.Open(bo.WithReadOnly(true))
	if err != nil {
		guard.dir.Close()
		return nil, fmt.Errorf("store: the disk holding %q is full (free %s, reserve %s) and the store cannot be opened read-only: %w",
			o.Dir, Bytes(sp.Free), Bytes(sp.Reserve), err)
	}
	return newStore(db, bo, guard, o.BulkLoad), nil
}

func newStore(db *badger.DB, opts badger.Options, guard *spaceGuard, bulk bool) *Store {
	st := &Store{db: db, opts: opts, guard: guard, bulk: bulk}
	st.versions.init()
	return st
}

// Close flushes and closes the database, unless the disk is full.
func (s *Store) Close() error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if s.guard != nil {
		defer s.guard.dir.Close()
	}
	if s.db == nil {
		return nil
	}
	if s.guard != nil && !s.guard.readOnly.Load() {
		// Closing flushes the memtable into a new table, written through
		// a memory map like the log: without the space for it that write
		// would end the process. Left open, nothing is lost: every
		// acknowledged write is in the synced log, which the next start
		// replays (though not read-only, so that start needs space).
		if sp, err := s.guard.measure(); err == nil && sp.Full && sp.Free < s.guard.flushNeed() {
			return fmt.Errorf("store: %q left open, not flushed, because its disk is full (free %s): %w",
				sp.Dir, Bytes(sp.Free), storage.ErrStorageFull)
		}
	}
	if s.bulk && !s.opts.InMemory {
		if err := s.compactBulkLoad(); err != nil {
			if s.db != nil {
				s.db.Close()
				s.db = nil
			}
			return fmt.Errorf("store: compacting the bulk load: %w", err)
		}
	}
	return s.db.Close()
}

// bulkMemTableSize is the memory table of a store opened with BulkLoad;
// a variable so that tests can make an import span many of them.
var bulkMemTableSize int64 = 64 << 20

// bulkLoadOptions let an import write its memory tables out as level-0
// tables and leave them there: compacted as they came, in the small
// tables and levels a server's store uses, each byte of a 1M-account
// import was rewritten several times while it ran, and that took most of
// the import's time. Up to 32 level-0 tables (2 GiB) are let stand before
// a compaction, so an import of any size still ends; compactBulkLoad
// merges them once at the end.
func bulkLoadOptions(bo badger.Options) badger.Options {
	return bo.WithSyncWrites(false).
		WithMemTableSize(bulkMemTableSize).
		WithNumLevelZeroTables(32).
		WithNumLevelZeroTablesStall(64)
}

// compactBulkLoad leaves the whole store on one level, so the server that
// opens it next does not inherit the import's compactions (at 100k
// accounts those held ≈36 MB of table builders and paged the whole store
// in). Closing writes the last memory table out. Reopened with a base
// level as large as the store, Flatten merges every level-0 table
// straight into the bottom level in one pass rather than level by level,
// in 4 MiB tables (what the level-by-level flatten made at 100k accounts:
// 2 and 4 MiB). An import that fits one memory table into an empty store
// stays that one level-0 table. Nothing is written after the reopening,
// so its memory table is the server's size.
func (s *Store) compactBulkLoad() error {
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return err
	}
	db, err := badger.Open(s.opts.
		WithMemTableSize(8 << 20).
		WithNumCompactors(0).
		WithNumLevelZeroTables(1).
		WithBaseLevelSize(1 << 50).
		WithBaseTableSize(4 << 20))
	if err != nil {
		return err
	}
	s.db = db
	if err := db.Flatten(2); err != nil {
		return err
	}
	return db.Sync()
}

// CollectGarbage rewrites value-log files that are mostly stale, until
// there is nothing left worth rewriting.
// A rewrite is a write, so none runs while the disk is nearly full.
func (s *Store) CollectGarbage() {
	if _, err := s.writable(); err != nil {
		return
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	for s.db != nil && s.db.RunValueLogGC(0.5) == nil {
	}
}

// Size reports the bytes the LSM tree and value log take on disk.
func (s *Store) Size() (lsm, vlog int64) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return 0, 0
	}
	return s.db.Size()
}

// Version is a number that moves after every committed write that can
// make something cached about key stale. key is an account ID (its
// record, its memberships and their organisations) or a session key (the
// session). A cache reads the version before it reads the records and
// trusts what it holds while the version is unchanged; a write moves only
// the versions of what it touched, so one person logging out leaves every
// other cached session alone.
func (s *Store) Version(key string) uint64 { return s.versions.of(key) }

// versionSlots is how many counters the versions are spread over. Keys
// that share a slot only cost each other a needless reload.
const versionSlots = 1 << 12

// versions are per-key change counters, hashed into slots, plus one that
// moves for writes too wide to name their keys (an import).
type versions struct {
	seed  maphash.Seed
	all   atomic.Uint64
	slots [versionSlots]atomic.Uint64
}

func (v *versions) init() { v.seed = maphash.MakeSeed() }

// of is the sum of the all counter and key's slot: both only grow, so the
// sum changes whenever either does.
func (v *versions) of(key string) uint64 { return v.all.Load() + v.slot(key).Load() }

func (v *versions) slot(key string) *atomic.Uint64 {
	return &v.slots[maphash.String(v.seed, key)%versionSlots]
}

// changed records the keys a transaction touched.
type changed struct{ keys []string }

func (c *changed) add(keys ...string) { c.keys = append(c.keys, keys...) }

// update runs fn in a read-write transaction, running it again when it
// lost a race with a concurrent transaction, and then moves the versions
// of the keys fn named, after the commit, so a reader that saw the old
// version cannot cache the new records under it. They move on failure as
// well: a reload too many is harmless, a stale cache is not.
func (s *Store) update(fn func(txn *badger.Txn, ch *changed) error) error {
	var ch changed
	err := s.updateQuiet(func(txn *badger.Txn) error {
		ch.keys = ch.keys[:0]
		return fn(txn, &ch)
	})
	for _, k := range ch.keys {
		s.versions.slot(k).Add(1)
	}
	return err
}

// updateQuiet is update for records no cache holds (codes, counters,
// idle-tracking times): it moves no version. A write while the disk is
// nearly full is refused before badger sees it (ErrStorageFull).
func (s *Store) updateQuiet(fn func(txn *badger.Txn) error) error {
	if _, err := s.writable(); err != nil {
		return err
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil || s.guard != nil && s.guard.readOnly.Load() {
		return storage.ErrStorageFull
	}
	var err error
	for range maxConflictRetries {
		err = s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}

func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return errUnavailable
	}
	return s.db.View(fn)
}

// errUnavailable is what reads get after a read-only store failed to
// reopen either way; the error that caused it was returned to the write
// that tried.
var errUnavailable = errors.New("store: not open")

func getJSON(txn *badger.Txn, key string, v any) error {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return storage.ErrNotFound
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
