package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/examples/verifyjwt"
)

// TestAssertionVerifiesWithTheExampleVerifier checks the token an app
// receives the way the README tells app owners to.
func TestAssertionVerifiesWithTheExampleVerifier(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf B.V.", "loa3")
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	resp, body := b.page("/website/", "X-Wij-Assertion", "forged.token.value")
	expectStatus(t, resp, body, http.StatusOK)
	raw := g.Upstream.last(t).Values("X-Wij-Assertion")
	if len(raw) != 1 || raw[0] == "forged.token.value" {
		t.Fatalf("assertion header: %q", raw)
	}
	keys := verifyjwt.NewRemoteJWKS(g.URL + "/.well-known/jwks.json")
	c, err := verifyjwt.Verify(raw[0], keys, g.URL, "website", time.Now())
	if err != nil {
		t.Fatalf("the example verifier refused wijgate's token: %v", err)
	}
	if c.Subject != acct.ID || c.Email != testEmail || c.OrgKvK != "12345678" || c.Role != "admin" || c.Assurance != "eh3" {
		t.Fatalf("claims: %+v", c)
	}
	if ttl := c.ExpiresAt.Sub(c.IssuedAt.Time); ttl <= 0 || ttl > 5*time.Minute {
		t.Fatalf("token lives %v", ttl)
	}
	for _, tc := range []struct{ name, issuer, audience string }{
		{"another app's audience", g.URL, "rie"},
		{"another issuer", "https://evil.example", "website"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verifyjwt.Verify(raw[0], keys, tc.issuer, tc.audience, time.Now()); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		if _, err := verifyjwt.Verify(raw[0], keys, g.URL, "website", time.Now().Add(6*time.Minute)); err == nil {
			t.Fatal("accepted after expiry")
		}
	})
	t.Run("reused for the same session and app", func(t *testing.T) {
		b.page("/website/")
		if again := g.Upstream.last(t).Get("X-Wij-Assertion"); again != raw[0] {
			t.Fatal("a second request got a freshly signed token")
		}
	})
	t.Run("a change of facts gets a new token", func(t *testing.T) {
		linkOrg(t, acct.ID, "12345678", "Nieuwe Naam B.V.", "loa4")
		b.page("/website/")
		tok := g.Upstream.last(t).Get("X-Wij-Assertion")
		c, err := verifyjwt.Verify(tok, keys, g.URL, "website", time.Now())
		if err != nil || c.OrgName != "Nieuwe Naam B.V." || c.Assurance != "eh4" {
			t.Fatalf("after the change: %v %+v", err, c)
		}
	})
}
