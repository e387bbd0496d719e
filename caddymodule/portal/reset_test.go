package portal

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// resetAction posts one step of the password reset form.
func (b *browser) resetAction(action string, fields ...string) *httptest.ResponseRecorder {
	form := url.Values{"action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	return b.post("/password/forgot", form)
}

// newTestPassword is a second password that passes the rules.
const newTestPassword = "fiets-bel-regen-42"

// TestPasswordResetHandler walks every step: the address, a wrong code,
// the right one, a password that breaks the rules, and the new password
// saved. Every session of the account ends, the old password stops
// working, the owner is told by mail, and the person is not logged in.
func TestPasswordResetHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	office, phone := h.loggedIn("jan@example.nl"), h.loggedIn("jan@example.nl")

	b := h.browser()
	rec := b.get("/password/forgot")
	wantPage(t, rec, http.StatusOK, Dutch, "reset.title", "reset.intro", "register.send", "reset.backtologin")
	wantRedirect(t, b.resetAction("send", "email", "jan@example.nl"), "/password/forgot?sent=1")
	code := h.mail.lastCode(t, "jan@example.nl")
	want := mail.VerificationCodeMessage(mail.LangNL, "jan@example.nl", code, string(account.PurposeReset), account.CodeValidity)
	if msgs := h.mail.messages(); len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("sent %+v, want the reset code message", msgs)
	}
	rec = b.get("/password/forgot?sent=1")
	wantPage(t, rec, http.StatusOK, Dutch, "code.sent", "register.verify", "register.resend", "register.change")
	if !strings.Contains(rec.Body.String(), `name="code"`) {
		t.Fatalf("no code field:\n%s", rec.Body)
	}

	wantPage(t, b.resetAction("verify", "code", otherCode(code)), http.StatusBadRequest, Dutch, "code.wrong")
	wantRedirect(t, b.resetAction("verify", "code", code), "/password/forgot")
	rec = b.get("/password/forgot")
	wantPage(t, rec, http.StatusOK, Dutch, "register.verified", "reset.save", "register.cancel")
	if !strings.Contains(rec.Body.String(), `autocomplete="new-password"`) {
		t.Fatalf("no new password field:\n%s", rec.Body)
	}
	wantPage(t, b.resetAction("save", "password", "jan@example.nl-wachtwoord", "password2", "jan@example.nl-wachtwoord"),
		http.StatusBadRequest, Dutch, "password.contains_email")
	wantPage(t, b.resetAction("save", "password", newTestPassword, "password2", testPassword), http.StatusBadRequest, Dutch, "password.mismatch")
	if _, err := h.accounts.Authenticate(context.Background(), "jan@example.nl", testPassword); err != nil {
		t.Fatalf("a refused password changed the account: %v", err)
	}

	flow := b.cookies[flowCookie].Value
	wantRedirect(t, b.resetAction("save", "password", newTestPassword, "password2", newTestPassword), "/password/done")
	wantPage(t, b.get("/password/done"), http.StatusOK, Dutch, "reset.done.title", "reset.done")

	for name, old := range map[string]*browser{"office": office, "phone": phone} {
		if _, err := h.sessions.Lookup(old.session()); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("the %s session lives on after the reset: %v", name, err)
		}
		wantRedirect(t, old.get("/dashboard"), h.portal.LoginURL("/dashboard"))
	}
	if b.session() != "" {
		t.Error("the reset logged the person in")
	}
	if _, err := h.accounts.Authenticate(context.Background(), "jan@example.nl", testPassword); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Errorf("the old password still works: %v", err)
	}
	if a, err := h.accounts.Authenticate(context.Background(), "jan@example.nl", newTestPassword); err != nil || a.ID != jan.ID {
		t.Errorf("the new password does not open the account: %v", err)
	}
	msgs := h.mail.messages()
	if len(msgs) != 2 || msgs[1].To != "jan@example.nl" ||
		msgs[1].Subject != mail.PasswordChangedMessage(mail.LangNL, "jan@example.nl", h.now()).Subject {
		t.Errorf("the owner was not told of the change: %+v", msgs)
	}
	if _, err := h.accounts.Flow(flowKey(flow)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the finished flow is still stored: %v", err)
	}
	// A replayed last step changes nothing.
	b.cookies[flowCookie] = &http.Cookie{Name: flowCookie, Value: flow}
	wantPage(t, b.resetAction("save", "password", "nog-een-ander-wachtwoord", "password2", "nog-een-ander-wachtwoord"),
		http.StatusConflict, Dutch, "form.outofstep")
	wantRedirect(t, h.browser().post("/login", url.Values{"email": {"jan@example.nl"}, "password": {newTestPassword}}), "/dashboard")
}

