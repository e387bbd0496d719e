package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// clock is a settable clock for Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// newSigner makes a Signer on ks with the clock c, or the real clock when
// c is nil.
func newSigner(t testing.TB, ks KeyStore, c *clock, o Options) *Signer {
	t.Helper()
	if c != nil {
		o.Now = c.Now
	}
	s, err := NewSigner(ks, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims() Claims {
	return Claims{
		Issuer: "https://account.example.nl", Audience: "declaratie", Subject: "acc-1",
		Email: "an@example.nl", Name: "Ån de Vries", OrgKvK: "12345678", OrgName: "Wij & Zo B.V.",
		Role: "admin", Apps: []string{"declaratie", "rie"}, Assurance: "eh3",
		AMR: []string{"pwd", "otp", "mfa"},
	}
}

// fetchJWKS gets the JWKS through the handler and parses its keys.
func fetchJWKS(t *testing.T, s *Signer) map[string]*ecdsa.PublicKey {
	t.Helper()
	rec := httptest.NewRecorder()
	s.JWKS().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("JWKS status %d", rec.Code)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	keys := make(map[string]*ecdsa.PublicKey)
	for _, k := range set.Keys {
		x, _ := base64.RawURLEncoding.DecodeString(k["x"])
		y, _ := base64.RawURLEncoding.DecodeString(k["y"])
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("JWKS key %q: %v", k["kid"], err)
		}
		keys[k["kid"]] = pub
	}
	return keys
}

// verify checks tok with golang-jwt against keys at now and returns the
// claims and the kid.
func verify(tok string, keys map[string]*ecdsa.PublicKey, now time.Time) (jwt.MapClaims, string, error) {
	var kid string
	mc := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, mc, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("declaratie"),
		jwt.WithIssuer("https://account.example.nl"), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }))
	return mc, kid, err
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	_, kid, err := verify(tok, nil, time.Now())
	if kid == "" {
		t.Fatalf("no kid in token: %v", err)
	}
	return kid
}

