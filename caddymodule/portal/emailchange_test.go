package portal

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// changeEmail posts one step of the email-change form.
func (b *browser) changeEmail(action string, fields ...string) *httptest.ResponseRecorder {
	form := url.Values{"action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	return b.post(emailChangePath, form)
}

// lastMessageTo is the newest message to addr.
func (s *recordingSender) lastMessageTo(t testing.TB, addr string) mail.Message {
	t.Helper()
	msgs := s.messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To == addr {
			return msgs[i]
		}
	}
	t.Fatalf("no message to %s", addr)
	return mail.Message{}
}

var undoLink = regexp.MustCompile(`https://portal\.example\.nl(/account/email/undo/[A-Z0-9]+)`)

// TestEmailChange: the new address and the password, a code to the new
// address, and after the right code the account moves: this browser
// stays logged in with a fresh session, every other session ends, the
// old address gets a notice with the way back, and logging in works with
// the new address only.
func TestEmailChange(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	wantRedirect(t, h.browser().get(emailChangePath), "https://portal.example.nl/login?return=%2Faccount%2Femail")
	jan := h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl")
	other := h.loggedIn("jan@example.nl")
	if !strings.Contains(b.get("/dashboard").Body.String(), `href="/account/email"`) {
		t.Fatal("the dashboard does not link to the email change")
	}

	rec := b.get(emailChangePath)
	wantPage(t, rec, http.StatusOK, Dutch, "emailchange.title", "emailchange.new", "emailchange.password", "register.send")
	body := rec.Body.String()
	for _, want := range []string{`autocomplete="email"`, `autocomplete="current-password"`, "jan@example.nl"} {
		if !strings.Contains(body, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
	if strings.Index(body, `value="send"`) > strings.Index(body, `value="cancel"`) {
		t.Error("Enter would not send the code: the cancel button comes first")
	}

	wantRedirect(t, b.changeEmail("send", "email", " Jan.Nieuw@Example.NL ", "password", testPassword), emailChangePath+"?sent=1")
	wantPage(t, b.get(emailChangePath+"?sent=1"), http.StatusOK, Dutch, "code.sent", "register.verify")
	code := h.mail.lastCode(t, "jan.nieuw@example.nl")
	if m := h.mail.lastMessageTo(t, "jan.nieuw@example.nl"); !strings.Contains(m.Subject, "e-mailadres te wijzigen") {
		t.Fatalf("the code came in %q", m.Subject)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	wantPage(t, b.changeEmail("verify", "code", wrong), http.StatusBadRequest, Dutch, "code.wrong")
	if a, _ := h.accounts.Account(jan.ID); a.Email != "jan@example.nl" {
		t.Fatal("a wrong code moved the account")
	}

	before := b.session()
	wantRedirect(t, b.changeEmail("verify", "code", code), emailChangePath+"?changed=1")
	wantPage(t, b.get(emailChangePath+"?changed=1"), http.StatusOK, Dutch, "emailchange.changed.title", "emailchange.changed.more")
	if b.session() == before || !stillLoggedIn(b) {
		t.Fatal("this browser did not get a fresh session after the change")
	}
	if _, err := h.sessions.Lookup(before); err == nil {
		t.Fatal("the session from before the change still works")
	}
	if stillLoggedIn(other) {
		t.Fatal("another session survived the email change")
	}
	if a, _ := h.accounts.Account(jan.ID); a.Email != "jan.nieuw@example.nl" {
		t.Fatalf("the account's address is %q", a.Email)
	}
	notice := h.mail.lastMessageTo(t, "jan@example.nl")
	for _, want := range []string{"jan@example.nl", "jan.nieuw@example.nl", "Dit was ik niet"} {
		if !strings.Contains(notice.Text, want) {
			t.Errorf("the notice to the old address lacks %q:\n%s", want, notice.Text)
		}
	}
	if !undoLink.MatchString(notice.Text) {
		t.Errorf("the notice has no way back:\n%s", notice.Text)
	}
	if rec := h.browser().post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("login with the old address: %d", rec.Code)
	}
	h.loggedIn("jan.nieuw@example.nl")
}

// TestEmailChangeToATakenAddress: the same answer and next page as for a
// free address, a warning to the owner instead of a code, and a code step
// that never succeeds, even with a right code for an address taken after
// it was sent.
func TestEmailChangeToATakenAddress(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	h.account("piet@example.nl", "Piet Pieters")

	free := h.loggedIn("jan@example.nl").changeEmail("send", "email", "vrij@example.nl", "password", testPassword)
	taken := h.loggedIn("jan@example.nl").changeEmail("send", "email", "piet@example.nl", "password", testPassword)
	if free.Code != taken.Code || free.Header().Get("Location") != taken.Header().Get("Location") {
		t.Fatalf("free address: %d to %q; taken: %d to %q", free.Code, free.Header().Get("Location"), taken.Code, taken.Header().Get("Location"))
	}
	warning := h.mail.lastMessageTo(t, "piet@example.nl")
	if !strings.Contains(warning.Subject, "jouw e-mailadres gebruiken") || codePattern.MatchString(warning.Text) {
		t.Fatalf("the owner got %q:\n%s", warning.Subject, warning.Text)
	}

	// A right code for an address someone registers before it is used.
	b := h.loggedIn("jan@example.nl")
	wantRedirect(t, b.changeEmail("send", "email", "later@example.nl", "password", testPassword), emailChangePath+"?sent=1")
	code := h.mail.lastCode(t, "later@example.nl")
	h.account("later@example.nl", "Someone Else")
	wantPage(t, b.changeEmail("verify", "code", code), http.StatusBadRequest, Dutch, "code.wrong")
	if a, _ := h.accounts.Account(jan.ID); a.Email != "jan@example.nl" {
		t.Fatalf("jan moved to %q", a.Email)
	}
	if !stillLoggedIn(b) {
		t.Fatal("a refused change ended the session")
	}
}

// TestEmailChangeWrongPasswordIsALoginFailure: wrong passwords count in
// the login regulation of the account's address, so they lock the login
// too, and the change is refused during the lockout.
func TestEmailChangeWrongPasswordIsALoginFailure(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl")
	for i := range account.LoginFailureLimit - 1 {
		rec := b.changeEmail("send", "email", "nieuw@example.nl", "password", "not my password "+string(rune('a'+i)))
		wantPage(t, rec, http.StatusUnauthorized, Dutch, "emailchange.wrongpassword")
	}
	rec := b.changeEmail("send", "email", "nieuw@example.nl", "password", "not my password either")
	wantPage(t, rec, http.StatusTooManyRequests, Dutch, "login.locked")
	wantPage(t, b.changeEmail("send", "email", "nieuw@example.nl", "password", testPassword), http.StatusTooManyRequests, Dutch, "login.locked")
	if rec := h.browser().post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}}); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a login during the lockout the email change caused: %d, want 429", rec.Code)
	}
	if len(h.mail.messages()) != 0 {
		t.Fatal("a refused change sent mail")
	}
}

