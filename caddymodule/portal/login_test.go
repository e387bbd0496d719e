package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/session"
)

// TestHomeHandler: the portal's root leads a visitor to the landing page
// and a logged-in person to their dashboard.
func TestHomeHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	wantRedirect(t, h.browser().get("/"), "/account")
	wantRedirect(t, h.loggedIn("jan@example.nl").get("/"), "/dashboard")
}

// TestLoginPageHandler: the login form with its anti-forgery token, the
// notice after a logout, and no form for someone already logged in.
func TestLoginPageHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")

	b := h.browser()
	rec := b.get("/login")
	wantPage(t, rec, http.StatusOK, Dutch, "login.title", "login.forgot", "login.register")
	body := rec.Body.String()
	for _, want := range []string{`action="/login"`, `name="email"`, `name="password"`, `autocomplete="current-password"`,
		`name="csrf" value="` + b.cookies[csrfCookie].Value + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the login form lacks %s", want)
		}
	}
	if strings.Contains(body, pageText(Dutch, "login.loggedout")) {
		t.Error("a plain login page says the person logged out")
	}
	wantPage(t, b.get("/login?loggedout=1"), http.StatusOK, Dutch, "login.loggedout")

	in := h.loggedIn("jan@example.nl")
	wantRedirect(t, in.get("/login"), "/dashboard")
	wantRedirect(t, in.get("/login?return="+url.QueryEscape("https://apps.example.nl/declaraties")), "https://apps.example.nl/declaraties")
}

// TestLoginHandler: the right password starts a session of the account and
// goes on to the dashboard; a wrong password, an unknown address and a
// disabled account get one and the same refusal and no session.
func TestLoginHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	h.account("piet@example.nl", "Piet Pietersen")
	if _, err := h.accounts.Disable("piet@example.nl"); err != nil {
		t.Fatal(err)
	}

	refusals := map[string]string{}
	for _, tc := range []struct{ name, email, password string }{
		{"wrong password", "jan@example.nl", "niet-het-wachtwoord"},
		{"unknown address", "niemand@example.nl", testPassword},
		{"disabled account", "piet@example.nl", testPassword},
	} {
		b := h.browser()
		rec := b.post("/login", url.Values{"email": {tc.email}, "password": {tc.password}})
		wantPage(t, rec, http.StatusUnauthorized, Dutch, "login.failed")
		if b.session() != "" {
			t.Errorf("%s: got a session cookie", tc.name)
		}
		body := rec.Body.String()
		if !strings.Contains(body, `name="password"`) || !strings.Contains(body, `value="`+tc.email+`"`) {
			t.Errorf("%s: the form is not shown again with the address typed:\n%s", tc.name, body)
		}
		// What differs between the refusals is the address typed and the
		// page's token; the rest must not tell them apart.
		body = strings.ReplaceAll(body, tc.email, "EMAIL")
		refusals[tc.name] = strings.ReplaceAll(body, b.cookies[csrfCookie].Value, "TOKEN")
	}
	if refusals["wrong password"] != refusals["unknown address"] || refusals["wrong password"] != refusals["disabled account"] {
		t.Errorf("the refusals tell the cases apart:\n%v", refusals)
	}

	b := h.browser()
	wantRedirect(t, b.post("/login", url.Values{"email": {"Jan@Example.nl "}, "password": {testPassword}}), "/dashboard")
	s, err := h.sessions.Lookup(b.session())
	if err != nil || s.AccountID != jan.ID {
		t.Fatalf("the login's session: %+v, %v", s, err)
	}
	rec := b.get("/dashboard")
	wantPage(t, rec, http.StatusOK, Dutch, "dashboard.title")
	if !strings.Contains(rec.Body.String(), "Jan Jansen") {
		t.Fatalf("the dashboard does not greet the account:\n%s", rec.Body)
	}

	// Logging in again from the same browser ends the session it had.
	old := b.session()
	wantRedirect(t, b.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}}), "/dashboard")
	if _, err := h.sessions.Lookup(old); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("the session presented at the second login lives on: %v", err)
	}
	if b.session() == old || b.session() == "" {
		t.Error("the second login did not give a fresh session")
	}
}

