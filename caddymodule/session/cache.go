package session

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// entry is one cached session, keyed by the raw cookie value.
type entry struct {
	session store.Session
	epoch   uint64
	// lastSeen and persisted are unix nanoseconds: the last request, and
	// the last time that was handed to the store.
	lastSeen  atomic.Int64
	persisted atomic.Int64
}

const cacheShards = 64

// cache is a bounded, sharded map. When a shard is full an arbitrary entry
// is evicted: an evicted session is only re-read from the store.
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*entry
}

func newCache(size int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*entry)
	}
	return c
}

func (c *cache) shard(key string) *shard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

func (c *cache) get(key string) *entry {
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	return e
}

func (c *cache) put(key string, e *entry) {
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

func (c *cache) delete(key string) {
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
