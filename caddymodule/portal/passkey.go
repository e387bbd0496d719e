package portal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Passkey ceremonies: each begins with a challenge kept in a flow for
// ceremonyLifetime and is answered once. A passkey login verified the
// person on their device, so it counts as both factors.
const (
	passkeyRegisterPath = securityPath + "/passkey"
	passkeyLoginPath    = "/login/passkey"
	passkeyStepPath     = factorStepPath + "/passkey"
	beginSuffix         = "/begin"

	purposePasskeyRegister = "passkey-register"
	purposePasskeyLogin    = "passkey-login"

	ceremonyLifetime = 5 * time.Minute
	// maxCredentialInput bounds a browser's answer; without attestation
	// it is well under 2 KiB.
	maxCredentialInput = 8 << 10
)

// amrPasskey is a passkey login; amrPasswordPasskey a password with a
// passkey as its second factor.
var (
	amrPasskey         = []string{"hwk", "user", "mfa"}
	amrPasswordPasskey = []string{"pwd", "hwk", "mfa"}
)

// relyingParty is the WebAuthn relying party of the portal's public
// origin: the configured portal URL, else the address the request came
// to. The RP ID is passkey_rp_id, else that origin's host.
func (p *Portal) relyingParty(r *http.Request) (*webauthn.WebAuthn, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	origin, err := url.Parse(p.cfg.Returns.PortalURL(scheme, r.Host, ""))
	if err != nil {
		return nil, err
	}
	rpID := origin.Hostname()
	if p.cfg.PasskeyRPID != "" {
		rpID = p.cfg.PasskeyRPID
	}
	return webauthn.New(&webauthn.Config{
		RPID: rpID, RPDisplayName: "Wij Techniek",
		RPOrigins:              []string{origin.Scheme + "://" + origin.Host},
		AuthenticatorSelection: account.PasskeySelection,
	})
}

// newCeremony keeps a ceremony's state in a flow of its own and returns
// the token the browser posts back with its answer. The token travels in
// the page, not in the flow cookie, so a login page open in another tab
// does not end a registration or reset in progress; the answer itself is
// the proof, bound to this site by the browser.
func (p *Portal) newCeremony(purpose, accountID string, state *webauthn.SessionData) (string, error) {
	raw, err := json.Marshal(state)
	if err != nil {
		return "", err
	}
	token := rand.Text()
	now := p.now()
	return token, p.cfg.Accounts.SaveFlow(storage.Flow{ID: flowKey(token), Purpose: purpose, AccountID: accountID,
		Stage: stageCode, Ceremony: raw, CreatedAt: now, ExpiresAt: now.Add(ceremonyLifetime)})
}

// takeCeremony ends the ceremony the form names and returns its state:
// whatever the answer, a challenge is answered once.
func (p *Portal) takeCeremony(r *http.Request, purpose string) (storage.Flow, webauthn.SessionData, error) {
	var state webauthn.SessionData
	token := r.PostFormValue("ceremony")
	if len(token) != 26 {
		return storage.Flow{}, state, storage.ErrNotFound
	}
	f, err := p.cfg.Accounts.Flow(flowKey(token))
	if err != nil {
		return storage.Flow{}, state, err
	}
	if err := p.cfg.Accounts.EndFlow(f.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.Flow{}, state, err
	}
	if f.Purpose != purpose || len(f.Ceremony) == 0 || !p.now().Before(f.ExpiresAt) {
		return storage.Flow{}, state, storage.ErrNotFound
	}
	return f, state, json.Unmarshal(f.Ceremony, &state)
}

// writeCeremony answers a begin request with the options for the
// browser's navigator.credentials call, and the ceremony's token.
func writeCeremony(w http.ResponseWriter, token string, options any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ceremony": token, "publicKey": options})
}