func TestTokenCarriesTheClaims(t *testing.T) {
	c := newClock()
	s := newSigner(t, openStore(t, t.TempDir()), c, Options{})
	tok, err := s.Token(CacheKey{"sess", "declaratie"}, claims())
	if err != nil {
		t.Fatal(err)
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]string
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != s.keys.Load().stored.Current.ID {
		t.Errorf("header = %v", h)
	}
	mc, _, err := verify(tok, fetchJWKS(t, s), c.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := float64(c.Now().Unix())
	want := map[string]any{
		"iss": "https://account.example.nl", "aud": "declaratie", "sub": "acc-1",
		"email": "an@example.nl", "name": "Ån de Vries", "org_kvk": "12345678",
		"org_name": "Wij & Zo B.V.", "role": "admin", "apps": []any{"declaratie", "rie"},
		"assurance": "eh3", "amr": []any{"pwd", "otp", "mfa"}, "iat": now, "nbf": now, "exp": now + 300,
	}
	for k, v := range want {
		if fmt.Sprint(mc[k]) != fmt.Sprint(v) {
			t.Errorf("claim %s = %v, want %v", k, mc[k], v)
		}
	}
	if jti, _ := mc["jti"].(string); len(jti) != 22 {
		t.Errorf("jti = %q, want 128 random bits", jti)
	}
	if len(mc) != len(want)+1 {
		t.Errorf("claims = %v, want exactly %d", mc, len(want)+1)
	}
}

func TestTokenWithoutAppsHasEmptyList(t *testing.T) {
	c := newClock()
	s := newSigner(t, openStore(t, t.TempDir()), c, Options{})
	cl := claims()
	cl.Apps = nil
	tok, err := s.Token(CacheKey{"k", "app"}, cl)
	if err != nil {
		t.Fatal(err)
	}
	mc, _, err := verify(tok, fetchJWKS(t, s), c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if apps, ok := mc["apps"].([]any); !ok || len(apps) != 0 {
		t.Errorf("apps = %#v, want []", mc["apps"])
	}
}

func TestTokenRequiresIssuerAudienceSubject(t *testing.T) {
	s := newSigner(t, openStore(t, t.TempDir()), newClock(), Options{})
	for name, blank := range map[string]func(*Claims){
		"no issuer":   func(c *Claims) { c.Issuer = "" },
		"no audience": func(c *Claims) { c.Audience = "" },
		"no subject":  func(c *Claims) { c.Subject = "" },
	} {
		t.Run(name, func(t *testing.T) {
			c := claims()
			blank(&c)
			if _, err := s.Token(CacheKey{"k", "app"}, c); err == nil {
				t.Error("signed a token without it")
			}
		})
	}
}

func TestTokenReusedUntilMargin(t *testing.T) {
	c := newClock()
	s := newSigner(t, openStore(t, t.TempDir()), c, Options{}) // TTL 5m, margin 1m
	first, err := s.Token(CacheKey{"sess", "declaratie"}, claims())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, time.Second, 2 * time.Minute, 4*time.Minute - time.Nanosecond} {
		c.ns.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).Add(d).UnixNano())
		got, err := s.Token(CacheKey{"sess", "declaratie"}, claims())
		if err != nil {
			t.Fatal(err)
		}
		if got != first {
			t.Errorf("after %v: a new token, want the cached one", d)
		}
	}
	c.ns.Store(time.Date(2026, 3, 1, 9, 4, 0, 0, time.UTC).UnixNano())
	second, err := s.Token(CacheKey{"sess", "declaratie"}, claims())
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("within the margin of expiry: the old token was handed out")
	}
	keys := fetchJWKS(t, s)
	m1, _, err1 := verify(first, keys, c.Now().Add(-4*time.Minute))
	m2, _, err2 := verify(second, keys, c.Now())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if m2["jti"] == m1["jti"] || m2["iat"].(float64)-m1["iat"].(float64) != 240 {
		t.Errorf("second token: jti %v iat %v, first: jti %v iat %v", m2["jti"], m2["iat"], m1["jti"], m1["iat"])
	}
	if again, _ := s.Token(CacheKey{"sess", "declaratie"}, claims()); again != second {
		t.Error("the fresh token was not cached")
	}
}

func TestTokenNotReusedWhenFactsChange(t *testing.T) {
	s := newSigner(t, openStore(t, t.TempDir()), newClock(), Options{})
	cl := claims()
	first, _ := s.Token(CacheKey{"k", "app"}, cl)
	for name, change := range map[string]func(*Claims){
		"role":      func(c *Claims) { c.Role = "member" },
		"apps":      func(c *Claims) { c.Apps = []string{"declaratie"} },
		"audience":  func(c *Claims) { c.Audience = "rie" },
		"org":       func(c *Claims) { c.OrgKvK = "87654321" },
		"assurance": func(c *Claims) { c.Assurance = "invited" },
		"amr":       func(c *Claims) { c.AMR = []string{"pwd"} },
	} {
		t.Run(name, func(t *testing.T) {
			c := claims()
			change(&c)
			if got, _ := s.Token(CacheKey{"k", "app"}, c); got == first {
				t.Error("token with the old facts reused")
			}
		})
	}
	// The cache holds its own copy of Apps.
	c := claims()
	tok, _ := s.Token(CacheKey{"k2", "app"}, c)
	c.Apps[0] = "website"
	if got, _ := s.Token(CacheKey{"k2", "app"}, c); got == tok {
		t.Error("changing the caller's Apps slice changed the cached facts")
	}
}

func TestTokenReuseDoesNotAllocate(t *testing.T) {
	s := newSigner(t, openStore(t, t.TempDir()), newClock(), Options{})
	c := claims()
	if _, err := s.Token(CacheKey{"sess", "declaratie"}, c); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = s.Token(CacheKey{"sess", "declaratie"}, c) }); n != 0 {
		t.Errorf("cache hit: %v allocations, want 0", n)
	}
}

