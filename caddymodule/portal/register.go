package portal

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// registerData is what the registration template needs beyond the view.
type registerData struct {
	Stage string
	Email string
	// SendFailed offers a new code: the mail server did not take the last.
	SendFailed bool
}

func (p *Portal) registerPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	f := p.loadFlow(r, string(account.PurposeRegister))
	v := p.registerView(w, r, lang, f)
	v.Return = p.returnTarget(r, r.URL.Query().Get("return"))
	if r.URL.Query().Get("sent") == "1" && f.Stage == stageCode {
		v.Notice = lang.T("code.sent") + " " + f.Email + "."
	}
	if r.URL.Query().Get("verified") == "1" && f.Stage == stageVerified {
		v.Notice = lang.T("code.verified")
	}
	p.pages.render(w, r, http.StatusOK, "register", v)
}

func (p *Portal) registerView(w http.ResponseWriter, r *http.Request, lang Lang, f storage.Flow) *view {
	v := &view{Lang: lang, Title: "register.title", CSRF: csrfToken(w, r),
		Values: map[string]string{"email": f.Email}, Errors: map[string]string{},
		Data: registerData{Stage: f.Stage, Email: f.Email}}
	return v
}

func (p *Portal) register(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	f := p.loadFlow(r, string(account.PurposeRegister))
	v := p.registerView(w, r, lang, f)
	if err := parseForm(r, "action", "email", "code", "password", "password2", "name", "return"); err != nil {
		p.logger.Info("registration form refused", zap.Error(err), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "register", v)
		return
	}

	action := r.PostFormValue("action")
	if p.codeStep(w, r, v, f, registerFlow, action) {
		return
	}
	switch {
	case action == "create" && f.Stage == stageVerified:
		p.registerCreate(w, r, v, f)
	case action == "cancel":
		if err := p.endFlow(w, f); err != nil {
			p.serverError(w, r, lang, "ending a registration", err)
			return
		}
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	default:
		// A stale tab or a replayed form: show the current step again.
		v.FormError = lang.T("form.outofstep")
		p.pages.render(w, r, http.StatusConflict, "register", v)
	}
}

func (p *Portal) registerCreate(w http.ResponseWriter, r *http.Request, v *view, f storage.Flow) {
	lang := v.Lang
	name := r.PostFormValue("name")
	v.Values["name"] = name
	password, pwOK := checkNewPassword(v, r.PostFormValue("password"), r.PostFormValue("password2"), f.Email)
	if len(name) > maxNameInput {
		v.Values["name"] = ""
		v.Errors["name"] = lang.T("field.toolong")
	} else if _, err := account.NormalizeName(name); err != nil {
		v.Errors["name"] = lang.T("field.name.invalid")
	}
	if !pwOK || len(v.Errors) > 0 {
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "register", v)
		return
	}
	a, err := p.cfg.Accounts.Create(r.Context(), f.Email, name, password, string(lang))
	if errors.Is(err, account.ErrEmailTaken) {
		v.FormError = lang.T("register.exists")
		p.pages.render(w, r, http.StatusConflict, "register", v)
		return
	}
	if err != nil {
		p.serverError(w, r, lang, "creating an account", err)
		return
	}
	p.logger.Info("account registered", zap.String("account", a.ID))
	p.record(r, observe.Event{Kind: observe.FlowStep, Outcome: "completed", Reason: string(account.PurposeRegister), Actor: a.ID})
	if err := p.endFlow(w, f); err != nil {
		p.logger.Warn("ending a finished registration", zap.Error(err))
	}
	if err := p.logIn(w, r, a); errors.Is(err, storage.ErrStale) {
		// Disabled the moment it was made: the account exists, the
		// login page says the rest.
		p.logger.Warn("new account disabled before its first session", zap.String("account", a.ID))
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	} else if err != nil {
		p.serverError(w, r, lang, "starting a session", err)
		return
	}
	p.afterLogin(w, r, lang, a, f.Return)
}