// TestEmailChangeBadInput: every field problem gets its message at the
// field, a 4xx, no mail and no step forward.
func TestEmailChangeBadInput(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl")
	for _, tc := range []struct {
		name, email, password, key string
	}{
		{"too long", strings.Repeat("a", 250) + "@example.nl", testPassword, "field.toolong"},
		{"invalid", "jan at example", testPassword, "field.email.invalid"},
		{"same", " JAN@example.nl", testPassword, "emailchange.same"},
		{"no password", "nieuw@example.nl", "", "field.password.empty"},
		{"password too long", "nieuw@example.nl", strings.Repeat("x", 600), "field.toolong"},
	} {
		rec := b.changeEmail("send", "email", tc.email, "password", tc.password)
		wantPage(t, rec, http.StatusBadRequest, Dutch, tc.key, "errors.summary")
		if !strings.Contains(rec.Body.String(), `aria-invalid="true"`) {
			t.Errorf("%s: no field is marked", tc.name)
		}
	}
	wantPage(t, b.changeEmail("verify", "code", "123456"), http.StatusConflict, Dutch, "form.outofstep")
	rec := b.post(emailChangePath, url.Values{"action": {"send"}, "email": {"nieuw@example.nl"}, "password": {testPassword}, "role": {"admin"}})
	wantPage(t, rec, http.StatusBadRequest, Dutch, "form.unknown")
	if len(h.mail.messages()) != 0 {
		t.Fatal("bad input sent mail")
	}
	if rec := b.post(emailChangePath, url.Values{"action": {"send"}, "csrf": {"forged"}}); rec.Code != http.StatusForbidden {
		t.Fatalf("a form without its token: %d", rec.Code)
	}
}

