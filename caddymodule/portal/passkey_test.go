package portal

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Passkey ceremonies need an authenticator; browser_passkey_test.go runs
// them in Chromium. These tests check what needs none: who may begin one,
// that its challenge is answered once, and the forms' refusals.

// ceremonyOptions begins a ceremony at path and returns its publicKey
// options.
func ceremonyOptions(t *testing.T, b *browser, path string, form url.Values) map[string]any {
	t.Helper()
	pk, _ := ceremony(t, b, path, form)
	return pk
}

// ceremony begins a ceremony at path and returns its publicKey options
// and the token the answer is posted with.
func ceremony(t *testing.T, b *browser, path string, form url.Values) (map[string]any, string) {
	t.Helper()
	rec := b.post(path, form)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("begin %s: %d %s\n%s", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var options struct {
		Ceremony  string         `json:"ceremony"`
		PublicKey map[string]any `json:"publicKey"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &options); err != nil {
		t.Fatal(err)
	}
	return options.PublicKey, options.Ceremony
}

func TestPasskeyRegistrationAsksForADiscoverableVerifiedPasskey(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	pk := ceremonyOptions(t, b, passkeyRegisterPath+beginSuffix, nil)
	sel, _ := pk["authenticatorSelection"].(map[string]any)
	if sel["residentKey"] != "required" || sel["userVerification"] != "required" {
		t.Fatalf("authenticator selection %v, want a resident key and user verification required", sel)
	}
	rp, _ := pk["rp"].(map[string]any)
	if rp["id"] != "portal.example.nl" {
		t.Fatalf("relying party %v, want the portal's host", rp)
	}
	// A stranger cannot begin one, nor a form without its token.
	if rec := h.browser().post(passkeyRegisterPath+beginSuffix, nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("begin without a session: %d", rec.Code)
	}
	if rec := b.post(passkeyRegisterPath+beginSuffix, url.Values{"csrf": {"forged"}}); rec.Code != http.StatusForbidden {
		t.Fatalf("begin with a forged token: %d", rec.Code)
	}
}

func TestPasskeyCeremonyIsAnsweredOnce(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	_, token := ceremony(t, b, passkeyRegisterPath+beginSuffix, nil)
	flow := flowKey(token)
	if f, err := h.accounts.Flow(flow); err != nil || f.Purpose != purposePasskeyRegister || len(f.Ceremony) == 0 {
		t.Fatalf("no ceremony kept: %+v %v", f, err)
	}
	rec := b.post(passkeyRegisterPath, url.Values{"name": {"Laptop"}, "credential": {`{"id":"x"}`}, "ceremony": {token}})
	wantPage(t, rec, http.StatusBadRequest, Dutch, "mfa.passkey.failed")
	if _, err := h.accounts.Flow(flow); err == nil {
		t.Fatal("a refused answer left the ceremony to be answered again")
	}
	// A login page in another tab leaves a registration in progress alone.
	reg := h.browser()
	wantRedirect(t, reg.post("/register", url.Values{"action": {"send"}, "email": {"bob@example.nl"}}), "/register?sent=1")
	ceremony(t, reg, passkeyLoginPath+beginSuffix, url.Values{"mediation": {"conditional"}})
	wantPage(t, reg.get("/register?sent=1"), http.StatusOK, Dutch, "register.verify")
}

func TestPasskeyFormsAnswerBadInput(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	ceremonyOptions(t, b, passkeyRegisterPath+beginSuffix, nil)
	wantPage(t, b.post(passkeyRegisterPath, url.Values{"name": {" "}, "credential": {"{}"}}), http.StatusBadRequest, Dutch, "mfa.passkey.noname")
	wantPage(t, b.post(passkeyRegisterPath, url.Values{"name": {strings.Repeat("é", account.MaxPasskeyName+1)}, "credential": {"{}"}}), http.StatusBadRequest, Dutch, "field.toolong")
	wantPage(t, b.post(passkeyRegisterPath, url.Values{"name": {"Laptop"}, "credential": {"{}"}, "admin": {"1"}}), http.StatusBadRequest, Dutch, "form.unknown")
	wantPage(t, b.post(passkeyRegisterPath, url.Values{"name": {"Laptop"}, "credential": {strings.Repeat("x", maxCredentialInput+1)}}), http.StatusBadRequest, Dutch, "mfa.passkey.failed")
	// The second-factor ceremony needs a pending login with a passkey.
	if rec := h.browser().post(passkeyStepPath+beginSuffix, nil); rec.Code != http.StatusConflict {
		t.Fatalf("a passkey step without a pending login: %d", rec.Code)
	}
}

func TestRemovingAPasskeyOnTheSecurityPage(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyOff)
	anna := h.account("anna@example.nl", "Anna de Vries")
	if _, err := h.store.UpdateAccount(anna.ID, func(a *storage.Account) error {
		a.Passkeys = []storage.Passkey{{ID: []byte("cred-1"), PublicKey: []byte("pk"), Name: "Telefoon", CreatedAt: time.Now()}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	rec := b.get(factorStepPath)
	wantPage(t, rec, http.StatusOK, Dutch, "mfa.step.passkey")

	// Signed in elsewhere (the record has no real key), the owner sees
	// and removes it.
	s := h.loggedInAs(anna)
	page := s.get(securityPath).Body.String()
	if !strings.Contains(page, "Telefoon") || !strings.Contains(page, `value="passkey:`+passkeyRef([]byte("cred-1"))+`"`) {
		t.Fatalf("the passkey is not listed for removal:\n%s", page)
	}
	wantRedirect(t, s.post(securityPath, url.Values{"action": {"remove"}, "factor": {"passkey:" + passkeyRef([]byte("cred-1"))}, "password": {testPassword}}), securityPath+"?done=removed")
	if a, _ := h.accounts.Account(anna.ID); len(a.Passkeys) != 0 {
		t.Fatal("the passkey was not removed")
	}
	wantPage(t, s.post(securityPath, url.Values{"action": {"remove"}, "factor": {"passkey:bm9uZQ"}, "password": {testPassword}}), http.StatusBadRequest, Dutch, "mfa.remove.unknown")
}

// loggedInAs gives a browser a session of the account directly, as a
// login with a password and a second factor would.
func (h *portalHarness) loggedInAs(a storage.Account) *browser {
	h.t.Helper()
	raw, _, err := h.sessions.Create(a, session.Start{AMR: amrTOTP})
	if err != nil {
		h.t.Fatal(err)
	}
	b := h.browser()
	b.cookies[sessionCookieName] = &http.Cookie{Name: sessionCookieName, Value: raw}
	return b
}

func TestPasskeysAreForTheConfiguredRelyingParty(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t, func(c *Config) {
		c.Factors = &account.Factors{Store: c.Accounts.Store, Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "Wij Techniek", Now: c.Now}
		c.PasskeyRPID = "example.nl"
	})
	h.account("anna@example.nl", "Anna de Vries")
	pk := ceremonyOptions(t, h.loggedIn("anna@example.nl"), passkeyRegisterPath+beginSuffix, nil)
	if rp, _ := pk["rp"].(map[string]any); rp["id"] != "example.nl" {
		t.Fatalf("relying party %v, want the configured example.nl", rp)
	}
	login := ceremonyOptions(t, h.browser(), passkeyLoginPath+beginSuffix, nil)
	if login["rpId"] != "example.nl" || login["userVerification"] != "required" {
		t.Fatalf("login options %v, want rpId example.nl and user verification required", login)
	}
}
