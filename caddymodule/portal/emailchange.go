package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// emailChangePath is where a logged-in person moves their account to a
// new address.
const emailChangePath = "/account/email"

// emailUndoPurpose marks the flow record behind the link in the notice to
// the old address; its Email is that address.
const emailUndoPurpose = "email-undo"

// emailChangeData is what the email-change template needs beyond the view.
type emailChangeData struct {
	// Stage is the flow's: "email" (new address and password), "code".
	Stage string
	// Email is the new address once a code was sent to it.
	Email string
	// Current is the account's address now.
	Current string
	// SendFailed offers a new code: the mail server did not take the last.
	SendFailed bool
	// Changed shows the page after the move.
	Changed bool
}

// emailChangeFlow is the change's code steps for the account a.
func emailChangeFlow(a storage.Account) codeFlow {
	return codeFlow{
		purpose: account.PurposeEmailChange, page: "emailchange", path: emailChangePath,
		data: func(f storage.Flow, sendFailed bool) any {
			return emailChangeData{Stage: f.Stage, Email: f.Email, Current: a.Email, SendFailed: sendFailed}
		},
	}
}

// loadEmailChangeFlow is the browser's email change for this account; a
// flow another account left in the browser is not continued.
func (p *Portal) loadEmailChangeFlow(r *http.Request, a storage.Account) storage.Flow {
	f := p.loadFlow(r, string(account.PurposeEmailChange))
	if f.AccountID != a.ID {
		now := p.now()
		f = storage.Flow{Purpose: string(account.PurposeEmailChange), AccountID: a.ID, Stage: stageEmail, CreatedAt: now, ExpiresAt: now.Add(flowLifetime)}
	}
	return f
}

func (p *Portal) emailChangeView(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account, f storage.Flow) *view {
	return &view{Lang: lang, Title: "emailchange.title", CSRF: csrfToken(w, r),
		Values: map[string]string{"email": f.Email}, Errors: map[string]string{},
		Data: emailChangeFlow(a).data(f, false)}
}

func (p *Portal) emailChangePage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	a, _, ok := p.signedIn(w, r, emailChangePath)
	if !ok {
		return
	}
	if r.URL.Query().Get("changed") == "1" {
		v := &view{Lang: lang, Title: "emailchange.changed.title", Data: emailChangeData{Changed: true, Current: a.Email}}
		p.pages.render(w, r, http.StatusOK, "emailchange", v)
		return
	}
	f := p.loadEmailChangeFlow(r, a)
	v := p.emailChangeView(w, r, lang, a, f)
	if r.URL.Query().Get("sent") == "1" && f.Stage == stageCode {
		v.Notice = lang.T("code.sent") + " " + f.Email + "."
	}
	p.pages.render(w, r, http.StatusOK, "emailchange", v)
}

func (p *Portal) emailChange(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, s, ok := p.signedIn(w, r, emailChangePath)
	if !ok {
		return
	}
	f := p.loadEmailChangeFlow(r, a)
	v := p.emailChangeView(w, r, lang, a, f)
	if err := parseForm(r, "action", "email", "password", "code"); err != nil {
		p.logger.Info("email change form refused", zap.Error(err), zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "emailchange", v)
		return
	}
	cf := emailChangeFlow(a)
	action := r.PostFormValue("action")
	switch {
	case action == "send" && f.Stage == stageEmail:
		p.emailChangeSend(w, r, v, f, a, cf)
	case action == "verify" && f.Stage == stageCode:
		p.emailChangeVerify(w, r, v, f, a, s, cf)
	case action == "cancel":
		if err := p.endFlow(w, f); err != nil {
			p.serverError(w, r, lang, "ending an email change", err)
			return
		}
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
	case p.codeStep(w, r, v, f, cf, action):
		// "resend" and "change", the steps shared with registration.
	default:
		// A stale tab or a replayed form: show the current step again.
		v.FormError = lang.T("form.outofstep")
		p.pages.render(w, r, http.StatusConflict, "emailchange", v)
	}
}

// emailChangeSend checks the new address and the current password, then
// sends the code. A wrong password counts in login regulation like a
// failed login for the account's address. An address that is another
// account's gets the same answer and next page as a free one; its owner
// is told by mail instead of getting a code (sendCode).
func (p *Portal) emailChangeSend(w http.ResponseWriter, r *http.Request, v *view, f storage.Flow, a storage.Account, cf codeFlow) {
	lang := v.Lang
	raw, password := r.PostFormValue("email"), r.PostFormValue("password")
	email, emailOK := checkEmailField(v, raw)
	if emailOK {
		if _, err := account.CheckNewEmail(a, email); errors.Is(err, account.ErrEmailUnchanged) {
			v.Errors["email"] = lang.T("emailchange.same")
		}
	}
	if len(raw) <= account.MaxEmailLength && utf8.ValidString(raw) {
		v.Values["email"] = raw
	}
	switch {
	case len(password) > maxPasswordInput:
		v.Errors["password"] = lang.T("field.toolong")
	case password == "":
		v.Errors["password"] = lang.T("field.password.empty")
	}
	if len(v.Errors) > 0 {
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "emailchange", v)
		return
	}

	if !p.passwordAgain(w, r, v, a, password, "emailchange", "emailchange.wrongpassword", "email change") {
		return
	}
	// Whether the code reached the new address is code_sent's to count.
	p.record(r, observe.Event{Kind: observe.EmailChange, Outcome: "requested", Actor: a.ID})
	p.sendStep(w, r, v, f, cf, email)
}

