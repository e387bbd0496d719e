package portal

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// registerAction posts one step of the registration form.
func (b *browser) registerAction(action string, fields ...string) *httptest.ResponseRecorder {
	form := url.Values{"action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	return b.post("/register", form)
}

// TestRegistrationHandler walks every step: the address, a wrong code,
// the right one, a password that breaks the rules, and the account made
// and logged in, its flow gone.
func TestRegistrationHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()

	rec := b.get("/register")
	wantPage(t, rec, http.StatusOK, Dutch, "register.title", "register.send", "register.later")
	if !strings.Contains(rec.Body.String(), `name="email"`) || strings.Contains(rec.Body.String(), `name="code"`) {
		t.Fatalf("the first step is not the address:\n%s", rec.Body)
	}

	wantRedirect(t, b.registerAction("send", "email", "Anna@Example.nl"), "/register?sent=1")
	if _, ok := b.cookies[flowCookie]; !ok {
		t.Fatal("the registration got no flow cookie")
	}
	code := h.mail.lastCode(t, "anna@example.nl")
	msgs := h.mail.messages()
	want := mail.VerificationCodeMessage(mail.LangNL, "anna@example.nl", code, string(account.PurposeRegister), account.CodeValidity)
	if len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("sent %+v, want the code message %+v", msgs, want)
	}
	rec = b.get("/register?sent=1")
	wantPage(t, rec, http.StatusOK, Dutch, "code.sent", "register.verify", "register.resend", "register.change")
	if !strings.Contains(rec.Body.String(), "anna@example.nl") || !strings.Contains(rec.Body.String(), `autocomplete="one-time-code"`) {
		t.Fatalf("the code step does not show the address and the code field:\n%s", rec.Body)
	}

	wantPage(t, b.registerAction("verify", "code", otherCode(code)), http.StatusBadRequest, Dutch, "code.wrong", "errors.summary")
	wantRedirect(t, b.registerAction("verify", "code", code), "/register?verified=1")
	rec = b.get("/register?verified=1")
	wantPage(t, rec, http.StatusOK, Dutch, "code.verified", "register.verified", "register.create")
	if !strings.Contains(rec.Body.String(), `autocomplete="new-password"`) || !strings.Contains(rec.Body.String(), `name="name"`) {
		t.Fatalf("the last step lacks its fields:\n%s", rec.Body)
	}

	wantPage(t, b.registerAction("create", "password", "kort", "password2", "kort", "name", "Anna de Vries"),
		http.StatusBadRequest, Dutch, "password.too_short")
	wantPage(t, b.registerAction("create", "password", testPassword, "password2", testPassword+"x", "name", "Anna de Vries"),
		http.StatusBadRequest, Dutch, "password.mismatch")
	wantPage(t, b.registerAction("create", "password", testPassword, "password2", testPassword, "name", ""),
		http.StatusBadRequest, Dutch, "field.name.invalid")
	if _, err := h.accounts.AccountByEmail("anna@example.nl"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused last step made the account: %v", err)
	}

	flow := b.cookies[flowCookie].Value
	wantRedirect(t, b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Anna de Vries"), "/dashboard")
	a, err := h.accounts.AccountByEmail("anna@example.nl")
	if err != nil || a.Name != "Anna de Vries" || a.Lang != "nl" {
		t.Fatalf("the account made: %+v, %v", a, err)
	}
	if _, err := h.accounts.Authenticate(context.Background(), "anna@example.nl", testPassword); err != nil {
		t.Fatalf("the chosen password does not open the account: %v", err)
	}
	if s, err := h.sessions.Lookup(b.session()); err != nil || s.AccountID != a.ID {
		t.Fatalf("the new account is not logged in: %+v, %v", s, err)
	}
	if _, ok := b.cookies[flowCookie]; ok {
		t.Error("the flow cookie outlives the registration")
	}
	if _, err := h.accounts.Flow(flowKey(flow)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the finished flow is still stored: %v", err)
	}
	// A replayed last step makes nothing more.
	b.cookies[flowCookie] = &http.Cookie{Name: flowCookie, Value: flow}
	wantPage(t, b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Anna de Vries"),
		http.StatusConflict, Dutch, "form.outofstep")
}

