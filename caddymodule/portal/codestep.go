package portal

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// codeFlow describes a form that proves an email address with a code
// before its last step: registration and password reset share the steps
// "send", "resend", "change" and "verify".
type codeFlow struct {
	purpose account.Purpose
	page    string // template
	path    string // where the form lives
	// verifiedQuery is added to path after a right code.
	verifiedQuery string
	// data is the template's data for a flow; sendFailed says the mail
	// server did not take the last code.
	data func(f storage.Flow, sendFailed bool) any
	// afterCode may refuse a right code, setting a field error.
	afterCode func(v *view, f storage.Flow)
}

var registerFlow = codeFlow{
	purpose: account.PurposeRegister, page: "register", path: "/register", verifiedQuery: "?verified=1",
	data: func(f storage.Flow, sendFailed bool) any {
		return registerData{Stage: f.Stage, Email: f.Email, SendFailed: sendFailed}
	},
}

// codeStep handles the shared steps and reports whether action was one.
func (p *Portal) codeStep(w http.ResponseWriter, r *http.Request, v *view, f storage.Flow, cf codeFlow, action string) bool {
	lang := v.Lang
	switch {
	case action == "send" && f.Stage == stageEmail:
		email, ok := checkEmailField(v, r.PostFormValue("email"))
		if !ok {
			v.Values["email"] = r.PostFormValue("email")
			v.FormError = lang.T("errors.summary")
			p.pages.render(w, r, http.StatusBadRequest, cf.page, v)
			return true
		}
		p.sendStep(w, r, v, f, cf, email)
	case action == "resend" && f.Stage == stageCode:
		p.sendStep(w, r, v, f, cf, f.Email)
	case action == "change" && f.Stage != stageEmail:
		f.Stage = stageEmail
		if err := p.saveFlow(w, r, &f); err != nil {
			p.serverError(w, r, lang, "saving a "+string(cf.purpose)+" flow", err)
			return true
		}
		http.Redirect(w, r, cf.path, http.StatusSeeOther)
	case action == "verify" && f.Stage == stageCode:
		code := r.PostFormValue("code")
		var limit *account.GuessLimitError
		if len(code) > maxCodeInput {
			v.Errors["code"] = lang.T("code.wrong")
		} else if err := p.cfg.Codes.Check(cf.purpose, f.Email, code); errors.As(err, &limit) {
			p.codeGuessesLimited(w, r, v, cf, limit.Wait)
			return true
		} else if err != nil {
			v.Errors["code"] = codeError(lang, err)
		} else if cf.afterCode != nil {
			cf.afterCode(v, f)
		}
		if len(v.Errors) > 0 {
			p.record(r, observe.Event{Kind: observe.FlowStep, Outcome: "code_wrong", Reason: string(cf.purpose)})
			v.FormError = lang.T("errors.summary")
			p.pages.render(w, r, http.StatusBadRequest, cf.page, v)
			return true
		}
		p.record(r, observe.Event{Kind: observe.FlowStep, Outcome: "code_verified", Reason: string(cf.purpose)})
		f.Stage = stageVerified
		if err := p.saveFlow(w, r, &f); err != nil {
			p.serverError(w, r, lang, "saving a "+string(cf.purpose)+" flow", err)
			return true
		}
		http.Redirect(w, r, cf.path+cf.verifiedQuery, http.StatusSeeOther)
	default:
		return false
	}
	return true
}

// codeGuessesLimited answers a code for an address that had too many wrong
// codes this hour: the person learns to wait and then ask for a new code.
func (p *Portal) codeGuessesLimited(w http.ResponseWriter, r *http.Request, v *view, cf codeFlow, wait time.Duration) {
	p.logger.Warn("code refused: too many wrong codes for the address",
		zap.String("purpose", string(cf.purpose)), zap.String("remote", p.clientIP(r)), zap.Duration("wait", wait))
	p.record(r, observe.Event{Kind: observe.FlowStep, Outcome: "code_limited", Reason: string(cf.purpose)})
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	v.Errors["code"] = v.Lang.T("code.guesslimit") + " " + minutes(v.Lang, wait)
	v.FormError = v.Lang.T("errors.summary")
	p.pages.render(w, r, http.StatusTooManyRequests, cf.page, v)
}

// sendStep mails a code (or the message that stands in for one) and moves
// the flow to the code step. When the mail server does not take it, the
// person stays at their step, with what they typed, and is offered a new
// code there.
func (p *Portal) sendStep(w http.ResponseWriter, r *http.Request, v *view, f storage.Flow, cf codeFlow, email string) {
	f.Email = email
	if ret := p.returnTarget(r, r.PostFormValue("return")); ret != "" {
		f.Return = ret
	}
	v.Return = f.Return
	v.Values["email"] = email
	if err := p.sendCode(r, v.Lang, cf.purpose, email); err != nil {
		failed := errors.Is(err, errMailFailed)
		if failed && f.Stage == stageEmail {
			// Keep what the person typed for the next try.
			if serr := p.saveFlow(w, r, &f); serr != nil {
				p.logger.Warn("keeping a "+string(cf.purpose)+" flow after a failed send", zap.Error(serr))
			}
		}
		status := p.codeSendError(w, v, err)
		v.Data = cf.data(f, failed)
		p.pages.render(w, r, status, cf.page, v)
		return
	}
	f.Stage = stageCode
	if err := p.saveFlow(w, r, &f); err != nil {
		p.serverError(w, r, v.Lang, "saving a "+string(cf.purpose)+" flow", err)
		return
	}
	http.Redirect(w, r, cf.path+"?sent=1", http.StatusSeeOther)
}