func cached(s *Signer) int {
	n := 0
	for i := range s.cache.shards {
		n += len(s.cache.shards[i].m)
	}
	return n
}

func TestCacheIsBounded(t *testing.T) {
	s := newSigner(t, openStore(t, t.TempDir()), newClock(), Options{MaxCached: 256})
	for i := range 5000 {
		if _, err := s.Token(CacheKey{fmt.Sprintf("made-up-%d", i), "app"}, claims()); err != nil {
			t.Fatal(err)
		}
	}
	if n := cached(s); n > 256 {
		t.Errorf("%d tokens cached, want at most 256", n)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		o          Options
		ttl, reuse time.Duration
		err        bool
	}{
		{name: "defaults", ttl: 5 * time.Minute, reuse: time.Minute},
		{name: "shorter TTL", o: Options{TTL: 2 * time.Minute}, ttl: 2 * time.Minute, reuse: 24 * time.Second},
		{name: "TTL over five minutes", o: Options{TTL: 5*time.Minute + time.Second}, err: true},
		{name: "TTL of an hour", o: Options{TTL: time.Hour}, err: true},
		{name: "negative TTL", o: Options{TTL: -time.Minute}, err: true},
		{name: "margin as long as TTL", o: Options{TTL: time.Minute, ReuseMargin: time.Minute}, err: true},
		{name: "negative margin", o: Options{ReuseMargin: -time.Second}, err: true},
		{name: "rotation under an hour", o: Options{RotateEvery: 59 * time.Minute}, err: true},
		{name: "negative cache size", o: Options{MaxCached: -1}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSigner(openStore(t, t.TempDir()), tc.o)
			if tc.err {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.ttl != tc.ttl || s.margin != tc.reuse || s.rotateEvery != 30*24*time.Hour {
				t.Errorf("ttl %v margin %v rotate %v", s.ttl, s.margin, s.rotateEvery)
			}
		})
	}
}

func TestTokenLifetimeIsAtMostFiveMinutes(t *testing.T) {
	c := newClock()
	s := newSigner(t, openStore(t, t.TempDir()), c, Options{})
	tok, _ := s.Token(CacheKey{"k", "app"}, claims())
	keys := fetchJWKS(t, s)
	if _, _, err := verify(tok, keys, c.Now().Add(5*time.Minute-time.Second)); err != nil {
		t.Errorf("just before five minutes: %v", err)
	}
	if _, _, err := verify(tok, keys, c.Now().Add(5*time.Minute)); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("at five minutes: %v, want expired", err)
	}
}