// TestPasswordResetOfAnUnknownAddress answers the address step as for a
// known one, mails that there is no account, and refuses a right code
// for an address without an account.
func TestPasswordResetOfAnUnknownAddress(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	wantRedirect(t, b.resetAction("send", "email", "niemand@example.nl"), "/password/forgot?sent=1")
	want := mail.NoAccountMessage(mail.LangNL, "niemand@example.nl", "https://portal.example.nl/register")
	if msgs := h.mail.messages(); len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("sent %+v, want the no-account message", msgs)
	}
	// Only the code in the store could be right; the mail had none.
	code, err := h.portal.cfg.Codes.Issue(account.PurposeReset, "niemand@example.nl")
	if err != nil {
		t.Fatal(err)
	}
	wantPage(t, b.resetAction("verify", "code", code), http.StatusBadRequest, Dutch, "reset.noaccount")
	if strings.Contains(b.get("/password/forgot").Body.String(), `autocomplete="new-password"`) {
		t.Fatal("a right code for an address without an account led to the password step")
	}
}

// TestPasswordResetResendChangeCancel: a resent code replaces the first;
// changing the address goes back to the first step; cancelling forgets
// the flow and leads to the login page.
func TestPasswordResetResendChangeCancel(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.browser()
	wantRedirect(t, b.resetAction("send", "email", "jan@example.nl"), "/password/forgot?sent=1")
	first := h.mail.lastCode(t, "jan@example.nl")
	wantRedirect(t, b.resetAction("resend"), "/password/forgot?sent=1")
	if n := len(h.mail.messages()); n != 2 {
		t.Fatalf("%d messages after a resend, want 2", n)
	}
	if second := h.mail.lastCode(t, "jan@example.nl"); second != first {
		wantPage(t, b.resetAction("verify", "code", first), http.StatusBadRequest, Dutch, "code.wrong")
	}

	wantRedirect(t, b.resetAction("change"), "/password/forgot")
	rec := b.get("/password/forgot")
	wantPage(t, rec, http.StatusOK, Dutch, "reset.intro")
	if !strings.Contains(rec.Body.String(), `value="jan@example.nl"`) || strings.Contains(rec.Body.String(), `name="code"`) {
		t.Fatalf("changing the address did not go back to the address step with it filled in:\n%s", rec.Body)
	}

	flow := b.cookies[flowCookie].Value
	wantRedirect(t, b.resetAction("cancel"), "/login")
	if _, err := h.accounts.Flow(flowKey(flow)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the cancelled flow is still stored: %v", err)
	}
	if _, ok := b.cookies[flowCookie]; ok {
		t.Error("the flow cookie outlives the cancel")
	}
}

// TestPasswordResetRefusals: a bad address, a field the form does not
// have and a step out of turn are refused; nothing is sent or changed.
func TestPasswordResetRefusals(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.browser()
	wantPage(t, b.resetAction("send", "email", "jan@"), http.StatusBadRequest, Dutch, "field.email.invalid")
	wantPage(t, b.resetAction("send", "email", "jan@example.nl", "name", "Jan"), http.StatusBadRequest, Dutch, "form.unknown")
	wantPage(t, b.resetAction("save", "password", newTestPassword, "password2", newTestPassword), http.StatusConflict, Dutch, "form.outofstep")
	if msgs := h.mail.messages(); len(msgs) != 0 {
		t.Fatalf("refused steps sent mail: %+v", msgs)
	}
	if _, err := h.accounts.Authenticate(context.Background(), "jan@example.nl", testPassword); err != nil {
		t.Fatalf("refused steps changed the password: %v", err)
	}
}
