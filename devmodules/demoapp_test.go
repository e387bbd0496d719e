package devmodules

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

func TestDemoAppShowsHeadersAndVerifiedToken(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, err := token.NewSigner(st, token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(signer.JWKS())
	defer jwks.Close()
	tok, err := signer.Token(token.CacheKey{Session: "s", App: "declaratie"}, token.Claims{Issuer: "http://portal", Audience: "declaratie", Subject: "u-1", Email: "jan@example.nl"})
	if err != nil {
		t.Fatal(err)
	}
	d := &DemoApp{Name: "Declaratie Systeem", JWKS: jwks.URL, Issuer: "http://portal", Audience: "declaratie"}
	if err := d.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"valid token", tok, `&#34;email&#34;: &#34;jan@example.nl&#34;`},
		{"forged token", tok[:len(tok)-4] + "AAAA", "Token afgewezen"},
		{"no token", "", "Geen token ontvangen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("X-Wij-User-Email", "jan@example.nl")
			if tc.token != "" {
				req.Header.Set("X-Wij-Assertion", tc.token)
			}
			rec := httptest.NewRecorder()
			if err := d.ServeHTTP(rec, req, nil); err != nil {
				t.Fatal(err)
			}
			body := rec.Body.String()
			if !strings.Contains(body, tc.want) || !strings.Contains(body, "X-Wij-User-Email: jan@example.nl") {
				t.Fatalf("page lacks %q:\n%s", tc.want, body)
			}
		})
	}
}
