package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// cookieDigest keys the cache: the first 16 bytes of the SHA-256 of the raw
// cookie value. A fixed-size key keeps a cached session small and free of
// pointers the garbage collector would follow, and finding a cookie whose
// digest matches another person's is a 2^128 search.
type cookieDigest [16]byte

func digestCookie(raw string) cookieDigest {
	// Sum256 only reads its input: hashing the string's bytes in place
	// spares every request a copy of its cookie.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	return cookieDigest(sum[:16])
}

// entry is one cached session: what Lookup hands on, and no more. It is
// one allocation free of pointers, which the collector neither scans nor
// counts as more than one object: these fields, then the session's key,
// account ID and active organisation end to end (newEntry lays it out).
// The text is written once, before the entry is shared, and the
// strings Lookup hands on point into it, keeping the entry alive for as
// long as a request holds them; only the atomic fields change. The user
// agent, address and start time are read from the store by the session
// list, never from here.
type entry struct {
	credentialVersion uint64
	expires           int64
	// version is the store's Version of the session when it was read.
	version uint64
	// lastSeen and persisted are unix nanoseconds: the last request, and
	// the last time that was handed to the store; confirmed is when the
	// store last vouched for the entry (read it, or its version held).
	lastSeen  atomic.Int64
	persisted atomic.Int64
	confirmed atomic.Int64
	// keyEnd, accountEnd and textEnd are where the key, account ID and
	// active organisation end in the text.
	keyEnd, accountEnd, textEnd uint16
	// amr is the sign-in methods' index in the cache's amrSets.
	amr uint8
}

// entrySize is where an entry's text starts.
const entrySize = unsafe.Sizeof(entry{})

// newEntry caches a session read from the store at version, or says why
// it cannot.
func newEntry(s storage.Session, version uint64, amrs *amrSets) (*entry, error) {
	n := len(s.Key) + len(s.AccountID) + len(s.ActiveOrg)
	if n > math.MaxUint16 {
		return nil, fmt.Errorf("session: key, account and organisation of %d bytes do not fit a cache entry", n)
	}
	amr, err := amrs.intern(s.AMR)
	if err != nil {
		return nil, err
	}
	// Words rather than bytes, so the fields are aligned for atomic use.
	words := make([]uint64, (entrySize+uintptr(n)+7)/8)
	e := (*entry)(unsafe.Pointer(unsafe.SliceData(words)))
	text := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(e), entrySize)), n)
	keyEnd := copy(text, s.Key)
	accountEnd := keyEnd + copy(text[keyEnd:], s.AccountID)
	copy(text[accountEnd:], s.ActiveOrg)
	e.keyEnd, e.accountEnd, e.textEnd = uint16(keyEnd), uint16(accountEnd), uint16(n)
	e.credentialVersion, e.amr, e.expires, e.version = s.CredentialVersion, amr, s.ExpiresAt.UnixNano(), version
	return e, nil
}

// text is the entry's text from one offset to another.
func (e *entry) text(from, to uint16) string {
	if from == to {
		// A pointer past the entry's end must not be made.
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(e), entrySize+uintptr(from))), to-from)
}

func (e *entry) key() string { return e.text(0, e.keyEnd) }

// session is the cached session as Lookup returns it, last seen now; amrs
// are those of the cache that holds e.
func (e *entry) session(now time.Time, amrs *amrSets) storage.Session {
	return storage.Session{Key: e.key(), AccountID: e.text(e.keyEnd, e.accountEnd), ActiveOrg: e.text(e.accountEnd, e.textEnd),
		CredentialVersion: e.credentialVersion, AMR: amrs.get(e.amr), ExpiresAt: time.Unix(0, e.expires), LastSeen: now}
}

// amrSets are the distinct sign-in methods of a cache's sessions, each
// shared by the entries that index it. Only the server's own sign-in
// flows make these, so there are a handful; a set is added once and
// never changed or removed.
type amrSets struct {
	mu   sync.Mutex
	n    int
	sets [math.MaxUint8 + 1]atomic.Pointer[[]string]
}

// errTooManyAMRSets is a session whose sign-in methods would be the 257th
// distinct set: refused, as an entry cannot point at it.
var errTooManyAMRSets = errors.New("session: more than 256 distinct sets of sign-in methods")

// intern returns amr's index, adding it if it is new.
func (a *amrSets) intern(amr []string) (uint8, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.n {
		if slices.Equal(*a.sets[i].Load(), amr) {
			return uint8(i), nil
		}
	}
	if a.n == len(a.sets) {
		return 0, errTooManyAMRSets
	}
	set := slices.Clip(amr)
	a.sets[a.n].Store(&set)
	a.n++
	return uint8(a.n - 1), nil
}

func (a *amrSets) get(i uint8) []string { return *a.sets[i].Load() }

const cacheShards = 64

// cache is a bounded, sharded map. When a shard is full an arbitrary entry
// is evicted: an evicted session is only re-read from the store.
type cache struct {
	perShard int
	shards   [cacheShards]shard
	amrs     amrSets
}

type shard struct {
	mu sync.RWMutex
	m  map[cookieDigest]*entry
}

func newCache(size int) *cache {
	c := &cache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[cookieDigest]*entry)
	}
	return c
}

// shard picks by the digest's first byte, which is as evenly spread as
// the digest.
func (c *cache) shard(key cookieDigest) *shard {
	return &c.shards[int(key[0])%cacheShards]
}

func (c *cache) get(key cookieDigest) *entry {
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	return e
}

func (c *cache) put(key cookieDigest, e *entry) {
	s := c.shard(key)
	s.mu.Lock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[key] = e
	s.mu.Unlock()
}

func (c *cache) delete(key cookieDigest) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