// emailChangeVerify checks the code and moves the account. A right code
// for an address another account holds is answered as a wrong one: that
// step can never succeed, and says nothing about the address. The move
// ends every session of the account; this browser gets a fresh one.
func (p *Portal) emailChangeVerify(w http.ResponseWriter, r *http.Request, v *view, f storage.Flow, a storage.Account, s storage.Session, cf codeFlow) {
	lang := v.Lang
	code := r.PostFormValue("code")
	var limit *account.GuessLimitError
	if len(code) > maxCodeInput {
		v.Errors["code"] = lang.T("code.wrong")
	} else if err := p.cfg.Codes.Check(cf.purpose, f.Email, code); errors.As(err, &limit) {
		p.codeGuessesLimited(w, r, v, cf, limit.Wait)
		return
	} else if err != nil {
		v.Errors["code"] = codeError(lang, err)
	} else if _, err := p.cfg.Accounts.AccountByEmail(f.Email); err == nil {
		p.logger.Warn("email change refused: the new address has an account", zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
		v.Errors["code"] = lang.T("code.wrong")
	} else if !errors.Is(err, storage.ErrNotFound) {
		p.serverError(w, r, lang, "reading the account of a new address", err)
		return
	}
	if len(v.Errors) > 0 {
		p.record(r, observe.Event{Kind: observe.FlowStep, Outcome: "code_wrong", Reason: string(cf.purpose)})
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "emailchange", v)
		return
	}

	// The way back is stored before the move, so a move is never without
	// one.
	now := p.now()
	token := rand.Text()
	undo := storage.Flow{ID: flowKey(token), Purpose: emailUndoPurpose, AccountID: a.ID, Email: a.Email,
		Stage: emailUndoPurpose, CreatedAt: now, ExpiresAt: now.Add(account.EmailUndoValidity)}
	if err := p.cfg.Accounts.SaveFlow(undo); err != nil {
		p.serverError(w, r, lang, "saving the way back of an email change", err)
		return
	}
	moved, err := p.cfg.Accounts.ChangeEmail(a.ID, f.Email)
	if err != nil {
		if eerr := p.cfg.Accounts.EndFlow(undo.ID); eerr != nil {
			p.logger.Warn("removing the way back of a failed email change", zap.Error(eerr))
		}
	}
	if errors.Is(err, account.ErrEmailTaken) {
		// Taken between the check and the move, by someone else.
		v.FormError = lang.T("emailchange.taken")
		p.pages.render(w, r, http.StatusConflict, "emailchange", v)
		return
	}
	if err != nil {
		p.serverError(w, r, lang, "changing an email address", err)
		return
	}
	p.logger.Info("email address changed; every session of the account ended", zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
	p.record(r, observe.Event{Kind: observe.EmailChange, Outcome: "confirmed", Actor: a.ID})
	if err := p.endFlow(w, f); err != nil {
		p.logger.Warn("ending a finished email change", zap.Error(err))
	}
	p.sendEmailChangedNotice(r, lang, a.Email, moved.Email, token, undo.ExpiresAt)
	if err := p.startSession(w, r, moved, s.AMR); err != nil {
		// The address moved; the person logs in with it.
		p.logger.Warn("no fresh session after an email change", zap.String("account", a.ID), zap.Error(err))
		p.clearSessionCookie(w)
		http.Redirect(w, r, p.LoginURL(emailChangePath+"?changed=1"), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, emailChangePath+"?changed=1", http.StatusSeeOther)
}

// sendEmailChangedNotice tells the old address what changed, with the way
// back. The address has moved either way; the notice is best effort, and
// a failure is the operator's to see.
func (p *Portal) sendEmailChangedNotice(r *http.Request, lang Lang, old, moved, token string, until time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), sendTimeout)
	defer cancel()
	msg := mail.EmailChangedMessage(mail.Lang(lang), old, moved, p.now(), p.portalURL(r, emailChangePath+"/undo/"+token), until)
	if err := p.cfg.Mailer.Send(ctx, msg); err != nil {
		p.logger.Error("sending the email-changed notice to the old address failed", zap.Error(err))
	}
}
