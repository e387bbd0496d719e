package session

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
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

// entry is one cached session.
type entry struct {
	session storage.Session
	// version is the store's Version of the session when it was read.
	version uint64
	// lastSeen and persisted are unix nanoseconds: the last request, and
	// the last time that was handed to the store; confirmed is when the
	// store last vouched for the entry (read it, or its version held).
	lastSeen  atomic.Int64
	persisted atomic.Int64
	confirmed atomic.Int64
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