func TestRotation(t *testing.T) {
	c := newClock()
	s := newSigner(t, openStore(t, t.TempDir()), c, Options{RotateEvery: 24 * time.Hour})
	k1 := s.keys.Load().stored.Current.ID
	k2 := s.keys.Load().stored.Next.ID
	old, _ := s.Token(CacheKey{"a", "app"}, claims())
	if kidOf(t, old) != k1 {
		t.Fatal("the first token is not signed by the current key")
	}
	if keys := fetchJWKS(t, s); len(keys) != 2 || keys[k1] == nil || keys[k2] == nil {
		t.Fatalf("before rotation JWKS has %v, want current and next", slices.Collect(maps.Keys(keys)))
	}

	c.Advance(24*time.Hour - 3*time.Minute)
	if tok, _ := s.Token(CacheKey{"b", "app"}, claims()); kidOf(t, tok) != k1 {
		t.Error("rotated before it was due")
	}
	c.Advance(3 * time.Minute)
	issued := c.Now()
	oldAtRotation, _ := s.Token(CacheKey{"c", "app"}, claims())
	if kidOf(t, oldAtRotation) != k2 {
		t.Fatalf("after RotateEvery the token is signed by %s, want the published next key %s", kidOf(t, oldAtRotation), k2)
	}
	k3 := s.keys.Load().stored.Next.ID
	keys := fetchJWKS(t, s)
	if len(keys) != 3 || keys[k1] == nil || keys[k2] == nil || keys[k3] == nil {
		t.Fatalf("after rotation JWKS has %v, want next, current and previous", slices.Collect(maps.Keys(keys)))
	}
	// A token cached under the old key is still handed out and verifies.
	if tok, _ := s.Token(CacheKey{"b", "app"}, claims()); kidOf(t, tok) != k1 {
		t.Error("the cached token was not reused across the rotation")
	} else if _, _, err := verify(tok, keys, c.Now()); err != nil {
		t.Errorf("token of the previous key after rotation: %v", err)
	}

	c.Advance(24 * time.Hour)
	if tok, _ := s.Token(CacheKey{"d", "app"}, claims()); kidOf(t, tok) != k3 {
		t.Error("second rotation did not promote the next key")
	}
	keys = fetchJWKS(t, s)
	if keys[k1] != nil || keys[k2] == nil || len(keys) != 3 {
		t.Errorf("after two rotations JWKS has %v, want the oldest key gone", slices.Collect(maps.Keys(keys)))
	}
	if _, _, err := verify(oldAtRotation, keys, issued); err != nil {
		t.Errorf("token of the previous key: %v", err)
	}
}

func TestRotationDueAtStartup(t *testing.T) {
	c := newClock()
	st := openStore(t, t.TempDir())
	s1 := newSigner(t, st, c, Options{RotateEvery: time.Hour})
	next := s1.keys.Load().stored.Next.ID
	c.Advance(90 * 24 * time.Hour)
	s2 := newSigner(t, st, c, Options{RotateEvery: time.Hour})
	if got := s2.keys.Load().stored.Current.ID; got != next {
		t.Errorf("a long-overdue set rotated to %s, want exactly one rotation to %s", got, next)
	}
}

func TestRotateNow(t *testing.T) {
	c := newClock()
	s := newSigner(t, openStore(t, t.TempDir()), c, Options{})
	old, _ := s.Token(CacheKey{"a", "app"}, claims())
	k1, k2 := s.keys.Load().stored.Current.ID, s.keys.Load().stored.Next.ID
	if err := s.Rotate(); err != nil {
		t.Fatal(err)
	}
	if tok, _ := s.Token(CacheKey{"b", "app"}, claims()); kidOf(t, tok) != k2 {
		t.Error("Rotate did not promote the next key")
	}
	if _, _, err := verify(old, fetchJWKS(t, s), c.Now()); err != nil || kidOf(t, old) != k1 {
		t.Errorf("token of the previous key after Rotate: %v", err)
	}
}

func TestKeysPersist(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s1 := newSigner(t, st, c, Options{})
	tok, _ := s1.Token(CacheKey{"a", "app"}, claims())
	jwks1 := s1.keys.Load().jwks

	s2 := newSigner(t, st, c, Options{})
	if string(s2.keys.Load().jwks) != string(jwks1) {
		t.Error("a second Signer on the same store publishes other keys")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	s3 := newSigner(t, openStore(t, dir), c, Options{})
	if string(s3.keys.Load().jwks) != string(jwks1) {
		t.Error("keys changed across reopening the store")
	}
	if _, _, err := verify(tok, fetchJWKS(t, s3), c.Now()); err != nil {
		t.Errorf("token of the first Signer against the reopened one: %v", err)
	}
	tok3, _ := s3.Token(CacheKey{"a", "app"}, claims())
	if _, _, err := verify(tok3, fetchJWKS(t, s1), c.Now()); err != nil {
		t.Errorf("token of the reopened Signer against the first: %v", err)
	}
}

func TestSignersOnOneStoreRotateOnce(t *testing.T) {
	c := newClock()
	st := openStore(t, t.TempDir())
	s1 := newSigner(t, st, c, Options{RotateEvery: time.Hour})
	s2 := newSigner(t, st, c, Options{RotateEvery: time.Hour})
	c.Advance(time.Hour)
	a, _ := s1.Token(CacheKey{"a", "app"}, claims())
	c.Advance(time.Second)
	b, _ := s2.Token(CacheKey{"b", "app"}, claims())
	if kidOf(t, a) != kidOf(t, b) {
		t.Error("the two Signers sign with different keys after a rotation")
	}
	if string(s1.keys.Load().jwks) != string(s2.keys.Load().jwks) {
		t.Error("the second Signer rotated again instead of adopting the stored set")
	}
}

// failingStore fails SetSecret while fail is set.
type failingStore struct {
	KeyStore
	fail atomic.Bool
}

func (f *failingStore) SetSecret(name string, value []byte) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.KeyStore.SetSecret(name, value)
}

