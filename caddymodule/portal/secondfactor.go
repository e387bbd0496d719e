package portal

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// What a session records of how the person proved who they are (RFC 8176
// values). A recovery code is a look-up secret used once, so it counts as
// "otp"; the log says which it was.
var (
	amrPassword = []string{"pwd"}
	amrTOTP     = []string{"pwd", "otp", "mfa"}
)

// amrMFA marks a session that passed a second factor.
const amrMFA = "mfa"

// factorStepPath asks for the second factor of a pending login.
const factorStepPath = "/login/factor"

// purposeLoginFactor is the flow of a login waiting for its second factor.
const purposeLoginFactor = "login-factor"

// factorStepLifetime bounds the time between a right password and its
// second factor.
const factorStepLifetime = 5 * time.Minute

// factorStepData is what the step page shows.
type factorStepData struct {
	TOTP, Passkey, Recovery bool
	// RecoveryOpen unfolds the recovery-code form, after a wrong one.
	RecoveryOpen bool
}

// askSecondFactor parks a login whose password was right until its second
// factor passes: a flow naming the account, bound to this browser by the
// flow cookie, replacing whatever flow the browser had, so only the latest
// login can finish.
func (p *Portal) askSecondFactor(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account, key, ret string) {
	if c, err := r.Cookie(flowCookie); err == nil {
		if err := p.cfg.Accounts.EndFlow(flowKey(c.Value)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.serverError(w, r, lang, "ending the browser's previous flow", err)
			return
		}
	}
	now := p.now()
	f := storage.Flow{Purpose: purposeLoginFactor, AccountID: a.ID, Email: key, Stage: stageCode,
		Return: ret, CreatedAt: now, ExpiresAt: now.Add(factorStepLifetime)}
	if err := p.saveFlow(w, r, &f); err != nil {
		p.serverError(w, r, lang, "saving a pending login", err)
		return
	}
	p.logger.Info("password right; asking the second factor", zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
	http.Redirect(w, r, factorStepPath, http.StatusSeeOther)
}

// pendingLogin returns the browser's login waiting for its second factor
// and its account, or sends the browser back to the login page: a flow
// that expired, finished, was replaced by a newer login or never was.
func (p *Portal) pendingLogin(w http.ResponseWriter, r *http.Request, lang Lang) (storage.Flow, storage.Account, bool) {
	if c, err := r.Cookie(flowCookie); err == nil && len(c.Value) == 26 {
		f, err := p.cfg.Accounts.Flow(flowKey(c.Value))
		if err == nil && f.Purpose == purposeLoginFactor && p.now().Before(f.ExpiresAt) {
			a, err := p.cfg.Accounts.Account(f.AccountID)
			if err == nil && !a.Disabled {
				return f, a, true
			}
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				p.serverError(w, r, lang, "reading a pending login's account", err)
				return storage.Flow{}, storage.Account{}, false
			}
		} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.serverError(w, r, lang, "reading a pending login", err)
			return storage.Flow{}, storage.Account{}, false
		}
	}
	p.logger.Info("second-factor step without a pending login", zap.String("remote", p.clientIP(r)))
	http.Redirect(w, r, "/login?factor=expired&lang="+string(lang), http.StatusSeeOther)
	return storage.Flow{}, storage.Account{}, false
}

func (p *Portal) factorStepView(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account) *view {
	return &view{Lang: lang, Title: "mfa.step.title", CSRF: csrfToken(w, r), Errors: map[string]string{},
		Data: factorStepData{TOTP: a.TOTP != nil, Passkey: len(a.Passkeys) > 0, Recovery: len(a.RecoveryCodes) > 0}}
}

func (p *Portal) factorStepPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	_, a, ok := p.pendingLogin(w, r, lang)
	if !ok {
		return
	}
	p.pages.render(w, r, http.StatusOK, "secondfactor", p.factorStepView(w, r, lang, a))
}

