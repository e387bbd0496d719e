package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/org"
)

// runningApp is the wijgate app of the configuration Caddy is running.
func runningApp(t *testing.T) *App {
	t.Helper()
	v, err := caddy.ActiveContext().AppIfConfigured("wijgate")
	if err != nil {
		t.Fatal(err)
	}
	return v.(*App)
}

// linkOrg records an eHerkenning verification for the account, as the
// eHerkenning flow does after a verified broker answer.
func linkOrg(t *testing.T, accountID, kvk, name, level string) {
	t.Helper()
	if _, err := runningApp(t).orgs.Link(accountID, org.Verified{KvK: kvk, Name: name, Level: level, Pseudonym: "pseudo-" + accountID}); err != nil {
		t.Fatal(err)
	}
}

func TestGuardPolicyWithoutOrganisation(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	for _, path := range []string{"/website/", "/rie/", "/orgapp/"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := b.page(path)
			if resp.StatusCode != http.StatusFound || !strings.HasSuffix(resp.Header.Get("Location"), "/eherkenning") {
				t.Fatalf("browser: %d → %q, want a redirect to /eherkenning", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, body := b.do(http.MethodGet, path, nil, "Accept", "application/json")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "no_org") {
				t.Fatalf("API: %d %s", resp.StatusCode, body)
			}
		})
	}
	if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
		t.Fatalf("require session route: %d", r.StatusCode)
	}
}

func TestGuardHeadersForAnAdmin(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf Ääk B.V.", "loa3")
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	resp, body := b.page("/website/", "Remote-User", "boss@evil.example", "X-Wij-Org-Role", "admin")
	expectStatus(t, resp, body, http.StatusOK)
	h := g.Upstream.last(t)
	for name, want := range map[string]string{
		"X-Wij-User-Id":    acct.ID,
		"X-Wij-User-Email": testEmail,
		"X-Wij-Org-Kvk":    "12345678",
		"X-Wij-Org-Name":   "Bouwbedrijf %C3%84%C3%A4k B.V.",
		"X-Wij-Org-Role":   "admin",
		"X-Wij-Apps":       "declaratie,orgonly,rie,website",
		"X-Wij-Assurance":  "eh3",
		"Remote-User":      testEmail,
	} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	t.Run("admin-only app", func(t *testing.T) {
		if r, _ := b.page("/rie/"); r.StatusCode != http.StatusOK {
			t.Fatalf("admin refused: %d", r.StatusCode)
		}
	})
	t.Run("chosen headers only", func(t *testing.T) {
		b.page("/orgapp/")
		h := g.Upstream.last(t)
		for _, absent := range []string{"X-Wij-User-Name", "X-Wij-Org-Name", "X-Wij-Org-Role", "X-Wij-Apps", "X-Wij-Assurance", "Remote-User"} {
			if h.Get(absent) != "" {
				t.Errorf("%s sent though not chosen", absent)
			}
		}
		if h.Get("X-Wij-Org-Kvk") != "12345678" {
			t.Error("chosen header missing")
		}
		// Placeholders carry every fact, chosen as a header or not.
		if p, want := h.Get("X-Placeholders"), "12345678|Bouwbedrijf Ääk B.V.|admin|declaratie,orgonly,rie,website|eh3"; p != want {
			t.Errorf("placeholders upstream = %q, want %q", p, want)
		}
	})
}

func TestAliasIsStrippedOnEveryRoute(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	// The declaratie route sets no alias, but Remote-User is an alias on
	// another route, so nobody may send it anywhere.
	b.page("/declaratie/", "remote_user", "boss@evil.example")
	if v := g.Upstream.last(t).Values("Remote_user"); len(v) > 0 {
		t.Fatalf("forged alias reached the upstream: %v", v)
	}
	for name := range g.Upstream.last(t) {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "remote-user") {
			t.Fatalf("forged %s reached the upstream", name)
		}
	}
}

func TestMinimumAssurance(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf", "loa4")
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	b.page("/website/")
	if got := g.Upstream.last(t).Get("X-Wij-Assurance"); got != "eh4" {
		t.Fatalf("assurance = %q, want eh4", got)
	}
}
