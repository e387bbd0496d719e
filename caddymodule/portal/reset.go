package portal

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// resetData is what the reset template needs beyond the view.
type resetData struct {
	Stage string
	Email string
	Done  bool
	// SendFailed offers a new code: the mail server did not take the last.
	SendFailed bool
}

func (p *Portal) resetView(w http.ResponseWriter, r *http.Request, lang Lang, f storage.Flow) *view {
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
	action := r.PostFormValue("action")
	if p.codeStep(w, r, v, f, p.resetFlow(), action) {
		return
	}
	switch {
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

// resetFlow is the reset form's code steps. A right code for an address
// without an account leads nowhere: only the mailbox's holder learns it.
func (p *Portal) resetFlow() codeFlow {
	return codeFlow{
		purpose: account.PurposeReset, page: "reset", path: "/password/forgot",
		data: func(f storage.Flow, sendFailed bool) any {
			return resetData{Stage: f.Stage, Email: f.Email, SendFailed: sendFailed}
		},
		afterCode: func(v *view, f storage.Flow) {
			if _, err := p.cfg.Accounts.AccountByEmail(f.Email); err != nil {
				v.Errors["code"] = v.Lang.T("reset.noaccount")
			}
		},
	}
}

// resetSave sets the new password, ends every session of the account and
// tells the owner by email. It does not log the person in: they sign in
// with the new password, which proves it works.
func (p *Portal) resetSave(w http.ResponseWriter, r *http.Request, v *view, f storage.Flow) {
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
	if err := p.endFlow(w, f); err != nil {
		p.logger.Warn("ending a finished reset", zap.Error(err))
	}
	p.logger.Info("password reset", zap.String("account", a.ID))
	p.record(r, observe.Event{Kind: observe.FlowStep, Outcome: "completed", Reason: string(account.PurposeReset), Actor: a.ID})
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
