package caddymodule

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/session"
)

var (
	totpSecretField = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)</code>`)
	totpHiddenField = regexp.MustCompile(`name="(sealed|expires)" value="([^"]+)"`)
)

// authenticatorCode is the code an authenticator app with secret shows at t.
func authenticatorCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := hotp.GenerateCodeCustom(secret, uint64(at.Unix()/account.TOTPPeriod), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertionAMR is the amr claim of the identity token the upstream got
// last (read, not verified: the token tests verify).
func assertionAMR(t *testing.T, g *gateway) []string {
	t.Helper()
	raw := g.Upstream.last(t).Get("X-Wij-Assertion")
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		t.Fatalf("the upstream got no readable token: %v", err)
	}
	var amr []string
	list, _ := claims["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		amr = append(amr, s)
	}
	return amr
}

// TestAdminActsAsAdminOnlyAfterASecondFactor runs the default policy
// (admins) through the real server: an admin who logged in with the
// password alone is sent to set up a factor and reaches apps as a member,
// with amr ["pwd"] in the token; after a login with the authenticator code
// the guard hands the admin on as admin, with amr ["pwd","otp","mfa"].
func TestAdminActsAsAdminOnlyAfterASecondFactor(t *testing.T) {
	clock := useClock(t)
	g := startGateway(t, "mfa.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf B.V.", "loa3")

	b := g.newBrowser()
	if loc := b.login(testEmail, testPassword).Header.Get("Location"); loc != "/account/security?required=1" {
		t.Fatalf("an admin without a factor went to %q after login, want the Beveiliging page", loc)
	}
	resp, body := b.page("/orgapp/")
	expectStatus(t, resp, body, http.StatusOK)
	if got := g.Upstream.last(t).Get("X-Placeholders"); !strings.Contains(got, "|member|") {
		t.Fatalf("a password-only admin reached the app as %q, want member", got)
	}
	resp, body = b.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	if amr := assertionAMR(t, g); !slices.Equal(amr, []string{"pwd"}) {
		t.Fatalf("token amr %v, want [pwd]", amr)
	}
	resp, body = b.page("/rie/")
	expectStatus(t, resp, body, http.StatusForbidden)
	resp, body = b.page("/org/12345678")
	expectStatus(t, resp, body, http.StatusForbidden)

	// Set up the authenticator app on the Beveiliging page.
	resp, body = b.submit("/account/security", "/account/security", url.Values{"action": {"totp-begin"}})
	expectStatus(t, resp, body, http.StatusOK)
	m := totpSecretField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no secret on the setup page:\n%s", body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	form := url.Values{"action": {"totp-confirm"}, "code": {authenticatorCode(t, secret, clock.Now())}}
	for _, hm := range totpHiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(hm[1], hm[2])
	}
	resp, body = b.post("/account/security", form)
	expectStatus(t, resp, body, http.StatusOK)

	// Log in again with the factor, a step later.
	clock.Add(account.TOTPPeriod * time.Second)
	c := g.newBrowser()
	if loc := c.login(testEmail, testPassword).Header.Get("Location"); loc != "/login/factor" {
		t.Fatalf("a login with a factor went to %q, want the second-factor step", loc)
	}
	resp, body = c.submit("/login/factor", "/login/factor", url.Values{"action": {"totp"}, "code": {authenticatorCode(t, secret, clock.Now())}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right code: %d\n%s", resp.StatusCode, body)
	}
	resp, body = c.page("/orgapp/")
	expectStatus(t, resp, body, http.StatusOK)
	if got := g.Upstream.last(t).Get("X-Placeholders"); !strings.Contains(got, "|admin|") {
		t.Fatalf("after the second factor the admin reached the app as %q", got)
	}
	resp, body = c.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	if amr := assertionAMR(t, g); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("token amr %v, want [pwd otp mfa]", amr)
	}
	resp, body = c.page("/rie/")
	expectStatus(t, resp, body, http.StatusOK)
	resp, body = c.page("/org/12345678")
	expectStatus(t, resp, body, http.StatusOK)
	// The first browser's password-only session still acts as a member.
	resp, body = b.page("/rie/")
	expectStatus(t, resp, body, http.StatusForbidden)
}

// TestGuardHandsAnAdminOnAsAdminOnlyFromAnMFASession checks the guard's
// rule under each policy: without "mfa" in the session's amr an admin is
// handed on as a member (and refused admin-only apps), unless the policy
// is off.
func TestGuardHandsAnAdminOnAsAdminOnlyFromAnMFASession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy string
		amr    []string
		role   string
	}{
		{"", []string{"pwd"}, "member"},
		{"admins", []string{"pwd"}, "member"},
		{"everyone", []string{"pwd"}, "member"},
		{"off", []string{"pwd"}, "admin"},
		{"", []string{"pwd", "otp", "mfa"}, "admin"},
		{"", []string{"hwk", "user", "mfa"}, "admin"},
	} {
		t.Run(tc.policy+"/"+strings.Join(tc.amr, "+"), func(t *testing.T) {
			g := newGuardHarness(t)
			g.app.SecondFactor = tc.policy
			a := g.admin("u-jan", "jan@example.nl", "Jan Jansen")
			raw, _, err := g.sessions.Create(a, session.Start{AMR: tc.amr})
			if err != nil {
				t.Fatal(err)
			}
			_, got := serve(t, g.guard(Handler{App: "declaratie"}), apiCall(raw))
			if got == nil {
				t.Fatal("the admin was not let through to an ordinary app")
			}
			if role := got.Header.Get(contract.OrgRole.Header()); role != tc.role {
				t.Fatalf("handed on as %q, want %q", role, tc.role)
			}
			w, got := serve(t, g.guard(Handler{App: "rie", AdminOnly: true}), apiCall(raw))
			if (got != nil) != (tc.role == "admin") {
				t.Fatalf("admin-only app: let through %v as %s (status %d)", got != nil, tc.role, w.Code)
			}
		})
	}
}
