package portal

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// deleteData is the removal page's data: the organisations that refuse
// it, when there are any, instead of the form.
type deleteData struct {
	Blockers []storage.Organisation
}

// dataPage shows "Mijn gegevens": the download of everything held about
// the account, and the way to remove it.
func (p *Portal) dataPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	a, _, ok := p.signedIn(w, r, "/account/data")
	if !ok {
		return
	}
	p.pages.render(w, r, http.StatusOK, "export", &view{Lang: lang, Title: "privacy.title", CSRF: csrfToken(w, r),
		User: &userView{ID: a.ID, Email: a.Email, Name: a.Name}})
}

// exportData sends everything held about the account as one JSON file.
// It is a POST with the form's token, so no other site can start the
// download in someone's browser.
func (p *Portal) exportData(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, _, ok := p.signedIn(w, r, "/account/data")
	if !ok {
		return
	}
	if err := parseForm(r); err != nil {
		p.badRequest(w, r, lang, err)
		return
	}
	x, err := p.cfg.Privacy.Export(a.ID)
	if err != nil {
		p.serverError(w, r, lang, "exporting an account's data", err)
		return
	}
	body, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		p.serverError(w, r, lang, "encoding an account's data", err)
		return
	}
	p.logger.Info("account data exported by its owner", zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
	p.record(r, observe.Event{Kind: observe.AccountData, Outcome: "exported", Actor: a.ID})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="wijgate-gegevens-`+p.now().Format(time.DateOnly)+`.json"`)
	_, _ = w.Write(append(body, '\n'))
}

// deletePage shows "Account verwijderen": the password and confirmation
// form, or, while the account must hand over an organisation first, the
// organisations and what to do.
func (p *Portal) deletePage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	a, _, ok := p.signedIn(w, r, "/account/delete")
	if !ok {
		return
	}
	blockers, err := p.cfg.Privacy.Blockers(a.ID)
	if err != nil {
		p.serverError(w, r, lang, "checking whether an account can be removed", err)
		return
	}
	p.pages.render(w, r, http.StatusOK, "delete", &view{Lang: lang, Title: "privacy.delete.title", CSRF: csrfToken(w, r),
		User: &userView{ID: a.ID, Email: a.Email, Name: a.Name}, Data: deleteData{Blockers: blockers}})
}

// deleteAccount removes the logged-in account after its password (a
// wrong one counts in login regulation, as at login) and a confirmation,
// and ends in a plain page with the cookie cleared.
func (p *Portal) deleteAccount(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, s, ok := p.signedIn(w, r, "/account/delete")
	if !ok {
		return
	}
	if err := parseForm(r, "password", "confirm"); err != nil {
		p.badRequest(w, r, lang, err)
		return
	}
	v := &view{Lang: lang, Title: "privacy.delete.title", CSRF: csrfToken(w, r),
		User:   &userView{ID: a.ID, Email: a.Email, Name: a.Name},
		Values: map[string]string{"confirm": r.PostFormValue("confirm")}, Errors: map[string]string{}, Data: deleteData{}}
	if p.refuseBlocked(w, r, v, a.ID, nil) {
		return
	}
	password := r.PostFormValue("password")
	switch {
	case len(password) > maxPasswordInput:
		v.Errors["password"] = lang.T("field.toolong")
	case password == "":
		v.Errors["password"] = lang.T("field.password.empty")
	}
	if v.Values["confirm"] != "yes" {
		v.Values["confirm"] = ""
		v.Errors["confirm"] = lang.T("privacy.delete.confirm.missing")
	}
	if len(v.Errors) > 0 {
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "delete", v)
		return
	}

	if !p.passwordAgain(w, r, v, a, password, "delete", "privacy.delete.wrongpassword", "account removal") {
		return
	}
	if !p.requireRecentSecondFactor(w, r, a, s) {
		return
	}

	_, err := p.cfg.Privacy.Delete(a.ID)
	var blocked *privacy.BlockedError
	switch {
	case errors.As(err, &blocked):
		p.refuseBlocked(w, r, v, a.ID, blocked.Organisations)
		return
	case errors.Is(err, storage.ErrNotFound):
		// Removed meanwhile, from another browser or by the operator.
	case err != nil:
		p.serverError(w, r, lang, "removing an account", err)
		return
	}
	p.logger.Info("account removed by its owner", zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
	p.record(r, observe.Event{Kind: observe.AccountData, Outcome: "deleted", Actor: a.ID})
	p.clearSessionCookie(w)
	w.Header().Set("Clear-Site-Data", `"cache", "cookies", "storage"`)
	// Clear-Site-Data also drops the language cookie; keep the language.
	http.Redirect(w, r, "/account/deleted?lang="+string(lang), http.StatusSeeOther)
}

// refuseBlocked answers 409 with the organisations that keep the account
// from being removed, read now unless given, and reports whether it did.
func (p *Portal) refuseBlocked(w http.ResponseWriter, r *http.Request, v *view, accountID string, blockers []storage.Organisation) bool {
	if blockers == nil {
		var err error
		if blockers, err = p.cfg.Privacy.Blockers(accountID); err != nil {
			p.serverError(w, r, v.Lang, "checking whether an account can be removed", err)
			return true
		}
	}
	if len(blockers) == 0 {
		return false
	}
	var kvks []string
	for _, o := range blockers {
		kvks = append(kvks, o.KvK)
	}
	p.logger.Info("account removal refused: the last eHerkenning-verified admin of organisations with other members",
		zap.String("account", accountID), zap.String("kvk", strings.Join(kvks, ",")))
	v.Data = deleteData{Blockers: blockers}
	p.pages.render(w, r, http.StatusConflict, "delete", v)
	return true
}

// requireRecentSecondFactor asks, after the password, for the account's
// second factor when it has one: the session must have passed it at login
// (amr "mfa"), else the person is told to log in again with it. It
// answers the request itself when it refuses.
func (p *Portal) requireRecentSecondFactor(w http.ResponseWriter, r *http.Request, a storage.Account, s storage.Session) bool {
	if !a.HasSecondFactor() || slices.Contains(s.AMR, amrMFA) {
		return true
	}
	lang := requestLang(w, r)
	p.logger.Info("account removal refused: the session did not pass the account's second factor", zap.String("account", a.ID))
	p.pages.render(w, r, http.StatusForbidden, "securityrefused", &view{Lang: lang, Title: "mfa.admin.title", CSRF: csrfToken(w, r),
		Data: securityRefusal{Text: "privacy.delete.secondfactor"}})
	return false
}

// deletedPage is where a removed account's browser lands.
func (p *Portal) deletedPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	p.pages.render(w, r, http.StatusOK, "deleted", &view{Lang: lang, Title: "privacy.deleted.title"})
}

// auditName is how the audit log names an account: by its name while it
// exists, by account.Pseudonym once it is removed. Targets that are not
// accounts (an invited address, or the pseudonym that replaced it) are
// shown as written.
func auditName(lookup func(id string) storage.Account, id string) string {
	if a := lookup(id); a.Name != "" {
		return a.Name
	}
	if id == "" || strings.Contains(id, "@") || account.IsPseudonym(id) {
		return id
	}
	return account.Pseudonym(id)
}