// ceremonyRefused answers a begin request that cannot start.
func (p *Portal) ceremonyRefused(w http.ResponseWriter, r *http.Request, status int, what string, err error) {
	p.logger.Info("passkey ceremony refused", zap.String("what", what), zap.String("path", r.URL.Path), zap.Error(err))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": what})
}

// credentialField reads the browser's answer from a form.
func credentialField(r *http.Request) ([]byte, bool) {
	raw := r.PostFormValue("credential")
	return []byte(raw), raw != "" && len(raw) <= maxCredentialInput && utf8.ValidString(raw)
}

// passkeyRegisterBegin starts registering a passkey for the logged-in
// account; its existing passkeys are excluded.
func (p *Portal) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	if !csrfValid(r) {
		p.ceremonyRefused(w, r, http.StatusForbidden, "form expired", nil)
		return
	}
	a, _, err := p.user(r)
	if err != nil {
		p.ceremonyRefused(w, r, http.StatusUnauthorized, "not signed in", err)
		return
	}
	if len(a.Passkeys) >= account.MaxPasskeys {
		p.ceremonyRefused(w, r, http.StatusConflict, "too many passkeys", account.ErrTooManyPasskey)
		return
	}
	rp, err := p.relyingParty(r)
	if err != nil {
		p.ceremonyRefused(w, r, http.StatusInternalServerError, "relying party", err)
		return
	}
	user := account.PasskeyUser{Account: a}
	var exclude []protocol.CredentialDescriptor
	for _, c := range user.WebAuthnCredentials() {
		exclude = append(exclude, c.Descriptor())
	}
	options, state, err := rp.BeginRegistration(user, webauthn.WithAuthenticatorSelection(account.PasskeySelection), webauthn.WithExclusions(exclude))
	var token string
	if err == nil {
		token, err = p.newCeremony(purposePasskeyRegister, a.ID, state)
	}
	if err != nil {
		p.ceremonyRefused(w, r, http.StatusServiceUnavailable, "starting a registration", err)
		return
	}
	writeCeremony(w, token, options.Response)
}

// passkeyRegister keeps the passkey the browser made, under the name the
// person typed.
func (p *Portal) passkeyRegister(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, _, ok := p.signedIn(w, r, securityPath)
	if !ok {
		return
	}
	v, err := p.securityView(w, r, lang, a)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return
	}
	if err := parseForm(r, "name", "credential", "ceremony"); err != nil {
		p.logger.Info("passkey form refused", zap.Error(err), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	}
	name := strings.Join(strings.Fields(r.PostFormValue("name")), " ")
	switch {
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > account.MaxPasskeyName:
		v.Errors["name"] = lang.T("field.toolong")
	case name == "":
		v.Errors["name"] = lang.T("mfa.passkey.noname")
	}
	if len(v.Errors) > 0 {
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	}
	f, state, err := p.takeCeremony(r, purposePasskeyRegister)
	raw, okRaw := credentialField(r)
	if err != nil || f.AccountID != a.ID || !okRaw {
		p.passkeyFailed(w, r, v, "security", "no ceremony or answer", err)
		return
	}
	rp, err := p.relyingParty(r)
	if err != nil {
		p.serverError(w, r, lang, "building the relying party", err)
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(raw)
	var cred *webauthn.Credential
	if err == nil {
		cred, err = rp.CreateCredential(account.PasskeyUser{Account: a}, state, parsed)
	}
	if err != nil {
		p.passkeyFailed(w, r, v, "security", "registration answer refused", err)
		return
	}
	if _, err := p.cfg.Factors.AddPasskey(a.ID, cred, name); errors.Is(err, account.ErrPasskeyExists) || errors.Is(err, account.ErrTooManyPasskey) {
		p.passkeyFailed(w, r, v, "security", "passkey not added", err)
		return
	} else if err != nil {
		p.serverError(w, r, lang, "adding a passkey", err)
		return
	}
	p.logger.Info("passkey added", zap.String("account", a.ID))
	p.record(r, observe.Event{Kind: observe.FactorChanged, Outcome: "added", Reason: "passkey", Actor: a.ID})
	http.Redirect(w, r, securityPath+"?done=passkey", http.StatusSeeOther)
}

// passkeyFailed shows page again saying the passkey did not work, and
// tells the operator why.
func (p *Portal) passkeyFailed(w http.ResponseWriter, r *http.Request, v *view, page, what string, err error) {
	p.logger.Info("passkey refused: "+what, zap.String("path", r.URL.Path), zap.String("remote", p.clientIP(r)), zap.Error(err))
	v.FormError = v.Lang.T("mfa.passkey.failed")
	p.pages.render(w, r, http.StatusBadRequest, page, v)
}

// passkeyLoginBegin starts a passwordless login: any of the site's
// passkeys may answer (the passkey names its account). With
// mediation=conditional the browser offers them in the email field's
// autofill.
func (p *Portal) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	if !csrfValid(r) {
		p.ceremonyRefused(w, r, http.StatusForbidden, "form expired", nil)
		return
	}
	rp, err := p.relyingParty(r)
	if err != nil {
		p.ceremonyRefused(w, r, http.StatusInternalServerError, "relying party", err)
		return
	}
	mediation := protocol.MediationDefault
	if r.PostFormValue("mediation") == "conditional" {
		mediation = protocol.MediationConditional
	}
	options, state, err := rp.BeginDiscoverableMediatedLogin(mediation, webauthn.WithUserVerification(protocol.VerificationRequired))
	var token string
	if err == nil {
		token, err = p.newCeremony(purposePasskeyLogin, "", state)
	}
	if err != nil {
		p.ceremonyRefused(w, r, http.StatusServiceUnavailable, "starting a passkey login", err)
		return
	}
	writeCeremony(w, token, options.Response)
}

