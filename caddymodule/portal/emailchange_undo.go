package portal

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// emailUndoData is what the undo template needs beyond the view.
type emailUndoData struct {
	// Token is the link's, for the confirming form.
	Token string
	// Old is the address the account moves back to.
	Old  string
	Done bool
}

// undoFlow is the live way back behind a notice's link.
func (p *Portal) undoFlow(token string) (storage.Flow, error) {
	if len(token) != 26 {
		return storage.Flow{}, storage.ErrNotFound
	}
	f, err := p.cfg.Accounts.Flow(flowKey(token))
	if err == nil && (f.Purpose != emailUndoPurpose || !p.now().Before(f.ExpiresAt)) {
		err = storage.ErrNotFound
	}
	return f, err
}

// emailUndoPage asks the holder of the old address to confirm; opening
// the link changes nothing, as mail scanners open links too.
func (p *Portal) emailUndoPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	token := r.PathValue("token")
	f, err := p.undoFlow(token)
	if err != nil {
		p.emailUndoRefused(w, r, lang, err)
		return
	}
	p.pages.render(w, r, http.StatusOK, "emailchange_undo", &view{Lang: lang, Title: "emailundo.title", CSRF: csrfToken(w, r),
		Data: emailUndoData{Token: token, Old: f.Email}})
}

// emailUndo moves the account back to the old address, with a password
// nobody knows and no sessions (account.UndoEmailChange); the link works
// once.
func (p *Portal) emailUndo(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	f, err := p.undoFlow(r.PathValue("token"))
	if err == nil {
		err = parseForm(r)
	}
	if err != nil {
		p.emailUndoRefused(w, r, lang, err)
		return
	}
	a, err := p.cfg.Accounts.UndoEmailChange(r.Context(), f.AccountID, f.Email)
	if errors.Is(err, account.ErrEmailTaken) {
		p.logger.Warn("undoing an email change refused: the old address has another account now", zap.String("account", f.AccountID))
		p.pages.render(w, r, http.StatusConflict, "error", &view{Lang: lang, Title: "error.title", Data: lang.T("emailundo.taken")})
		return
	}
	if err != nil {
		p.serverError(w, r, lang, "undoing an email change", err)
		return
	}
	if err := p.cfg.Accounts.EndFlow(f.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.logger.Warn("ending a used email-change undo link", zap.Error(err))
	}
	p.logger.Warn("email change undone by the old address: password replaced, every session ended", zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
	p.record(r, observe.Event{Kind: observe.EmailChange, Outcome: "undone", Subject: a.ID})
	p.pages.render(w, r, http.StatusOK, "emailchange_undo", &view{Lang: lang, Title: "emailundo.done.title",
		Data: emailUndoData{Old: a.Email, Done: true}})
}

// emailUndoRefused answers a link that is unknown, used, expired, or a
// post with fields the form does not have.
func (p *Portal) emailUndoRefused(w http.ResponseWriter, r *http.Request, lang Lang, err error) {
	status, text := http.StatusNotFound, "emailundo.invalid"
	if !errors.Is(err, storage.ErrNotFound) {
		if isUnavailable(err) {
			p.Unavailable(w, r, "reading an email-change undo link", err)
			return
		}
		status, text = http.StatusBadRequest, "form.unknown"
	}
	p.logger.Info("email-change undo link refused", zap.String("remote", p.clientIP(r)), zap.Error(err))
	p.pages.render(w, r, status, "error", &view{Lang: lang, Title: "error.title", Data: lang.T(text)})
}
