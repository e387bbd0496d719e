package verifyjwt_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/caddymodule/token"
	"github.com/wijtechniek/wijgate/examples/verifyjwt"
)

const (
	issuer   = "https://account.example.nl"
	audience = "declaratie"
)

// gateway is a Signer on a real store, its JWKS served over HTTP.
type gateway struct {
	now     time.Time
	st      *store.Store
	signer  *token.Signer
	jwksURL string
	fetches atomic.Int32
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{now: time.Now().Truncate(time.Second)}
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	g.st = st
	g.signer, err = token.NewSigner(st, token.Options{Now: func() time.Time { return g.now }})
	if err != nil {
		t.Fatal(err)
	}
	jwks := g.signer.JWKS()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.fetches.Add(1)
		jwks.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.jwksURL = srv.URL + "/.well-known/jwks.json"
	return g
}

func facts() token.Claims {
	return token.Claims{
		Issuer: issuer, Audience: audience, Subject: "acc-42",
		Email: "piet@example.nl", Name: "Piet Jansen", OrgKvK: "12345678", OrgName: "Jansen Installatietechniek",
		Role: "member", Apps: []string{"declaratie"}, Assurance: "eh3",
	}
}

func (g *gateway) token(t *testing.T, change func(*token.Claims)) string {
	t.Helper()
	c := facts()
	if change != nil {
		change(&c)
	}
	tok, err := g.signer.Token(token.CacheKey{Session: c.Subject + "|" + c.Issuer, App: c.Audience}, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// currentKey reads wijgate's signing key from the store, so that tests can
// sign claims wijgate itself never would.
func (g *gateway) currentKey(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	raw, err := g.st.Secret(token.SecretName, nil)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Current struct {
			Kid string `json:"kid"`
			D   []byte `json:"d"`
		} `json:"current"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), set.Current.D)
	if err != nil {
		t.Fatal(err)
	}
	return set.Current.Kid, priv
}

func (g *gateway) claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": "acc-42", "role": "admin",
		"iat": g.now.Unix(), "nbf": g.now.Unix(), "exp": g.now.Add(5 * time.Minute).Unix(),
	}
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, claims jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	g := newGateway(t)
	kid, priv := g.currentKey(t)
	pubPoint, _ := priv.PublicKey.Bytes()
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := g.token(t, nil)

	noExp := g.claims()
	delete(noExp, "exp")
	tampered := func() string {
		parts := strings.Split(good, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), `"role":"member"`, `"role":"admin"`, 1))
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	}()

	noNbfFutureIat := g.claims()
	delete(noNbfFutureIat, "nbf")
	noNbfFutureIat["iat"] = g.now.Add(time.Minute).Unix()

	for _, tc := range []struct {
		name  string
		token string
		at    time.Duration // when the app verifies, from issue time
		want  error         // nil: accepted
	}{
		{name: "token from wijgate", token: good},
		{name: "token from wijgate, app clock behind within leeway", token: good, at: -verifyjwt.Leeway + time.Second},
		{name: "token from wijgate, just before expiry plus leeway", token: good, at: 5*time.Minute + verifyjwt.Leeway - time.Second},
		{name: "claims signed by wijgate's key", token: sign(t, jwt.SigningMethodES256, kid, g.claims(), priv)},
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, kid, g.claims(), jwt.UnsafeAllowNoneSignatureType), want: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the public point", token: sign(t, jwt.SigningMethodHS256, kid, g.claims(), pubPoint), want: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the public key PEM", token: sign(t, jwt.SigningMethodHS256, kid, g.claims(), pubPEM), want: jwt.ErrTokenSignatureInvalid},
		{name: "other key with wijgate's kid", token: sign(t, jwt.SigningMethodES256, kid, g.claims(), otherKey), want: jwt.ErrTokenSignatureInvalid},
		{name: "other key with an unknown kid", token: sign(t, jwt.SigningMethodES256, "attacker", g.claims(), otherKey), want: jwt.ErrTokenUnverifiable},
		{name: "no kid", token: sign(t, jwt.SigningMethodES256, "", g.claims(), priv), want: jwt.ErrTokenUnverifiable},
		{name: "wrong audience", token: g.token(t, func(c *token.Claims) { c.Audience = "website" }), want: jwt.ErrTokenInvalidAudience},
		{name: "wrong issuer", token: g.token(t, func(c *token.Claims) { c.Issuer = "https://account.example.com" }), want: jwt.ErrTokenInvalidIssuer},
		{name: "expired", token: good, at: 5*time.Minute + verifyjwt.Leeway, want: jwt.ErrTokenExpired},
		{name: "nbf in the future beyond leeway", token: good, at: -verifyjwt.Leeway - time.Second, want: jwt.ErrTokenNotValidYet},
		{name: "iat in the future beyond leeway, no nbf", token: sign(t, jwt.SigningMethodES256, kid, noNbfFutureIat, priv), want: jwt.ErrTokenUsedBeforeIssued},
		{name: "no exp", token: sign(t, jwt.SigningMethodES256, kid, noExp, priv), want: jwt.ErrTokenRequiredClaimMissing},
		{name: "tampered payload", token: tampered, want: jwt.ErrTokenSignatureInvalid},
		{name: "signature cut off", token: good[:strings.LastIndexByte(good, '.')+1], want: jwt.ErrTokenSignatureInvalid},
		{name: "not a token", token: "Bearer x", want: jwt.ErrTokenMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := verifyjwt.Verify(tc.token, verifyjwt.NewRemoteJWKS(g.jwksURL), issuer, audience, g.now.Add(tc.at))
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want == nil && c.Subject != "acc-42":
				t.Errorf("subject %q, want acc-42", c.Subject)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyReturnsTheFacts(t *testing.T) {
	g := newGateway(t)
	c, err := verifyjwt.Verify(g.token(t, nil), verifyjwt.NewRemoteJWKS(g.jwksURL), issuer, audience, g.now)
	if err != nil {
		t.Fatal(err)
	}
	want := facts()
	if c.Subject != want.Subject || c.Email != want.Email || c.Name != want.Name || c.OrgKvK != want.OrgKvK ||
		c.OrgName != want.OrgName || c.Role != want.Role || strings.Join(c.Apps, ",") != "declaratie" ||
		c.Assurance != want.Assurance || c.ID == "" || !c.ExpiresAt.Equal(g.now.Add(5*time.Minute)) {
		t.Errorf("claims %+v", c)
	}
}

func TestRemoteJWKSIsCachedAndFollowsRotation(t *testing.T) {
	g := newGateway(t)
	keys := verifyjwt.NewRemoteJWKS(g.jwksURL)
	before := g.token(t, nil)
	for range 5 {
		if _, err := verifyjwt.Verify(before, keys, issuer, audience, g.now); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.signer.Rotate(); err != nil {
		t.Fatal(err)
	}
	after := g.token(t, func(c *token.Claims) { c.Subject = "acc-43" })
	for _, tok := range []string{before, after} {
		if _, err := verifyjwt.Verify(tok, keys, issuer, audience, g.now); err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	if n := g.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want once: the new key was published before it signed", n)
	}
}

func TestParseJWKS(t *testing.T) {
	g := newGateway(t)
	rec := httptest.NewRecorder()
	g.signer.JWKS().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	keys, err := verifyjwt.ParseJWKS(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyjwt.Verify(g.token(t, nil), keys, issuer, audience, g.now); err != nil {
		t.Errorf("with a JWKS from bytes: %v", err)
	}
	for name, doc := range map[string]string{
		"RSA only":       `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`,
		"other alg":      `{"keys":[{"kty":"EC","crv":"P-256","alg":"ES384","kid":"k","x":"","y":""}]}`,
		"bad point":      `{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":"k","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`,
		"not JSON":       `<html>`,
		"no keys member": `{}`,
	} {
		if _, err := verifyjwt.ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
