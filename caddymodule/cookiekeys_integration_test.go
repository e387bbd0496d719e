package caddymodule

import (
	"net/http"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/session"
)

// TestCookieKeyRotation: keys come from the environment; adding a new key
// in front keeps every session made with the old one, and cookies made
// after the rotation use the new key.
func TestCookieKeyRotation(t *testing.T) {
	oldKey, newKey := session.NewKeyPair(), session.NewKeyPair()
	t.Setenv("WIJGATE_TEST_OLD_KEY", oldKey.String())
	t.Setenv("WIJGATE_TEST_NEW_KEY", newKey.String())
	storage := t.TempDir()

	g := startGateway(t, "gateway.caddyfile", gatewayParams{Storage: storage, Extra: "cookie_key {env.WIJGATE_TEST_OLD_KEY}"})
	g.addAccount(testEmail, testName, testPassword)
	before := g.newBrowser()
	before.login(testEmail, testPassword)
	oldCodec, _ := session.NewCodec(cookieName, oldKey)
	if _, err := oldCodec.Decode(before.cookie(cookieName)); err != nil {
		t.Fatalf("the configured key did not make the cookie: %v", err)
	}

	rotated := startGateway(t, "gateway.caddyfile", gatewayParams{Storage: storage,
		Extra: "cookie_key {env.WIJGATE_TEST_NEW_KEY}\n\t\tcookie_key {env.WIJGATE_TEST_OLD_KEY}"})
	before.g = rotated
	if r, _ := before.page("/declaratie/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a session from before the rotation: %d", r.StatusCode)
	}
	after := rotated.newBrowser()
	after.login(testEmail, testPassword)
	newCodec, _ := session.NewCodec(cookieName, newKey)
	if _, err := newCodec.Decode(after.cookie(cookieName)); err != nil {
		t.Fatalf("a cookie made after the rotation does not use the new key: %v", err)
	}

	retired := startGateway(t, "gateway.caddyfile", gatewayParams{Storage: storage, Extra: "cookie_key {env.WIJGATE_TEST_NEW_KEY}"})
	before.g = retired
	if r, _ := before.do(http.MethodGet, "/declaratie/", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a cookie under a retired key still works: %d", r.StatusCode)
	}
}

func TestBadCookieKeyIsAConfigError(t *testing.T) {
	// Literal keys are refused already by the Caddyfile adapter
	// (cmd/wijgate's TestValidateRefusesBrokenCaddyfiles); these reach
	// the app.
	t.Setenv("WIJGATE_TEST_BAD_KEY", "not-a-key")
	t.Setenv("WIJGATE_TEST_SHORT_KEY", "AAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	for _, tc := range []struct{ name, extra string }{
		{"not base64 pairs", "cookie_key {env.WIJGATE_TEST_BAD_KEY}"},
		{"short hash key", "cookie_key {env.WIJGATE_TEST_SHORT_KEY}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := loadGatewayErr(t, "gateway.caddyfile", gatewayParams{Extra: tc.extra})
			if err == nil {
				t.Fatal("a bad cookie key was accepted")
			}
		})
	}
}
