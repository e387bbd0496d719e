// Package token signs the identity token wijgate hands an application in
// the X-Wij-Assertion header: a compact JWS (ES256) whose claims repeat the
// identity headers, with aud set to the application, and publishes the
// public keys as a JWKS. Signing keys live in the store, rotate on a
// schedule, and are published a full rotation period before they sign and
// a full period after they stop.
//
// Signing costs tens of microseconds, so tokens are reused per cache key
// until shortly before they expire; a reuse is a map lookup.
package token

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MaxTTL is the longest lifetime a token may have.
const MaxTTL = 5 * time.Minute

// retryEvery is how long a Signer waits before it reads the key set
// again after the store failed.
const retryEvery = time.Minute

// minRotateEvery keeps a retired key published far longer than any token
// it signed can live, even from a Signer that notices the rotation late.
const minRotateEvery = time.Hour

// Claims are the facts a token asserts. Token sets IssuedAt, ExpiresAt and
// ID itself; values passed in are ignored. In the token they appear as iss,
// aud, sub, email, name, org_kvk, org_name, role, apps, assurance, amr,
// iat, exp, nbf (equal to iat) and jti.
type Claims struct {
	Issuer    string
	Audience  string
	Subject   string
	Email     string
	Name      string
	OrgKvK    string
	OrgName   string
	Role      string
	Apps      []string
	Assurance string
	// AMR is how the session's person proved who they are (RFC 8176):
	// ["pwd"], ["pwd","otp","mfa"], ["pwd","hwk","mfa"] or
	// ["hwk","user","mfa"].
	AMR       []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	ID        string
}

// sameFacts reports whether c and o assert the same facts, ignoring the
// times and ID a token adds.
func (c *Claims) sameFacts(o *Claims) bool {
	return c.Issuer == o.Issuer && c.Audience == o.Audience && c.Subject == o.Subject &&
		c.Email == o.Email && c.Name == o.Name && c.OrgKvK == o.OrgKvK &&
		c.OrgName == o.OrgName && c.Role == o.Role && c.Assurance == o.Assurance &&
		slices.Equal(c.Apps, o.Apps) && slices.Equal(c.AMR, o.AMR)
}

// wireClaims is the JSON payload of a token.
type wireClaims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	Email     string   `json:"email,omitempty"`
	Name      string   `json:"name,omitempty"`
	OrgKvK    string   `json:"org_kvk,omitempty"`
	OrgName   string   `json:"org_name,omitempty"`
	Role      string   `json:"role,omitempty"`
	Apps      []string `json:"apps"`
	Assurance string   `json:"assurance,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	IssuedAt  int64    `json:"iat"`
	ExpiresAt int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
}

// KeyStore persists the key set; every storage engine satisfies it.
type KeyStore interface {
	// Secret returns the value stored under name, storing generate's
	// result first when there is none; concurrent first calls agree.
	Secret(name string, generate func() ([]byte, error)) ([]byte, error)
	// SetSecret replaces the value stored under name.
	SetSecret(name string, value []byte) error
}

// Options tune a Signer. The zero value gives the defaults.
type Options struct {
	// TTL is a token's lifetime: default and maximum MaxTTL.
	TTL time.Duration
	// ReuseMargin: a cached token is handed out again until less than
	// this remains of its lifetime. Default TTL/5 (one minute for five);
	// it must be shorter than TTL.
	ReuseMargin time.Duration
	// RotateEvery is how long a key signs before the next takes over.
	// Default 30 days, at least one hour.
	RotateEvery time.Duration
	// MaxCached bounds the number of cached tokens. Default 100 000. The
	// cache has 64 shards, so the bound is rounded down to a multiple of
	// 64 (at least 64).
	MaxCached int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnError hears about a failed read or rotation (the store could not
	// be read or the rotated set not be saved). Signing carries on with
	// the key in memory, which stays published, and the read is tried
	// again a minute later.
	OnError func(error)
}

// Signer issues tokens and publishes its public keys. It is safe for
// concurrent use.
type Signer struct {
	ks          KeyStore
	ttl         time.Duration
	margin      time.Duration
	rotateEvery time.Duration
	now         func() time.Time
	onError     func(error)

	keys atomic.Pointer[keySet]
	// nextCheck is when the key set is next read from the store (to see
	// other Signers' rotations, because a rotation falls due, or to try a
	// failed read again), in unix nanoseconds.
	nextCheck atomic.Int64
	// readAt is when the key set in memory was read, in unix nanoseconds;
	// readFailed is set while the store does not answer.
	readAt     atomic.Int64
	readFailed atomic.Bool
	refreshMu  sync.Mutex // serialises reading and rotating the stored set

	cache tokenCache
}

// NewSigner loads the key set from ks, creating it on first use and
// rotating it when a rotation is due.
func NewSigner(ks KeyStore, o Options) (*Signer, error) {
	if ks == nil {
		return nil, errors.New("token: no key store")
	}
	if o.TTL == 0 {
		o.TTL = MaxTTL
	}
	if o.TTL < 0 || o.TTL > MaxTTL {
		return nil, fmt.Errorf("token: TTL %v is outside (0, %v]", o.TTL, MaxTTL)
	}
	if o.ReuseMargin == 0 {
		o.ReuseMargin = o.TTL / 5
	}
	if o.ReuseMargin < 0 || o.ReuseMargin >= o.TTL {
		return nil, fmt.Errorf("token: reuse margin %v must be positive and shorter than the TTL %v", o.ReuseMargin, o.TTL)
	}
	if o.RotateEvery == 0 {
		o.RotateEvery = 30 * 24 * time.Hour
	}
	if o.RotateEvery < minRotateEvery {
		return nil, fmt.Errorf("token: rotation period %v is shorter than %v", o.RotateEvery, minRotateEvery)
	}
	if o.MaxCached == 0 {
		o.MaxCached = 100_000
	}
	if o.MaxCached < 0 {
		return nil, fmt.Errorf("token: MaxCached %d is negative", o.MaxCached)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Signer{
		ks:          ks,
		ttl:         o.TTL,
		margin:      o.ReuseMargin,
		rotateEvery: o.RotateEvery,
		now:         o.Now,
		onError:     o.OnError,
	}
	s.cache.init(o.MaxCached)
	if err := s.refresh(s.now(), false); err != nil {
		return nil, err
	}
	return s, nil
}

// Token returns a signed token for c, reusing the one last issued under
// key while it asserts the same facts and has more than the reuse margin
// left. The facts are compared as well, so a change of role or apps is
// never served from the cache.
func (s *Signer) Token(key CacheKey, c Claims) (string, error) {
	now := s.now()
	sh := s.cache.shard(key)
	sh.mu.RLock()
	e := sh.m[key]
	sh.mu.RUnlock()
	if e != nil && now.Before(e.renewAt) && e.claims.sameFacts(&c) {
		return e.token, nil
	}

	if c.Issuer == "" || c.Audience == "" || c.Subject == "" {
		return "", errors.New("token: issuer, audience and subject are required")
	}
	s.maybeRefresh(now)
	exp := now.Add(s.ttl)
	tok, err := s.sign(&c, now, exp)
	if err != nil {
		return "", err
	}
	c.Apps = slices.Clone(c.Apps)
	c.AMR = slices.Clone(c.AMR)
	sh.put(key, &cacheEntry{token: tok, renewAt: exp.Add(-s.margin), claims: c}, s.cache.perShard)
	return tok, nil
}

// sign makes a compact JWS of c with the current key.
func (s *Signer) sign(c *Claims, iat, exp time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	apps := c.Apps
	if apps == nil {
		apps = []string{}
	}
	payload, err := json.Marshal(wireClaims{
		Issuer: c.Issuer, Audience: c.Audience, Subject: c.Subject,
		Email: c.Email, Name: c.Name, OrgKvK: c.OrgKvK, OrgName: c.OrgName,
		Role: c.Role, Apps: apps, Assurance: c.Assurance, AMR: c.AMR,
		IssuedAt: iat.Unix(), ExpiresAt: exp.Unix(), NotBefore: iat.Unix(),
		ID: b64.EncodeToString(jti[:]),
	})
	if err != nil {
		return "", err
	}
	key := s.keys.Load().current
	enc := b64.EncodedLen(len(payload))
	buf := make([]byte, 0, len(key.header)+1+enc+1+b64.EncodedLen(64))
	buf = append(buf, key.header...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	r, sv, err := ecdsa.Sign(rand.Reader, key.priv, digest[:])
	if err != nil {
		return "", err
	}
	// JWS carries the ECDSA signature as R || S, each 32 bytes.
	var sig [64]byte
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig[:])
	return string(buf), nil
}

var b64 = base64.RawURLEncoding

// CacheKey names the token a session last got for an application. Two
// strings rather than one joined key, so a request that reuses a token
// allocates nothing.
type CacheKey struct {
	Session string
	App     string
}

// cacheShards spreads the token cache over locks so that concurrent
// requests rarely wait for one another.
const cacheShards = 64

// tokenCache is a bounded, sharded map from cache key to the last token.
// When a shard is full an arbitrary entry is evicted: it is only signed
// again.
type tokenCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[CacheKey]*cacheEntry
}

// cacheEntry is immutable once stored.
type cacheEntry struct {
	token   string
	renewAt time.Time
	claims  Claims
}

func (c *tokenCache) init(size int) {
	c.seed = maphash.MakeSeed()
	c.perShard = max(1, size/cacheShards)
	for i := range c.shards {
		c.shards[i].m = make(map[CacheKey]*cacheEntry)
	}
}

func (c *tokenCache) shard(key CacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, key.Session)%cacheShards]
}

func (sh *cacheShard) put(key CacheKey, e *cacheEntry, limit int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[key]; !ok && len(sh.m) >= limit {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[key] = e
}