// factorStep checks an authenticator or recovery code for the pending
// login. Wrong codes count in login regulation under the same keys as the
// password; a right one starts the session and ends the flow.
func (p *Portal) factorStep(w http.ResponseWriter, r *http.Request) {
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
	if err := parseForm(r, "action", "code", "recovery"); err != nil {
		p.logger.Info("second-factor form refused", zap.Error(err), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "secondfactor", v)
		return
	}
	action := r.PostFormValue("action")
	field, input := "code", r.PostFormValue("code")
	switch action {
	case "totp":
	case "recovery":
		field, input = "recovery", r.PostFormValue("recovery")
		d := v.Data.(factorStepData)
		d.RecoveryOpen = true
		v.Data = d
	case "cancel":
		if err := p.endFlow(w, f); err != nil {
			p.serverError(w, r, lang, "ending a pending login", err)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	default:
		v.FormError = lang.T("form.outofstep")
		p.pages.render(w, r, http.StatusConflict, "secondfactor", v)
		return
	}
	switch {
	case len(input) > maxCodeInput:
		v.Errors[field] = lang.T("field.toolong")
	case input == "":
		v.Errors[field] = lang.T("mfa.code.empty")
	}
	if v.Errors[field] != "" {
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "secondfactor", v)
		return
	}
	ip := p.clientIP(r)
	if wait, err := p.cfg.Limits.LoginWait(f.Email, ip); err != nil {
		p.serverError(w, r, lang, "login regulation", err)
		return
	} else if wait > 0 {
		p.record(r, observe.Event{Kind: observe.Login, Outcome: "locked", Reason: action, Actor: a.ID})
		p.factorRefused(w, r, v, wait)
		return
	}
	var err error
	if action == "totp" {
		a, err = p.cfg.Factors.CheckTOTP(a.ID, input)
	} else {
		a, err = p.cfg.Factors.UseRecoveryCode(a.ID, input)
	}
	if errors.Is(err, account.ErrFactorWrong) || errors.Is(err, account.ErrNoTOTP) {
		wait, lerr := p.cfg.Limits.LoginFailed(f.Email, ip)
		if lerr != nil {
			p.serverError(w, r, lang, "login regulation", lerr)
			return
		}
		p.logger.Info("second factor wrong", zap.String("account", a.ID), zap.String("factor", action), zap.String("remote", ip))
		p.record(r, observe.Event{Kind: observe.Login, Outcome: "wrong", Reason: action, Actor: a.ID})
		if wait > 0 {
			p.factorRefused(w, r, v, wait)
			return
		}
		v.Errors[field] = lang.T("mfa.code.wrong")
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusUnauthorized, "secondfactor", v)
		return
	}
	if err != nil {
		p.serverError(w, r, lang, "checking a second factor", err)
		return
	}
	p.finishLogin(w, r, lang, f, a, amrTOTP, action, zap.Int("recovery_codes_left", len(a.RecoveryCodes)))
}

// finishLogin starts the session of a login whose second factor passed
// and ends its flow.
func (p *Portal) finishLogin(w http.ResponseWriter, r *http.Request, lang Lang, f storage.Flow, a storage.Account, amr []string, factor string, logFields ...zap.Field) {
	if err := p.cfg.Limits.LoginSucceeded(f.Email); err != nil {
		p.logger.Warn("clearing login failures", zap.Error(err))
	}
	if err := p.endFlow(w, f); err != nil {
		p.serverError(w, r, lang, "ending a pending login", err)
		return
	}
	if err := p.logInWith(w, r, a, amr); errors.Is(err, storage.ErrStale) {
		p.logger.Info("login refused: the credentials changed while the second factor was asked", zap.String("account", a.ID))
		http.Redirect(w, r, "/login?factor=expired&lang="+string(lang), http.StatusSeeOther)
		return
	} else if err != nil {
		p.serverError(w, r, lang, "starting a session", err)
		return
	}
	p.logger.Info("login", append([]zap.Field{zap.String("account", a.ID), zap.Strings("amr", amr), zap.String("factor", factor), zap.String("remote", p.clientIP(r))}, logFields...)...)
	p.record(r, observe.Event{Kind: observe.Login, Outcome: "ok", Reason: factor, Actor: a.ID})
	p.afterLogin(w, r, lang, a, f.Return)
}