// TestEmailChangeUndo: the link in the notice asks first, then moves the
// account back, ends every session and makes the password useless; it
// works once.
func TestEmailChangeUndo(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	thief := h.loggedIn("jan@example.nl")
	wantRedirect(t, thief.changeEmail("send", "email", "dief@example.nl", "password", testPassword), emailChangePath+"?sent=1")
	wantRedirect(t, thief.changeEmail("verify", "code", h.mail.lastCode(t, "dief@example.nl")), emailChangePath+"?changed=1")
	link := undoLink.FindStringSubmatch(h.mail.lastMessageTo(t, "jan@example.nl").Text)[1]

	owner := h.browser()
	wantPage(t, owner.get(link), http.StatusOK, Dutch, "emailundo.title", "emailundo.confirm")
	if a, _ := h.accounts.Account(jan.ID); a.Email != "dief@example.nl" {
		t.Fatal("opening the link changed something")
	}
	wantPage(t, owner.post(link, url.Values{}), http.StatusOK, Dutch, "emailundo.done.title", "emailundo.reset")
	if a, _ := h.accounts.Account(jan.ID); a.Email != "jan@example.nl" {
		t.Fatalf("after the undo the account has %q", a.Email)
	}
	if stillLoggedIn(thief) {
		t.Fatal("the session of whoever changed the address survived the undo")
	}
	for _, email := range []string{"jan@example.nl", "dief@example.nl"} {
		if rec := h.browser().post("/login", url.Values{"email": {email}, "password": {testPassword}}); rec.Code != http.StatusUnauthorized {
			t.Fatalf("login as %s with the old password after the undo: %d", email, rec.Code)
		}
	}
	wantPage(t, owner.post(link, url.Values{}), http.StatusNotFound, Dutch, "emailundo.invalid")
	wantPage(t, owner.get("/account/email/undo/NOTATOKEN"), http.StatusNotFound, Dutch, "emailundo.invalid")
	if _, err := h.accounts.AccountByEmail("dief@example.nl"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the thief's address still leads to the account: %v", err)
	}
}

// TestEmailChangeCodeRules: the code to the new address follows the
// registration's rules: send limits per address, and a code dies after
// MaxCodeAttempts wrong tries.
func TestEmailChangeCodeRules(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl")
	wantRedirect(t, b.changeEmail("send", "email", "nieuw@example.nl", "password", testPassword), emailChangePath+"?sent=1")
	for range account.CodeSendLimit - 1 {
		wantRedirect(t, b.changeEmail("resend"), emailChangePath+"?sent=1")
	}
	rec := b.changeEmail("resend")
	wantPage(t, rec, http.StatusTooManyRequests, Dutch, "code.limited")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After on a send refused by the limit")
	}
	code := h.mail.lastCode(t, "nieuw@example.nl")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for range account.MaxCodeAttempts - 1 {
		wantPage(t, b.changeEmail("verify", "code", wrong), http.StatusBadRequest, Dutch, "code.wrong")
	}
	wantPage(t, b.changeEmail("verify", "code", wrong), http.StatusBadRequest, Dutch, "code.exhausted")
	wantPage(t, b.changeEmail("verify", "code", code), http.StatusBadRequest, Dutch, "code.expired")
	if a, _ := h.accounts.AccountByEmail("jan@example.nl"); a.Email != "jan@example.nl" {
		t.Fatal("the account moved with a dead code")
	}
}