// otherCode is a code of the same form that is not code.
func otherCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestRegistrationResendChangeCancel: a resent code replaces the first;
// changing the address goes back to the first step with the address
// kept; cancelling forgets the flow.
func TestRegistrationResendChangeCancel(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	first := h.mail.lastCode(t, "anna@example.nl")

	wantRedirect(t, b.registerAction("resend"), "/register?sent=1")
	if n := len(h.mail.messages()); n != 2 {
		t.Fatalf("%d messages after a resend, want 2", n)
	}
	if second := h.mail.lastCode(t, "anna@example.nl"); second != first {
		wantPage(t, b.registerAction("verify", "code", first), http.StatusBadRequest, Dutch, "code.wrong")
	}

	wantRedirect(t, b.registerAction("change"), "/register")
	rec := b.get("/register")
	wantPage(t, rec, http.StatusOK, Dutch, "register.send")
	if !strings.Contains(rec.Body.String(), `value="anna@example.nl"`) || strings.Contains(rec.Body.String(), `name="code"`) {
		t.Fatalf("changing the address did not go back to the address step with it filled in:\n%s", rec.Body)
	}
	wantRedirect(t, b.registerAction("send", "email", "anna.devries@example.nl"), "/register?sent=1")
	h.mail.lastCode(t, "anna.devries@example.nl")
	if !strings.Contains(b.get("/register").Body.String(), "anna.devries@example.nl") {
		t.Fatal("the code step does not show the new address")
	}

	flow := b.cookies[flowCookie].Value
	wantRedirect(t, b.registerAction("cancel"), "/account")
	if _, ok := b.cookies[flowCookie]; ok {
		t.Error("the flow cookie outlives the cancel")
	}
	if _, err := h.accounts.Flow(flowKey(flow)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the cancelled flow is still stored: %v", err)
	}
	if strings.Contains(b.get("/register").Body.String(), `name="code"`) {
		t.Fatal("after a cancel the registration starts at the code step")
	}
}

// TestRegistrationCodeExpires: a code stops working after CodeValidity.
func TestRegistrationCodeExpires(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	code := h.mail.lastCode(t, "anna@example.nl")
	h.advance(account.CodeValidity + time.Second)
	wantPage(t, b.registerAction("verify", "code", code), http.StatusBadRequest, Dutch, "code.expired")
}

// TestRegistrationOfATakenAddress: the address step answers as for a new
// address, but the mail says the account exists and carries no code; an
// account made while a registration was at its last step is not made
// twice.
func TestRegistrationOfATakenAddress(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.browser()
	wantRedirect(t, b.registerAction("send", "email", "jan@example.nl"), "/register?sent=1")
	want := mail.AlreadyRegisteredMessage(mail.LangNL, "jan@example.nl", "https://portal.example.nl/login", "https://portal.example.nl/password/forgot")
	if msgs := h.mail.messages(); len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("sent %+v, want the already-registered message", msgs)
	}

	late := h.browser()
	wantRedirect(t, late.registerAction("send", "email", "kees@example.nl"), "/register?sent=1")
	wantRedirect(t, late.registerAction("verify", "code", h.mail.lastCode(t, "kees@example.nl")), "/register?verified=1")
	first := h.account("kees@example.nl", "Kees Eerst")
	wantPage(t, late.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Kees Later"),
		http.StatusConflict, Dutch, "register.exists")
	if a, err := h.accounts.AccountByEmail("kees@example.nl"); err != nil || a.ID != first.ID || a.Name != "Kees Eerst" {
		t.Fatalf("the account behind the address: %+v, %v", a, err)
	}
	if late.session() != "" {
		t.Fatal("a refused registration logged in")
	}
}

// TestRegistrationRefusals: a bad address, a field the form does not
// have and a step out of turn are refused, and nothing is sent or made.
func TestRegistrationRefusals(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	rec := b.registerAction("send", "email", "geen-adres")
	wantPage(t, rec, http.StatusBadRequest, Dutch, "field.email.invalid", "errors.summary")
	if !strings.Contains(rec.Body.String(), `value="geen-adres"`) {
		t.Error("the typed address is not shown again")
	}
	wantPage(t, b.registerAction("send", "email", "anna@example.nl", "role", "admin"), http.StatusBadRequest, Dutch, "form.unknown")
	wantPage(t, b.registerAction("verify", "code", "123456"), http.StatusConflict, Dutch, "form.outofstep")
	wantPage(t, b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Anna"),
		http.StatusConflict, Dutch, "form.outofstep")
	if msgs := h.mail.messages(); len(msgs) != 0 {
		t.Fatalf("refused steps sent mail: %+v", msgs)
	}
	if as, err := h.accounts.Accounts(); err != nil || len(as) != 0 {
		t.Fatalf("refused steps made accounts: %+v, %v", as, err)
	}
}

