package portal

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// maxPasswordInput caps a typed password before any work is done with it;
// the password rules allow 128 characters, which is at most 512 bytes.
const maxPasswordInput = 4 * account.MaxPasswordLength

func (p *Portal) loginPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	ret := p.returnTarget(r, r.URL.Query().Get("return"))
	if _, _, ok := p.currentUser(r); ok {
		http.Redirect(w, r, orDashboard(ret), http.StatusSeeOther)
		return
	}
	v := &view{Lang: lang, Title: "login.title", CSRF: csrfToken(w, r), Return: ret}
	switch {
	case r.URL.Query().Get("loggedout") == "1":
		v.Notice = lang.T("login.loggedout")
	case r.URL.Query().Get("factor") == "expired":
		v.Notice = lang.T("mfa.step.expired")
	}
	p.pages.render(w, r, http.StatusOK, "login", v)
}

func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	email := r.PostFormValue("email")
	password := r.PostFormValue("password")
	ret := p.returnTarget(r, r.PostFormValue("return"))
	v := &view{Lang: lang, Title: "login.title", CSRF: csrfToken(w, r), Return: ret,
		Values: map[string]string{"email": email}, Errors: map[string]string{}}

	switch {
	case len(email) > account.MaxEmailLength || !utf8.ValidString(email):
		v.Values["email"] = ""
		v.Errors["email"] = lang.T("field.toolong")
	case email == "":
		v.Errors["email"] = lang.T("field.email.invalid")
	}
	switch {
	case len(password) > maxPasswordInput:
		v.Errors["password"] = lang.T("field.toolong")
	case password == "":
		v.Errors["password"] = lang.T("field.password.empty")
	}
	if len(v.Errors) > 0 {
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "login", v)
		return
	}

	// Regulation is keyed by what was typed, normalised, whether or not
	// an account has that address, so refusals reveal nothing.
	key := strings.ToLower(strings.TrimSpace(email))
	ip := p.clientIP(r)
	if wait, err := p.cfg.Limits.LoginWait(key, ip); err != nil {
		p.serverError(w, r, lang, "login regulation", err)
		return
	} else if wait > 0 {
		p.record(r, observe.Event{Kind: observe.Login, Outcome: "locked"})
		p.loginRefused(w, r, v, wait)
		return
	}
	a, err := p.cfg.Accounts.Authenticate(r.Context(), email, password)
	if err == nil && p.cfg.Factors != nil && a.HasSecondFactor() {
		// The password's failures are cleared only once the second
		// factor passes: a known password must not reset the count of
		// code guesses.
		p.record(r, observe.Event{Kind: observe.Login, Outcome: "second_factor", Actor: a.ID})
		p.askSecondFactor(w, r, lang, a, key, ret)
		return
	}
	if err == nil {
		// A password changed while it was being checked no longer opens
		// the account: that login failed.
		if err = p.logIn(w, r, a); errors.Is(err, storage.ErrStale) {
			p.logger.Info("login refused: the credentials changed while they were checked", zap.String("account", a.ID))
			err = account.ErrInvalidCredentials
		}
	}
	if errors.Is(err, account.ErrInvalidCredentials) {
		wait, lerr := p.cfg.Limits.LoginFailed(key, ip)
		if lerr != nil {
			p.serverError(w, r, lang, "login regulation", lerr)
			return
		}
		p.logger.Info("login failed", zap.String("remote", ip))
		failed := observe.Event{Kind: observe.Login, Outcome: "wrong"}
		if wait > 0 {
			failed.Reason = "lockout_started"
		}
		p.record(r, failed)
		if wait > 0 {
			p.loginRefused(w, r, v, wait)
			return
		}
		v.FormError = lang.T("login.failed")
		p.pages.render(w, r, http.StatusUnauthorized, "login", v)
		return
	}
	if errors.Is(err, account.ErrBusy) {
		p.record(r, observe.Event{Kind: observe.Login, Outcome: "busy"})
	}
	if err != nil {
		p.serverError(w, r, lang, "login", err)
		return
	}
	if err := p.cfg.Limits.LoginSucceeded(key); err != nil {
		p.logger.Warn("clearing login failures", zap.Error(err))
	}
	p.logger.Info("login", zap.String("account", a.ID), zap.String("remote", ip))
	p.record(r, observe.Event{Kind: observe.Login, Outcome: "ok", Actor: a.ID})
	p.afterLogin(w, r, lang, a, ret)
}

// logIn starts a session for the account and ends the one the request
// presented, so logging in again leaves this browser one session, not two.
// storage.ErrStale means the account's credentials changed since it was read.
func (p *Portal) logIn(w http.ResponseWriter, r *http.Request, a storage.Account) error {
	return p.logInWith(w, r, a, amrPassword)
}

// logInWith is logIn recording how the person proved who they are.
func (p *Portal) logInWith(w http.ResponseWriter, r *http.Request, a storage.Account, amr []string) error {
	if c, err := r.Cookie(p.cfg.Cookie.Name); err == nil {
		if err := p.cfg.Sessions.Revoke(c.Value); err != nil {
			return err
		}
	}
	return p.startSession(w, r, a, amr)
}

func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	if c, err := r.Cookie(p.cfg.Cookie.Name); err == nil {
		actor, _ := p.cfg.Sessions.Lookup(c.Value)
		if err := p.cfg.Sessions.Revoke(c.Value); err != nil {
			p.serverError(w, r, lang, "ending a session", err)
			return
		}
		p.record(r, observe.Event{Kind: observe.SessionEnded, Outcome: "logout", Actor: actor.AccountID})
	}
	p.clearSessionCookie(w)
	w.Header().Set("Clear-Site-Data", `"cache", "cookies", "storage"`)
	// Clear-Site-Data also drops the language cookie; keep the language.
	http.Redirect(w, r, "/login?loggedout=1&lang="+string(lang), http.StatusSeeOther)
}

// loginRefused answers a login during a lockout, the same way for every
// address.
func (p *Portal) loginRefused(w http.ResponseWriter, r *http.Request, v *view, wait time.Duration) {
	p.logger.Warn("login refused during lockout", zap.String("remote", p.clientIP(r)), zap.Duration("wait", wait))
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	v.FormError = v.Lang.T("login.locked") + " " + minutes(v.Lang, wait)
	p.pages.render(w, r, http.StatusTooManyRequests, "login", v)
}

// formExpired answers a post without a valid anti-forgery token.
func (p *Portal) formExpired(w http.ResponseWriter, r *http.Request, lang Lang) {
	p.logger.Warn("form post without a valid token", zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
	p.pages.render(w, r, http.StatusForbidden, "error", &view{Lang: lang, Title: "error.title", Data: lang.T("form.expired")})
}

func orDashboard(ret string) string {
	if ret == "" {
		return "/dashboard"
	}
	return ret
}