// TestLoginRefusesEmptyAndOversizedFields: the form comes back with a
// message at each field, before any password is checked.
func TestLoginRefusesEmptyAndOversizedFields(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	rec := b.post("/login", url.Values{"email": {""}, "password": {""}})
	wantPage(t, rec, http.StatusBadRequest, Dutch, "errors.summary", "field.email.invalid", "field.password.empty")
	rec = b.post("/login", url.Values{"email": {strings.Repeat("a", 300) + "@example.nl"}, "password": {strings.Repeat("x", maxPasswordInput+1)}})
	wantPage(t, rec, http.StatusBadRequest, Dutch, "field.toolong")
	if b.session() != "" {
		t.Fatal("a refused form started a session")
	}
}

// TestLoginLockout: the fifth wrong password in a row locks the address
// for a minute with 429 and Retry-After; during the lockout even the
// right password is refused, and after it the right password works.
func TestLoginLockout(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.browser()
	wrong := url.Values{"email": {"jan@example.nl"}, "password": {"niet-het-wachtwoord"}}
	for i := 1; i < account.LoginFailureLimit; i++ {
		if rec := b.post("/login", wrong); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, rec.Code)
		}
	}
	for _, form := range []url.Values{wrong, {"email": {"jan@example.nl"}, "password": {testPassword}}} {
		rec := b.post("/login", form)
		wantPage(t, rec, http.StatusTooManyRequests, Dutch, "login.locked", "wait.minute")
		if got := rec.Header().Get("Retry-After"); got != "60" {
			t.Errorf("Retry-After %q, want 60", got)
		}
		if b.session() != "" {
			t.Fatal("a login during the lockout got a session")
		}
	}
	h.advance(account.LoginFirstWait + time.Second)
	wantRedirect(t, b.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}}), "/dashboard")
}

// TestLoginReturnAddress: a return address on an allowed host is carried
// through the form and followed after the login; one on another site is
// dropped, and the login goes to the dashboard.
func TestLoginReturnAddress(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	const app = "https://apps.example.nl/declaraties?week=12"

	b := h.browser()
	rec := b.get("/login?return=" + url.QueryEscape(app))
	if !strings.Contains(rec.Body.String(), `name="return" value="`+app+`"`) {
		t.Fatalf("the form does not carry the return address:\n%s", rec.Body)
	}
	wantRedirect(t, b.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}, "return": {app}}), app)

	for _, hostile := range []string{"https://evil.example/login", "//evil.example/", "/%2F%2Fevil.example", `/\evil.example`, "javascript:alert(1)"} {
		b := h.browser()
		rec := b.get("/login?return=" + url.QueryEscape(hostile))
		if strings.Contains(rec.Body.String(), `name="return"`) {
			t.Errorf("%s: the form carries it:\n%s", hostile, rec.Body)
		}
		wantRedirect(t, b.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}, "return": {hostile}}), "/dashboard")
	}
}

// TestLogoutHandler: only a POST with the form's token logs out; it ends
// the session in the session manager, clears the cookie and the site's
// data, and keeps the language.
func TestLogoutHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl")
	sess := b.session()

	// Only the catch-all page answers a GET: a link cannot log anyone out.
	wantPage(t, b.get("/logout"), http.StatusNotFound, Dutch, "error.notfound")
	wantPage(t, b.post("/logout", url.Values{"csrf": {"wrong-token-wrong-token-ab"}}), http.StatusForbidden, Dutch, "form.expired")
	if _, err := h.sessions.Lookup(sess); err != nil {
		t.Fatalf("a logout without its token or by GET ended the session: %v", err)
	}

	b.get("/dashboard?lang=en")
	rec := b.post("/logout", nil)
	wantRedirect(t, rec, "/login?loggedout=1&lang=en")
	if got := rec.Header().Get("Clear-Site-Data"); got != `"cache", "cookies", "storage"` {
		t.Errorf("Clear-Site-Data %q", got)
	}
	if _, err := h.sessions.Lookup(sess); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the session lives on after the logout: %v", err)
	}
	if b.session() != "" {
		t.Fatal("the logout did not clear the session cookie")
	}
	// The old cookie, kept by someone, opens nothing.
	stolen := h.browser()
	stolen.cookies[sessionCookieName] = &http.Cookie{Name: sessionCookieName, Value: sess}
	wantRedirect(t, stolen.get("/dashboard"), h.portal.LoginURL("/dashboard"))
}
