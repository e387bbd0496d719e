package portal

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// passwordAgain checks the password a logged-in person typed again to
// confirm a change that must not ride on a stolen session (an email
// change, removing the account), under login regulation with the login's
// own keys: during a lockout it refuses, a wrong password counts as a
// failed login, a right one clears the address's count. It answers the
// request itself and reports whether the password was right. page is the
// form's template, wrongText the field's message, what names the change
// in the operator's log.
func (p *Portal) passwordAgain(w http.ResponseWriter, r *http.Request, v *view, a storage.Account, password, page, wrongText, what string) bool {
	lang, ip := v.Lang, p.clientIP(r)
	locked := func(wait time.Duration) {
		p.logger.Warn(what+" refused during lockout", zap.String("remote", ip), zap.Duration("wait", wait))
		w.Header().Set("Retry-After", retryAfterSeconds(wait))
		v.FormError = lang.T("login.locked") + " " + minutes(lang, wait)
		p.pages.render(w, r, http.StatusTooManyRequests, page, v)
	}
	if wait, err := p.cfg.Limits.LoginWait(a.Email, ip); err != nil {
		p.serverError(w, r, lang, "login regulation", err)
		return false
	} else if wait > 0 {
		locked(wait)
		return false
	}
	right, err := p.cfg.Accounts.VerifyPassword(r.Context(), a, password)
	if err != nil {
		p.serverError(w, r, lang, "checking the password for "+what, err)
		return false
	}
	if !right {
		wait, err := p.cfg.Limits.LoginFailed(a.Email, ip)
		if err != nil {
			p.serverError(w, r, lang, "login regulation", err)
			return false
		}
		p.logger.Info(what+" refused: wrong password", zap.String("account", a.ID), zap.String("remote", ip))
		if wait > 0 {
			locked(wait)
			return false
		}
		v.Errors["password"] = lang.T(wrongText)
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusUnauthorized, page, v)
		return false
	}
	if err := p.cfg.Limits.LoginSucceeded(a.Email); err != nil {
		p.logger.Warn("clearing login failures", zap.Error(err))
	}
	return true
}