// passkeyLogin signs in with the passkey the browser answered with.
func (p *Portal) passkeyLogin(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	ret := p.returnTarget(r, r.PostFormValue("return"))
	v := &view{Lang: lang, Title: "login.title", CSRF: csrfToken(w, r), Return: ret}
	if err := parseForm(r, "credential", "ceremony", "return"); err != nil {
		p.logger.Info("passkey login form refused", zap.Error(err), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "login", v)
		return
	}
	_, state, err := p.takeCeremony(r, purposePasskeyLogin)
	raw, okRaw := credentialField(r)
	if err != nil || !okRaw {
		p.passkeyFailed(w, r, v, "login", "no ceremony or answer", err)
		return
	}
	rp, err := p.relyingParty(r)
	if err != nil {
		p.serverError(w, r, lang, "building the relying party", err)
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(raw)
	var cred *webauthn.Credential
	var owner webauthn.User
	if err == nil {
		owner, cred, err = rp.ValidatePasskeyLogin(func(_, userHandle []byte) (webauthn.User, error) {
			a, err := p.cfg.Accounts.Account(string(userHandle))
			if err != nil || a.Disabled {
				return nil, errors.Join(errors.New("no account for this passkey"), err)
			}
			return account.PasskeyUser{Account: a}, nil
		}, state, parsed)
	}
	if err != nil {
		p.passkeyFailed(w, r, v, "login", "login answer refused", err)
		return
	}
	a, err := p.cfg.Factors.UsePasskey(owner.(account.PasskeyUser).Account.ID, cred)
	if errors.Is(err, account.ErrPasskeyCloned) || errors.Is(err, account.ErrNoSuchFactor) {
		p.passkeyFailed(w, r, v, "login", "passkey not usable", err)
		return
	} else if err != nil {
		p.serverError(w, r, lang, "recording a passkey's use", err)
		return
	}
	if err := p.logInWith(w, r, a, amrPasskey); err != nil {
		p.serverError(w, r, lang, "starting a session", err)
		return
	}
	p.logger.Info("login", zap.String("account", a.ID), zap.Strings("amr", amrPasskey), zap.String("remote", p.clientIP(r)))
	p.record(r, observe.Event{Kind: observe.Login, Outcome: "ok", Reason: "passkey", Actor: a.ID})
	p.afterLogin(w, r, lang, a, ret)
}

// passkeyStepBegin starts a passkey assertion as the second factor of the
// pending login: only that account's passkeys may answer. The challenge
// is kept in the pending login's flow.
func (p *Portal) passkeyStepBegin(w http.ResponseWriter, r *http.Request) {
	if !csrfValid(r) {
		p.ceremonyRefused(w, r, http.StatusForbidden, "form expired", nil)
		return
	}
	f, a, err := p.pendingLoginOf(r)
	if err != nil || len(a.Passkeys) == 0 {
		p.ceremonyRefused(w, r, http.StatusConflict, "no pending login with a passkey", err)
		return
	}
	rp, err := p.relyingParty(r)
	if err != nil {
		p.ceremonyRefused(w, r, http.StatusInternalServerError, "relying party", err)
		return
	}
	options, state, err := rp.BeginLogin(account.PasskeyUser{Account: a}, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err == nil {
		f.Ceremony, err = json.Marshal(state)
	}
	if err == nil {
		err = p.cfg.Accounts.SaveFlow(f)
	}
	if err != nil {
		p.ceremonyRefused(w, r, http.StatusServiceUnavailable, "starting a passkey step", err)
		return
	}
	writeCeremony(w, "", options.Response)
}

// passkeyStep checks the passkey answer of the pending login.
func (p *Portal) passkeyStep(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	f, a, ok := p.pendingLogin(w, r, lang)
	if !ok {
		return
	}
	v := p.factorStepView(w, r, lang, a)
	if err := parseForm(r, "credential"); err != nil {
		p.logger.Info("passkey step form refused", zap.Error(err), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "secondfactor", v)
		return
	}
	var state webauthn.SessionData
	ceremony := f.Ceremony
	f.Ceremony = nil
	if err := p.cfg.Accounts.SaveFlow(f); err != nil {
		p.serverError(w, r, lang, "saving a pending login", err)
		return
	}
	raw, okRaw := credentialField(r)
	if len(ceremony) == 0 || !okRaw || json.Unmarshal(ceremony, &state) != nil {
		p.passkeyFailed(w, r, v, "secondfactor", "no ceremony or answer", nil)
		return
	}
	rp, err := p.relyingParty(r)
	if err != nil {
		p.serverError(w, r, lang, "building the relying party", err)
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(raw)
	var cred *webauthn.Credential
	if err == nil {
		cred, err = rp.ValidateLogin(account.PasskeyUser{Account: a}, state, parsed)
	}
	if err == nil {
		a, err = p.cfg.Factors.UsePasskey(a.ID, cred)
	}
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrStorageFull) {
		p.serverError(w, r, lang, "recording a passkey's use", err)
		return
	}
	if err != nil {
		p.passkeyFailed(w, r, v, "secondfactor", "passkey step refused", err)
		return
	}
	p.finishLogin(w, r, lang, f, a, amrPasswordPasskey, "passkey")
}

// pendingLoginOf is pendingLogin for a script's request: no redirect.
func (p *Portal) pendingLoginOf(r *http.Request) (storage.Flow, storage.Account, error) {
	c, err := r.Cookie(flowCookie)
	if err != nil || len(c.Value) != 26 {
		return storage.Flow{}, storage.Account{}, storage.ErrNotFound
	}
	f, err := p.cfg.Accounts.Flow(flowKey(c.Value))
	if err != nil {
		return storage.Flow{}, storage.Account{}, err
	}
	if f.Purpose != purposeLoginFactor || !p.now().Before(f.ExpiresAt) {
		return storage.Flow{}, storage.Account{}, storage.ErrNotFound
	}
	a, err := p.cfg.Accounts.Account(f.AccountID)
	return f, a, err
}

// passkeyRef names a passkey in a form.
func passkeyRef(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }
