package session

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Defaults for Settings.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultLifetime    = 12 * time.Hour
	// DefaultTouchInterval bounds idle-tracking writes to one per session
	// per minute, so a busy session never costs a disk write per request.
	DefaultTouchInterval = time.Minute
	// DefaultCacheSize bounds the in-memory session cache; past it, entries
	// are evicted, so cookies an attacker makes up cannot grow memory.
	DefaultCacheSize = 100_000
	// DefaultOutageGrace is how long a cached session is still served
	// while the store cannot be reached.
	DefaultOutageGrace = time.Minute
)

// Settings tunes a Manager. Zero values take the defaults.
type Settings struct {
	IdleTimeout   time.Duration
	Lifetime      time.Duration
	TouchInterval time.Duration
	CacheSize     int
	// OutageGrace is how long after the store last confirmed a cached
	// session it is still served when the store cannot be reached
	// (storage.ErrUnavailable). Within it, a logout or a change made
	// elsewhere goes unseen; after it, Lookup fails until the store is back.
	OutageGrace time.Duration
	// Now is the clock; tests inject one.
	Now func() time.Time
}

// Store is what sessions need from storage. CreateSession writes a new
// session only while its account still has the session's
// CredentialVersion and is not disabled (storage.ErrStale otherwise);
// TouchSessions moves the LastSeen of several sessions in one write,
// without moving their versions, as no cache depends on it, and never back
// (touches are written late, in any order); a session that is gone is
// skipped, never revived. UpdateSession of a session that is gone gets
// storage.ErrNotFound, so a late write never revives a revoked session;
// deleting a missing session is no error. AccountSessions lists the live
// sessions of an account, in no particular order. Version is the
// invalidation contract for session keys.
type Store interface {
	CreateSession(storage.Session) error
	Session(key string) (storage.Session, error)
	UpdateSession(key string, change func(*storage.Session)) error
	TouchSessions([]storage.Touch) error
	DeleteSession(key string) error
	AccountSessions(accountID string) ([]storage.Session, error)
	storage.Versions
}

// Manager creates, finds and ends sessions.
type Manager struct {
	store    Store
	codec    *Codec
	settings Settings
	cache    *cache
	touches  chan storage.Touch
	stop     chan struct{}
	stopped  sync.Once
	done     sync.WaitGroup
	// hits and misses count Lookup's use of the cache, for the metrics.
	hits, misses atomic.Uint64
}

// ErrNoSession means the cookie does not lead to a live session.
var ErrNoSession = errors.New("session: no valid session")

// NewManager starts a manager; Close stops its background writer.
func NewManager(st Store, codec *Codec, s Settings) *Manager {
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.Lifetime <= 0 {
		s.Lifetime = DefaultLifetime
	}
	if s.TouchInterval <= 0 {
		s.TouchInterval = DefaultTouchInterval
	}
	if s.CacheSize <= 0 {
		s.CacheSize = DefaultCacheSize
	}
	if s.OutageGrace <= 0 {
		s.OutageGrace = DefaultOutageGrace
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	m := &Manager{
		store:    st,
		codec:    codec,
		settings: s,
		cache:    newCache(s.CacheSize),
		touches:  make(chan storage.Touch, 1024),
		stop:     make(chan struct{}),
	}
	m.done.Add(1)
	go m.writeTouches()
	return m
}

// Close stops the background idle-tracking writer after it has written
// what it holds.
func (m *Manager) Close() {
	m.stopped.Do(func() { close(m.stop) })
	m.done.Wait()
}

// Codec is the cookie codec in use.
func (m *Manager) Codec() *Codec { return m.codec }

// Settings returns the effective settings.
func (m *Manager) Settings() Settings { return m.settings }

// Start is what a new session records besides its account.
type Start struct {
	ActiveOrg string
	// AMR are the ways the person proved who they are (storage.Session).
	AMR []string
	// UserAgent is cut to maxUserAgent bytes.
	UserAgent string
	Address   string
}

// maxUserAgent bounds the User-Agent a session keeps: enough to name the
// browser and system, not a place to store a hostile header.
const maxUserAgent = 200

// Create starts a new session for the account, as read before its
// password was checked, with a fresh ID, and returns the cookie value for
// it. storage.ErrStale means the account's credentials changed meanwhile.
func (m *Manager) Create(a storage.Account, start Start) (cookieValue string, s storage.Session, err error) {
	id := NewID()
	now := m.settings.Now()
	s = storage.Session{
		Key:               storageKey(id),
		AccountID:         a.ID,
		CreatedAt:         now,
		LastSeen:          now,
		ExpiresAt:         now.Add(m.settings.Lifetime),
		ActiveOrg:         start.ActiveOrg,
		CredentialVersion: a.CredentialVersion,
		AMR:               start.AMR,
		UserAgent:         truncateUTF8(start.UserAgent, maxUserAgent),
		Address:           start.Address,
	}
	if err := m.store.CreateSession(s); err != nil {
		return "", s, err
	}
	v, err := m.codec.Encode(id)
	return v, s, err
}

// CacheCounts are the lookups that found a current entry in the cache and
// those that read the store, since the Manager was made.
func (m *Manager) CacheCounts() (hits, misses uint64) { return m.hits.Load(), m.misses.Load() }

// Lookup returns the live session behind a raw cookie value, with what
// the guard and portal act on: not its user agent, address or start time
// (AccountSessions has those). It is the guard's hot path: a cache hit
// costs a map lookup and two clock checks; only a miss decodes the cookie
// and reads the store.
func (m *Manager) Lookup(raw string) (storage.Session, error) {
	if raw == "" {
		return storage.Session{}, ErrNoSession
	}
	now := m.settings.Now()
	key := digestCookie(raw)
	e := m.cache.get(key)
	// An entry whose session was written since it was read (an org
	// switch, a logout elsewhere) is read from the store again. A store
	// that cannot vouch for its versions (a replica that lost its feed of
	// the others' writes) moves them on every call, so while it cannot be
	// reached either, an entry is served for the outage grace after the
	// store last confirmed it.
	if e != nil && e.version == m.store.Version(e.key()) {
		m.hits.Add(1)
		// The grace is counted in seconds: a busy session need not write
		// its confirmation on every request.
		if n := now.UnixNano(); n-e.confirmed.Load() >= int64(time.Second) {
			e.confirmed.Store(n)
		}
	} else {
		m.misses.Add(1)
		fresh, err := m.load(raw, key, e)
		switch {
		case err == nil:
			e = fresh
		case e != nil && errors.Is(err, storage.ErrUnavailable) &&
			now.Sub(time.Unix(0, e.confirmed.Load())) < m.settings.OutageGrace:
		default:
			return storage.Session{}, err
		}
	}
	last := time.Unix(0, e.lastSeen.Load())
	if now.Sub(last) > m.settings.IdleTimeout || now.UnixNano() >= e.expires {
		m.cache.delete(key)
		_ = m.store.DeleteSession(e.key())
		return storage.Session{}, ErrNoSession
	}
	e.lastSeen.Store(now.UnixNano())
	if now.Sub(time.Unix(0, e.persisted.Load())) >= m.settings.TouchInterval {
		e.persisted.Store(now.UnixNano())
		select {
		case m.touches <- storage.Touch{Key: e.key(), At: now}:
		default: // writer is behind; the next request will try again
			e.persisted.Store(0)
		}
	}
	return e.session(now, &m.cache.amrs), nil
}

// load reads the session behind raw from the store into the cache. A stale
// entry's in-memory idle tracking is carried over, since the store's copy
// may be up to one TouchInterval behind.
func (m *Manager) load(raw string, key cookieDigest, stale *entry) (*entry, error) {
	id, err := m.codec.Decode(raw)
	if err != nil {
		return nil, ErrNoSession
	}
	sk := storageKey(id)
	version := m.store.Version(sk)
	s, err := m.store.Session(sk)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	e, err := newEntry(s, version, &m.cache.amrs)
	if err != nil {
		return nil, err
	}
	e.confirmed.Store(m.settings.Now().UnixNano())
	e.lastSeen.Store(s.LastSeen.UnixNano())
	e.persisted.Store(s.LastSeen.UnixNano())
	if stale != nil && stale.lastSeen.Load() > e.lastSeen.Load() {
		e.lastSeen.Store(stale.lastSeen.Load())
	}
	m.cache.put(key, e)
	return e, nil
}

// Revoke ends the session behind a raw cookie value, if any.
func (m *Manager) Revoke(raw string) error {
	m.cache.delete(digestCookie(raw))
	id, err := m.codec.Decode(raw)
	if err != nil {
		return nil
	}
	return m.store.DeleteSession(storageKey(id))
}

// SetActiveOrg records which organisation the session acts for.
func (m *Manager) SetActiveOrg(key, kvk string) error {
	return m.store.UpdateSession(key, func(s *storage.Session) { s.ActiveOrg = kvk })
}

// maxTouchBatch bounds the touches written in one store transaction.
const maxTouchBatch = 256

// writeTouches writes the queued touches, all that wait at once in one
// write: each write is synced to disk, and a server that has just started
// sees the first request of every active session at once. Written one by
// one, each waited for the previous one's sync.
func (m *Manager) writeTouches() {
	defer m.done.Done()
	batch := make([]storage.Touch, 0, maxTouchBatch)
	for {
		select {
		case t := <-m.touches:
			m.persistTouches(m.drainTouches(append(batch[:0], t)))
		case <-m.stop:
			for {
				if batch = m.drainTouches(batch[:0]); len(batch) == 0 {
					return
				}
				m.persistTouches(batch)
			}
		}
	}
}

// drainTouches adds to batch the touches that wait, up to maxTouchBatch.
func (m *Manager) drainTouches(batch []storage.Touch) []storage.Touch {
	for len(batch) < maxTouchBatch {
		select {
		case t := <-m.touches:
			batch = append(batch, t)
		default:
			return batch
		}
	}
	return batch
}

// persistTouches writes a batch in key order, so that two servers on one
// database lock the same sessions in the same order.
func (m *Manager) persistTouches(batch []storage.Touch) {
	slices.SortFunc(batch, func(a, b storage.Touch) int { return strings.Compare(a.Key, b.Key) })
	_ = m.store.TouchSessions(batch)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character,
// and drops bytes that are not UTF-8.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// storageKey derives the store key from a session ID, so the database
// holds no ID that a cookie could carry.
func storageKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