// factorRefused answers a second factor during a lockout.
func (p *Portal) factorRefused(w http.ResponseWriter, r *http.Request, v *view, wait time.Duration) {
	p.logger.Warn("second factor refused during lockout", zap.String("remote", p.clientIP(r)), zap.Duration("wait", wait))
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	v.FormError = v.Lang.T("login.locked") + " " + minutes(v.Lang, wait)
	p.pages.render(w, r, http.StatusTooManyRequests, "secondfactor", v)
}

// afterLogin sends a person on after any login (password, second step,
// passkey, a new registration): to set up a second factor when the policy
// requires one they do not have, to the notice that a company's
// eHerkenning verification is due, else where they were going.
func (p *Portal) afterLogin(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account, ret string) {
	required, err := p.factorRequired(a)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return
	}
	if required && !a.HasSecondFactor() {
		http.Redirect(w, r, securityPath+"?required=1", http.StatusSeeOther)
		return
	}
	if p.reverifyAfterLogin(w, r, lang, a, ret) {
		return
	}
	p.continueAfterLogin(w, r, lang, ret)
}

// policy is the second-factor policy in force; without factors on offer,
// none can be required.
func (p *Portal) policy() account.Policy {
	if p.cfg.Factors == nil {
		return account.PolicyOff
	}
	pol, err := account.ParsePolicy(string(p.cfg.SecondFactor))
	if err != nil {
		// Validate refused any other value before the portal was built.
		return account.PolicyAdmins
	}
	return pol
}

// factorRequired reports whether the policy requires a second factor of
// the account.
func (p *Portal) factorRequired(a storage.Account) (bool, error) {
	pol := p.policy()
	if pol != account.PolicyAdmins {
		return pol.Requires(false), nil
	}
	ms, err := p.cfg.Orgs.Memberships(a.ID)
	if err != nil {
		return false, err
	}
	return pol.Requires(slices.ContainsFunc(ms, func(m org.Membership) bool { return m.Anchored && m.Role == org.RoleAdmin })), nil
}

// adminRefusal says why a session may not act as an admin, or "": it must
// have passed a second factor while the policy asks that of admins. The
// answer is a text key: set one up first, or log in again with it.
func (p *Portal) adminRefusal(a storage.Account, s storage.Session) string {
	if !p.policy().AdminNeedsMFA() || slices.Contains(s.AMR, amrMFA) {
		return ""
	}
	if !a.HasSecondFactor() {
		return "mfa.admin.setup"
	}
	return "mfa.admin.relogin"
}

// refuseUnprovenAdmin answers an admin of the organisation whose session
// may not act as one (adminRefusal), and reports whether it did. Anyone
// else is left to the action's own check.
func (p *Portal) refuseUnprovenAdmin(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account, s storage.Session, kvk string) bool {
	key := p.adminRefusal(a, s)
	if key == "" {
		return false
	}
	ms, err := p.cfg.Orgs.Memberships(a.ID)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return true
	}
	if !slices.ContainsFunc(ms, func(m org.Membership) bool { return m.KvK == kvk && m.Role == org.RoleAdmin }) {
		return false
	}
	p.logger.Info("admin action refused: the session did not pass a second factor",
		zap.String("account", a.ID), zap.String("org", kvk), zap.String("path", r.URL.Path), zap.String("reason", key))
	p.pages.render(w, r, http.StatusForbidden, "securityrefused", &view{Lang: lang, Title: "mfa.admin.title", CSRF: csrfToken(w, r),
		Data: securityRefusal{Text: key, Setup: key == "mfa.admin.setup"}})
	return true
}

// securityRefusal is what the refusal page of an admin action says.
type securityRefusal struct {
	Text  string
	Setup bool
}