func TestFailedRotationKeepsSigning(t *testing.T) {
	c := newClock()
	fs := &failingStore{KeyStore: openStore(t, t.TempDir())}
	var reported atomic.Int32
	s := newSigner(t, fs, c, Options{RotateEvery: time.Hour, OnError: func(error) { reported.Add(1) }})
	k1 := s.keys.Load().stored.Current.ID
	fs.fail.Store(true)
	c.Advance(time.Hour)
	for i := range 10 {
		tok, err := s.Token(CacheKey{fmt.Sprint("k", i), "app"}, claims())
		if err != nil {
			t.Fatal(err)
		}
		if kidOf(t, tok) != k1 {
			t.Fatal("signed with a key that was never saved")
		}
	}
	if reported.Load() != 1 {
		t.Errorf("OnError called %d times, want once (retry after a minute)", reported.Load())
	}
	fs.fail.Store(false)
	c.Advance(time.Minute)
	if tok, _ := s.Token(CacheKey{"after", "app"}, claims()); kidOf(t, tok) == k1 {
		t.Error("rotation not retried a minute later")
	}
}

func TestCorruptKeySetIsRefused(t *testing.T) {
	st := openStore(t, t.TempDir())
	if err := st.SetSecret(SecretName, []byte(`{"current":{"kid":"x","alg":"ES256","d":"AAAA"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(st, Options{}); err == nil {
		t.Error("a corrupt key set was accepted")
	}
}

func TestJWKSHandler(t *testing.T) {
	s := newSigner(t, openStore(t, t.TempDir()), newClock(), Options{})
	rec := httptest.NewRecorder()
	s.JWKS().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || len(k) != 7 {
			t.Errorf("key %v", k)
		}
		// RFC 7638: SHA-256 of the required members, sorted, no white space.
		canon, _ := json.Marshal(map[string]string{"kty": k["kty"], "crv": k["crv"], "x": k["x"], "y": k["y"]})
		sum := sha256.Sum256(canon)
		if kid := base64.RawURLEncoding.EncodeToString(sum[:]); k["kid"] != kid {
			t.Errorf("kid %s, want thumbprint %s", k["kid"], kid)
		}
	}
	if pub := s.PublicKeys(); len(pub) != len(set.Keys) {
		t.Errorf("PublicKeys has %d keys, JWKS %d", len(pub), len(set.Keys))
	}

	rec = httptest.NewRecorder()
	s.JWKS().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", rec.Code)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newClock()
	s := newSigner(t, openStore(t, t.TempDir()), c, Options{RotateEvery: time.Hour, MaxCached: 64})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				if i%50 == 0 {
					c.Advance(10 * time.Minute)
				}
				if g == 0 && i == 150 {
					if err := s.Rotate(); err != nil && !errors.Is(err, ErrNextKeyTooNew) {
						t.Error(err)
					}
				}
				if _, err := s.Token(CacheKey{fmt.Sprint("k", i%100), "app"}, claims()); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					s.JWKS().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
				}
			}
		})
	}
	wg.Wait()
}
