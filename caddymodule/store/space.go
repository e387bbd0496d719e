package store

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"golang.org/x/sys/unix"
)

// DefaultReserve is the free space below which writes are refused.
//
// Badger writes its write-ahead log through a memory map of a sparse file
// (ftruncate, never fallocate), and writes new tables the same way. A
// store of a write to a page the filesystem cannot back ends the process
// with SIGBUS rather than returning an error, so badger must never write
// into the last free bytes. What one allowed write can make badger map
// and fill is bounded by the options Open sets: the current log file
// (2 × 8 MiB mapped, one transaction at most 1.2 MiB), the value-log file
// (2 × 16 MiB mapped; only values over 1 MiB go there, and wijgate's
// records are a few KiB), and the flush of a full memtable to a new table
// (≤ 8 MiB) with the level-0 compaction it may start (two or three such
// tables merged into level 1 before the old ones are deleted). 64 MiB
// covers that with room to spare; a store of many gigabytes, whose
// deeper compactions move larger tables, wants a larger reserve.
const DefaultReserve = 64 << 20

// reopenEvery bounds how often a store opened read-only tries to reopen
// for writing while the space is there but the reopening fails.
const reopenEvery = 10 * time.Second

// Space is what the store last saw of its filesystem.
type Space struct {
	// Dir is the store's directory.
	Dir string
	// Free is the space available to the store, in bytes.
	Free uint64
	// Reserve is the free space below which writes are refused.
	Reserve uint64
	// Full means writes are refused.
	Full bool
	// ReadOnly means the store was opened read-only because the disk was
	// full at start; it reopens for writing once the space is back.
	ReadOnly bool
}

func (sp Space) String() string {
	state := "writable"
	if sp.Full {
		state = "full"
	}
	return fmt.Sprintf("%s (%s, free %s, reserve %s)", state, sp.Dir, Bytes(sp.Free), Bytes(sp.Reserve))
}

// Bytes writes a size the way an operator reads it: 63.2 MiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// spaceGuard measures the store's filesystem before every write. A
// statfs costs about a microsecond against the millisecond of the
// synchronous commit it guards, so every write sees the current free
// space and no byte budget between measurements needs accounting for.
type spaceGuard struct {
	dir      *os.File
	path     string
	reserve  uint64
	onChange func(Space)

	free atomic.Uint64
	full atomic.Bool
	// readOnly is set while the store is open read-only.
	readOnly atomic.Bool

	// reopenMu lets one caller at a time reopen a read-only store.
	reopenMu    sync.Mutex
	lastAttempt time.Time
}

func newSpaceGuard(path string, reserve uint64, onChange func(Space)) (*spaceGuard, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating %q: %w", path, err)
	}
	dir, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: opening %q: %w", path, err)
	}
	if onChange == nil {
		onChange = func(Space) {}
	}
	return &spaceGuard{dir: dir, path: path, reserve: reserve, onChange: onChange}, nil
}

// measure reads the free space, remembers it, and reports a change
// between full and writable (once per change, whoever measured).
func (g *spaceGuard) measure() (Space, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(g.dir.Fd()), &st); err != nil {
		return g.space(), fmt.Errorf("store: measuring free space in %q: %w", g.path, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	g.free.Store(free)
	full := free < g.reserve
	// A read-only store stays full until it has reopened for writing.
	if !full && g.readOnly.Load() {
		return g.space(), nil
	}
	if g.full.CompareAndSwap(!full, full) {
		g.onChange(g.space())
	}
	return g.space(), nil
}

func (g *spaceGuard) space() Space {
	return Space{Dir: g.path, Free: g.free.Load(), Reserve: g.reserve,
		Full: g.full.Load(), ReadOnly: g.readOnly.Load()}
}

// flushNeed is what flushing the memtables at Close may write: twice the
// data in their logs (a table holds the same entries, indexed, in about
// as many bytes), plus a MiB for the manifest and the table's index. A
// directory that cannot be read counts as needing everything.
func (g *spaceGuard) flushNeed() uint64 {
	names, err := filepath.Glob(filepath.Join(g.path, "*.mem"))
	if err != nil {
		return math.MaxUint64
	}
	var logs uint64
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err != nil {
			return math.MaxUint64
		}
		logs += uint64(st.Blocks) * 512 // allocated, not apparent: the logs are sparse
	}
	return 2*logs + 1<<20
}

// Health reports whether the store takes writes, with its path and free
// space, for /healthz.
func (s *Store) Health() (ok bool, detail string) {
	sp := s.Space()
	return !sp.Full, sp.String()
}

// Space measures the free space now and says whether writes are refused.
// It costs one statfs, so a health check may call it on every request.
func (s *Store) Space() Space {
	if s.guard == nil {
		return Space{}
	}
	sp, _ := s.writable()
	return sp
}

// writable measures the free space before a write: below the reserve the
// write is refused with ErrStorageFull; a store opened read-only reopens
// for writing once the space is back.
func (s *Store) writable() (Space, error) {
	if s.guard == nil {
		return Space{}, nil
	}
	sp, err := s.guard.measure()
	if err != nil {
		// A filesystem that cannot say leaves the decision to badger.
		return sp, nil
	}
	if sp.Free < sp.Reserve {
		return sp, storage.ErrStorageFull
	}
	if sp.ReadOnly {
		if err := s.reopenWritable(); err != nil {
			return s.guard.space(), err
		}
		return s.guard.measure()
	}
	return sp, nil
}

// reopenWritable closes the read-only store and opens it for writing,
// while no transaction runs. When that fails it opens it read-only again
// and tries no sooner than reopenEvery later.
func (s *Store) reopenWritable() error {
	g := s.guard
	g.reopenMu.Lock()
	defer g.reopenMu.Unlock()
	if !g.readOnly.Load() {
		return nil
	}
	if now := time.Now(); now.Sub(g.lastAttempt) < reopenEvery {
		return storage.ErrStorageFull
	} else {
		g.lastAttempt = now
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: closing the read-only store %q: %w", g.path, err)
	}
	s.db = nil
	db, err := badger.Open(s.opts)
	if err != nil {
		if ro, rerr := badger.Open(s.opts.WithReadOnly(true)); rerr == nil {
			s.db = ro
		}
		return fmt.Errorf("store: opening %q for writing: %w", g.path, err)
	}
	s.db = db
	g.readOnly.Store(false)
	return nil
}
