package portal

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// resetData is what the reset template needs beyond the view.
type resetData struct {
	Stage string
	Email string
	Done  bool
}

func (p *Portal) resetView(w http.ResponseWriter, r *http.Request, lang Lang, f store.Flow) *view {
	return &view{Lang: lang, Title: "reset.title", CSRF: csrfToken(w, r),
		Values: map[string]string{"email": f.Email}, Errors: map[string]string{},
		Data: resetData{Stage: f.Stage, Email: f.Email}}
}

func (p *Portal) resetPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	f := p.loadFlow(r, string(account.PurposeReset))
	v := p.resetView(w, r, lang, f)
	if r.URL.Query().Get("sent") == "1" && f.Stage == stageCode {
		v.Notice = lang.T("code.sent") + " " + f.Email + "."
	}
	p.pages.render(w, r, http.StatusOK, "reset", v)
}

func (p *Portal) reset(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	f := p.loadFlow(r, string(account.PurposeReset))
	v := p.resetView(w, r, lang, f)
	if err := parseForm(r, "action", "email", "code", "password", "password2"); err != nil {
		p.logger.Info("reset form refused", zap.Error(err), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "reset", v)
		return
	}
	switch action := r.PostFormValue("action"); {
	case action == "send" && f.Stage == stageEmail:
		email, ok := checkEmailField(v, r.PostFormValue("email"))
		if !ok {
			v.Values["email"] = r.PostFormValue("email")
			v.FormError = lang.T("errors.summary")
			p.pages.render(w, r, http.StatusBadRequest, "reset", v)
			return
		}
		p.resetSend(w, r, v, f, email)
	case action == "resend" && f.Stage == stageCode:
		p.resetSend(w, r, v, f, f.Email)
	case action == "change" && f.Stage != stageEmail:
		f.Stage = stageEmail
		if err := p.saveFlow(w, r, &f); err != nil {
			p.serverError(w, r, lang, "saving a reset", err)
			return
		}
		http.Redirect(w, r, "/password/forgot", http.StatusSeeOther)
	case action == "verify" && f.Stage == stageCode:
		code := r.PostFormValue("code")
		if len(code) > maxCodeInput {
			v.Errors["code"] = lang.T("code.wrong")
		} else if err := p.cfg.Codes.Check(account.PurposeReset, f.Email, code); err != nil {
			v.Errors["code"] = codeError(lang, err)
		} else if _, err := p.cfg.Accounts.Store.AccountByEmail(f.Email); err != nil {
			// Only someone holding the mailbox gets here; a code sent to
			// an address without an account never leads anywhere.
			v.Errors["code"] = lang.T("reset.noaccount")
		}
		if len(v.Errors) > 0 {
			v.FormError = lang.T("errors.summary")
			p.pages.render(w, r, http.StatusBadRequest, "reset", v)
			return
		}
		f.Stage = stageVerified
		if err := p.saveFlow(w, r, &f); err != nil {
			p.serverError(w, r, lang, "saving a reset", err)
			return
		}
		http.Redirect(w, r, "/password/forgot", http.StatusSeeOther)
	case action == "save" && f.Stage == stageVerified:
		p.resetSave(w, r, v, f)
	case action == "cancel":
		if err := p.endFlow(w, f); err != nil {
			p.serverError(w, r, lang, "ending a reset", err)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	default:
		v.FormError = lang.T("form.outofstep")
		p.pages.render(w, r, http.StatusConflict, "reset", v)
	}
}

func (p *Portal) resetSend(w http.ResponseWriter, r *http.Request, v *view, f store.Flow, email string) {
	f.Email = email
	v.Values["email"] = email
	if retry, err := p.sendCode(r, v.Lang, account.PurposeReset, email); err != nil {
		if errors.Is(err, errMailFailed) && f.Stage == stageEmail {
			_ = p.saveFlow(w, r, &f)
		}
		status := p.codeSendError(w, v, retry, err)
		v.Data = resetData{Stage: f.Stage, Email: f.Email}
		p.pages.render(w, r, status, "reset", v)
		return
	}
	f.Stage = stageCode
	if err := p.saveFlow(w, r, &f); err != nil {
		p.serverError(w, r, v.Lang, "saving a reset", err)
		return
	}
	http.Redirect(w, r, "/password/forgot?sent=1", http.StatusSeeOther)
}

// resetSave sets the new password, ends every session of the account and
// tells the owner by email. It does not log the person in: they sign in
// with the new password, which proves it works.
func (p *Portal) resetSave(w http.ResponseWriter, r *http.Request, v *view, f store.Flow) {
	lang := v.Lang
	password, ok := checkNewPassword(v, r.PostFormValue("password"), r.PostFormValue("password2"), f.Email)
	if !ok {
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "reset", v)
		return
	}
	a, err := p.cfg.Accounts.SetPassword(r.Context(), f.Email, password)
	if err != nil {
		p.serverError(w, r, lang, "setting a new password", err)
		return
	}
	if err := p.cfg.Sessions.RevokeAccount(a.ID, ""); err != nil {
		p.serverError(w, r, lang, "ending sessions after a password reset", err)
		return
	}
	if err := p.endFlow(w, f); err != nil {
		p.logger.Warn("ending a finished reset", zap.Error(err))
	}
	p.logger.Info("password reset", zap.String("account", a.ID))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), sendTimeout)
	defer cancel()
	if err := p.cfg.Mailer.Send(ctx, mail.PasswordChangedMessage(mail.Lang(lang), a.Email, p.now())); err != nil {
		// The password is changed either way; the notice is best effort.
		p.logger.Error("sending the password-changed notice failed", zap.String("account", a.ID), zap.Error(err))
	}
	http.Redirect(w, r, "/password/done", http.StatusSeeOther)
}

// resetDone tells the person the password changed; a reload resubmits
// nothing.
func (p *Portal) resetDone(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	p.pages.render(w, r, http.StatusOK, "reset", &view{Lang: lang, Title: "reset.done.title", Data: resetData{Done: true}})
}
