package session

import (
	"crypto/sha256"
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

// entry is one cached session: what Lookup hands on, and no more. Its
// strings are one text and its times unix nanoseconds, so an entry is two
// small objects; the user agent, address and start time are read from
// the store by the session list, never from here.
type entry struct {
	// text is the session's key, account ID and active organisation, end
	// to end.
	text               string
	keyEnd, accountEnd uint16
	credentialVersion  uint64
	// amr is shared with every entry of the same sign-in methods.
	amr     *[]string
	expires int64
	// version is the store's Version of the session when it was read.
	version uint64
	// lastSeen and persisted are unix nanoseconds: the last request, and
	// the last time that was handed to the store; confirmed is when the
	// store last vouched for the entry (read it, or its version held).
	lastSeen  atomic.Int64
	persisted atomic.Int64
	confirmed atomic.Int64
}

// newEntry caches a session read from the store at version, or says why
// it cannot.
func newEntry(s storage.Session, version uint64) (*entry, error) {
	if len(s.Key)+len(s.AccountID)+len(s.ActiveOrg) > math.MaxUint16 {
		return nil, fmt.Errorf("session: key, account and organisation of %d bytes do not fit a cache entry", len(s.Key)+len(s.AccountID)+len(s.ActiveOrg))
	}
	text := s.Key + s.AccountID + s.ActiveOrg
	return &entry{text: text, keyEnd: uint16(len(s.Key)), accountEnd: uint16(len(s.Key) + len(s.AccountID)),
		credentialVersion: s.CredentialVersion, amr: internAMR(s.AMR), expires: s.ExpiresAt.UnixNano(), version: version}, nil
}

func (e *entry) key() string { return e.text[:e.keyEnd] }

// session is the cached session as Lookup returns it, last seen now.
func (e *entry) session(now time.Time) storage.Session {
	return storage.Session{Key: e.key(), AccountID: e.text[e.keyEnd:e.accountEnd], ActiveOrg: e.text[e.accountEnd:],
		CredentialVersion: e.credentialVersion, AMR: *e.amr, ExpiresAt: time.Unix(0, e.expires), LastSeen: now}
}

// commonAMR are the sign-in methods sessions start with; a cached session
// shares these rather than holding its own copy.
var commonAMR = []*[]string{{"pwd"}, {"pwd", "otp", "mfa"}, {"pwd", "hwk", "mfa"}, {"hwk", "user", "mfa"}}

func internAMR(amr []string) *[]string {
	for _, c := range commonAMR {
		if slices.Equal(*c, amr) {
			return c
		}
	}
	return &amr
}

const cacheShards = 64

// cache is a bounded, sharded map. When a shard is full an arbitrary entry
// is evicted: an evicted session is only re-read from the store.
type cache struct {
	perShard int
	shards   [cacheShards]shard
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