// TestRegistrationKeepsTheReturnAddress: an allowed return address given
// with the address step is where the new account goes; a hostile one is
// dropped.
func TestRegistrationKeepsTheReturnAddress(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	for _, tc := range []struct{ email, ret, want string }{
		{"anna@example.nl", "https://apps.example.nl/rie", "https://apps.example.nl/rie"},
		{"bert@example.nl", "https://evil.example/", "/dashboard"},
	} {
		b := h.browser()
		wantRedirect(t, b.registerAction("send", "email", tc.email, "return", tc.ret), "/register?sent=1")
		wantRedirect(t, b.registerAction("verify", "code", h.mail.lastCode(t, tc.email)), "/register?verified=1")
		wantRedirect(t, b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Anna de Vries"), tc.want)
	}
}

// TestRegistrationWhileTheMailServerFails: the person stays at the
// address step with the address kept and is offered a new code; the
// failed sends do not count toward the send limit.
func TestRegistrationWhileTheMailServerFails(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.mail.failWith(errors.New("connection refused"))
	b := h.browser()
	rec := b.registerAction("send", "email", "anna@example.nl")
	wantPage(t, rec, http.StatusServiceUnavailable, Dutch, "mail.failed", "register.resend")
	if !strings.Contains(rec.Body.String(), `value="anna@example.nl"`) {
		t.Fatalf("the address is lost:\n%s", rec.Body)
	}
	// Failed sends use none of the address's codes.
	for range account.CodeSendLimit {
		wantPage(t, b.registerAction("send", "email", "anna@example.nl"), http.StatusServiceUnavailable, Dutch, "mail.failed")
	}
	h.mail.failWith(nil)
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	h.mail.lastCode(t, "anna@example.nl")
	for i := 1; i < account.CodeSendLimit; i++ {
		wantRedirect(t, b.registerAction("resend"), "/register?sent=1")
	}
	if n := len(h.mail.messages()); n != account.CodeSendLimit {
		t.Fatalf("%d codes sent after the mail server came back, want %d", n, account.CodeSendLimit)
	}
}

// TestRegistrationCodeLimits: a code dies after MaxCodeAttempts wrong
// tries; wrong codes for the address count on across new codes, and at
// MaxCodeGuesses even the right code waits, with 429 and Retry-After.
func TestRegistrationCodeLimits(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	code := h.mail.lastCode(t, "anna@example.nl")
	for i := 1; i < account.MaxCodeAttempts; i++ {
		wantPage(t, b.registerAction("verify", "code", otherCode(code)), http.StatusBadRequest, Dutch, "code.wrong")
	}
	wantPage(t, b.registerAction("verify", "code", otherCode(code)), http.StatusBadRequest, Dutch, "code.exhausted")
	wantPage(t, b.registerAction("verify", "code", code), http.StatusBadRequest, Dutch, "code.expired")

	wantRedirect(t, b.registerAction("resend"), "/register?sent=1")
	code = h.mail.lastCode(t, "anna@example.nl")
	for i := account.MaxCodeAttempts + 1; i < account.MaxCodeGuesses; i++ {
		wantPage(t, b.registerAction("verify", "code", otherCode(code)), http.StatusBadRequest, Dutch, "code.wrong")
	}
	for _, typed := range []string{otherCode(code), code} {
		rec := b.registerAction("verify", "code", typed)
		wantPage(t, rec, http.StatusTooManyRequests, Dutch, "code.guesslimit")
		if rec.Header().Get("Retry-After") == "" {
			t.Error("no Retry-After with the guess limit")
		}
	}
	if strings.Contains(b.get("/register").Body.String(), `autocomplete="new-password"`) {
		t.Fatal("the right code was taken during the guess limit")
	}
}

// TestRegistrationSendLimit: the sixth code for an address within the
// window is refused with 429, Retry-After and a wait in minutes, and is
// not sent.
func TestRegistrationSendLimit(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	for i := 1; i < account.CodeSendLimit; i++ {
		wantRedirect(t, b.registerAction("resend"), "/register?sent=1")
	}
	rec := b.registerAction("resend")
	wantPage(t, rec, http.StatusTooManyRequests, Dutch, "code.limited")
	if got := rec.Header().Get("Retry-After"); got != "600" {
		t.Errorf("Retry-After %q, want 600", got)
	}
	if !strings.Contains(rec.Body.String(), strings.ReplaceAll(Dutch.T("wait.minutes"), "{n}", "10")) {
		t.Errorf("the wait is not said in minutes:\n%s", rec.Body)
	}
	if n := len(h.mail.messages()); n != account.CodeSendLimit {
		t.Fatalf("%d codes sent, want %d", n, account.CodeSendLimit)
	}
	h.advance(account.CodeSendWindow)
	wantRedirect(t, b.registerAction("resend"), "/register?sent=1")
}

// TestRegistrationFlowExpires: a registration left for longer than
// flowLifetime starts again at the address step.
func TestRegistrationFlowExpires(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	wantRedirect(t, b.registerAction("verify", "code", h.mail.lastCode(t, "anna@example.nl")), "/register?verified=1")
	h.advance(flowLifetime)
	wantPage(t, b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Anna de Vries"),
		http.StatusConflict, Dutch, "form.outofstep", "register.send")
	if _, err := h.accounts.AccountByEmail("anna@example.nl"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an expired registration made the account: %v", err)
	}
}

// TestRegistrationInEnglish: a person who chose English gets the code in
// English and an account that remembers the language.
func TestRegistrationInEnglish(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	wantPage(t, b.get("/register?lang=en"), http.StatusOK, English, "register.title", "register.send")
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	code := h.mail.lastCode(t, "anna@example.nl")
	want := mail.VerificationCodeMessage(mail.LangEN, "anna@example.nl", code, string(account.PurposeRegister), account.CodeValidity)
	if msgs := h.mail.messages(); len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("sent %+v, want the English code message", msgs)
	}
	wantPage(t, b.registerAction("verify", "code", otherCode(code)), http.StatusBadRequest, English, "code.wrong")
	wantRedirect(t, b.registerAction("verify", "code", code), "/register?verified=1")
	wantRedirect(t, b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Anna de Vries"), "/dashboard")
	if a, err := h.accounts.AccountByEmail("anna@example.nl"); err != nil || a.Lang != "en" {
		t.Fatalf("the account: %+v, %v", a, err)
	}
}
