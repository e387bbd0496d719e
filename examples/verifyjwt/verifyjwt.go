// Package verifyjwt shows how an application behind wijgate verifies the
// X-Wij-Assertion header with a standard Go JWT library
// (github.com/golang-jwt/jwt/v5). The token proves that the identity
// headers came from wijgate even if the proxy was bypassed: check it, then
// trust its claims rather than the plain headers.
package verifyjwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the facts wijgate asserts about the person behind a request.
// Subject (sub) is the stable account id; Audience (aud) is the app.
type Claims struct {
	Email     string   `json:"email"`
	Name      string   `json:"name"`
	OrgKvK    string   `json:"org_kvk"`
	OrgName   string   `json:"org_name"`
	Role      string   `json:"role"` // "admin" or "member"
	Apps      []string `json:"apps"`
	Assurance string   `json:"assurance"` // e.g. "eh3"
	jwt.RegisteredClaims
}

// Leeway is the clock difference tolerated between wijgate and the app.
const Leeway = 30 * time.Second

// Keys finds the public key a token names in its kid header.
type Keys interface {
	Key(kid string) (*ecdsa.PublicKey, error)
}

// Verify checks the signature (ES256 only, key chosen by kid), the issuer,
// the audience, and the times (exp required; nbf and iat not in the
// future), all at now, and returns the claims.
func Verify(tokenString string, keys Keys, issuer, audience string, now time.Time) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(tokenString, &c,
		func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			return keys.Key(kid)
		},
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// JWKS is a parsed JSON Web Key Set: P-256 public keys by kid.
type JWKS map[string]*ecdsa.PublicKey

// Key returns the key with this kid.
func (k JWKS) Key(kid string) (*ecdsa.PublicKey, error) {
	if pub, ok := k[kid]; ok {
		return pub, nil
	}
	return nil, fmt.Errorf("verifyjwt: unknown key id %q", kid)
}

// ParseJWKS reads the ES256 signing keys of a JWKS document; keys of other
// types are skipped.
func ParseJWKS(b []byte) (JWKS, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			Kid string `json:"kid"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("verifyjwt: reading JWKS: %w", err)
	}
	keys := JWKS{}
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || (k.Use != "" && k.Use != "sig") || k.Kid == "" {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("verifyjwt: key %q: bad coordinates", k.Kid)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("verifyjwt: key %q: %w", k.Kid, err)
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("verifyjwt: no ES256 keys in JWKS")
	}
	return keys, nil
}

// RemoteJWKS fetches a JWKS from a URL (wijgate serves it at
// /.well-known/jwks.json) and keeps it for five minutes. An unknown kid
// fetches it again, at most every 30 seconds; when a fetch fails the keys
// already held are used.
type RemoteJWKS struct {
	url    string
	client *http.Client

	mu      sync.Mutex
	keys    JWKS
	fetched time.Time
}

// NewRemoteJWKS returns keys fetched from url with a five-second timeout.
func NewRemoteJWKS(url string) *RemoteJWKS {
	return &RemoteJWKS{url: url, client: &http.Client{Timeout: 5 * time.Second}}
}

// Key returns the key with this kid, fetching the JWKS when needed.
func (r *RemoteJWKS) Key(kid string) (*ecdsa.PublicKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	age := time.Since(r.fetched)
	if _, known := r.keys[kid]; (known && age > 5*time.Minute) || (!known && age > 30*time.Second) {
		keys, err := r.fetch()
		if err != nil && r.keys == nil {
			return nil, err
		}
		if err == nil {
			r.keys, r.fetched = keys, time.Now()
		}
	}
	return r.keys.Key(kid)
}

func (r *RemoteJWKS) fetch() (JWKS, error) {
	resp, err := r.client.Get(r.url)
	if err != nil {
		return nil, fmt.Errorf("verifyjwt: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verifyjwt: fetching JWKS: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("verifyjwt: fetching JWKS: %w", err)
	}
	return ParseJWKS(b)
}
