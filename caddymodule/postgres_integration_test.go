package caddymodule

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestTheManualsPathOnPostgres runs the manual's path on a server whose
// storage is a real PostgreSQL database: registration with an emailed
// code, the eHerkenning verification at the simulator, then a guarded
// request with the identity headers, and a logout the guard honours.
func TestTheManualsPathOnPostgres(t *testing.T) {
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{Storage: pgtest.Database(t)})
	b := g.newBrowser()
	resp, body := b.registerAction("send", "email", testEmail)
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.registerAction("verify", "code", codeFrom(t, g, testEmail))
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.registerAction("create", "password", testPassword, "password2", testPassword, "name", testName)
	expectStatus(t, resp, body, http.StatusSeeOther)
	if got := accountEmails(t, g); !slices.Equal(got, []string{testEmail}) {
		t.Fatalf("accounts in PostgreSQL: %v", got)
	}

	resp, body = b.verifyAt("12345678", "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Jouw account is nu Admin account voor") {
		t.Fatalf("no success page:\n%s", body)
	}
	resp, body = b.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	h := g.Upstream.last(t)
	if h.Get("X-Wij-Org-Kvk") != "12345678" || h.Get("X-Wij-Org-Role") != "admin" || h.Get("X-Wij-User-Email") != testEmail {
		t.Fatalf("headers from a PostgreSQL-backed session: %v", h)
	}

	resp, body = b.post("/logout", url.Values{})
	if resp.StatusCode >= 400 {
		t.Fatalf("logout: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := b.page("/website/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("after logout the guard answered %d", resp.StatusCode)
	}
}
