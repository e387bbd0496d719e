package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/org"
)

// The broker's answer arrives cross-site, where the Lax session cookie
// may be missing. So the ACS only verifies the answer and parks it under
// a one-time token; the browser is then sent to a same-site page that
// links the company only when that browser holds both the session of the
// account that started the login and the secret it was given then.
// ehBindingCookie holds the browser's secret for a started login.
const ehBindingCookie = contract.EHBindingCookie

func (p *Portal) serviceProvider(w http.ResponseWriter, r *http.Request, lang Lang) (*eherkenning.ServiceProvider, bool) {
	if p.cfg.EHerkenning == nil {
		p.pages.render(w, r, http.StatusServiceUnavailable, "error", &view{Lang: lang, Title: "eh.title", Data: lang.T("eh.notconfigured")})
		return nil, false
	}
	return p.cfg.EHerkenning, true
}

// brokerHealth is the broker's check in /healthz.
func (p *Portal) brokerHealth() (bool, string) {
	st := p.cfg.EHerkenning.BrokerStatus()
	switch {
	case st.Err == nil && !st.LoadedAt.IsZero():
		return true, "ok"
	case st.Err == nil:
		return true, "not checked yet"
	case st.LoadedAt.IsZero():
		return false, "unavailable since " + st.FailingSince.UTC().Format(time.RFC3339) +
			": its metadata cannot be loaded, eHerkenning logins fail (see the log)"
	}
	return false, "metadata refresh failing since " + st.FailingSince.UTC().Format(time.RFC3339) +
		", the copy loaded " + st.LoadedAt.UTC().Format(time.RFC3339) + " is in use (see the log)"
}

// ehStartPath starts an eHerkenning login. Starting one replaces the
// browser's binding secret and so ends a login in progress: only a POST
// carrying the form's token does it, never a GET another site can cause.
const ehStartPath = "/eherkenning/start"

// eherkenningStartPage answers a GET of the start address (a bookmark, an
// old link, another site) with the page that has the button; it starts
// nothing and sets no cookie.
func (p *Portal) eherkenningStartPage(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/eherkenning", http.StatusSeeOther)
}

// eherkenningStart is what "Login eHerkenning" posts to: someone without
// a session first logs in or registers, then goes straight on to the
// broker (continueAfterLogin).
func (p *Portal) eherkenningStart(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, _, ok := p.signedIn(w, r, ehStartPath)
	if !ok {
		return
	}
	sp, ok := p.serviceProvider(w, r, lang)
	if !ok {
		return
	}
	secret := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name: ehBindingCookie, Value: secret, Path: "/", MaxAge: int(time.Hour / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	start, err := sp.StartLogin(r.Context(), a.ID, bindingHash(secret), p.ehReturnTo(r, a.ID))
	if eherkenning.ErrorCode(err) == eherkenning.CodeBrokerUnavailable {
		p.logger.Warn("eHerkenning login not started: the broker is unavailable", zap.String("account", a.ID), zap.Error(err))
		p.pages.render(w, r, http.StatusServiceUnavailable, "error", &view{Lang: lang, Title: "eh.title", Data: lang.T("eh.unavailable")})
		return
	}
	if err != nil {
		p.logger.Error("starting an eHerkenning login", zap.String("account", a.ID), zap.Error(err))
		p.pages.render(w, r, http.StatusServiceUnavailable, "error", &view{Lang: lang, Title: "eh.title", Data: lang.T("eh.unavailable")})
		return
	}
	p.logger.Info("eHerkenning login started", zap.String("account", a.ID), zap.String("request", start.RequestID))
	if u, err := url.Parse(start.URL); err == nil && start.Binding == eherkenning.BindingHTTPPost {
		// The auto-submitted form posts to the broker.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self' "+u.Scheme+"://"+u.Host)
	}
	start.Write(w, r, "/static/autosubmit.js")
}

// ehPageData is the eHerkenning page's data.
type ehPageData struct {
	// AutoSubmit makes the page post its form at once: the person just
	// logged in or registered on the way to eHerkenning.
	AutoSubmit bool
}

// continueAfterLogin sends someone who just logged in or registered on to
// where they were going. A redirect arrives as a GET, which cannot start
// an eHerkenning login; so the way on to eHerkenning is the eHerkenning
// page answering this POST, its form submitting itself (or, without
// JavaScript, the person pressing its button).
func (p *Portal) continueAfterLogin(w http.ResponseWriter, r *http.Request, lang Lang, ret string) {
	if ret != ehStartPath {
		http.Redirect(w, r, orDashboard(ret), http.StatusSeeOther)
		return
	}
	p.pages.render(w, r, http.StatusOK, "eherkenning", &view{Lang: lang, Title: "eh.title", CSRF: csrfToken(w, r),
		Notice: lang.T("eh.continue"), Data: ehPageData{AutoSubmit: true}})
}

func bindingHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// eherkenningACS receives the broker's answer (SAMLart by GET or POST,
// or a POSTed SAMLResponse), verifies it and parks the result.
func (p *Portal) eherkenningACS(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	sp, ok := p.serviceProvider(w, r, lang)
	if !ok {
		return
	}
	res, err := sp.HandleResponse(r)
	if err != nil {
		p.ehFailed(w, r, lang, err)
		return
	}
	p.record(r, observe.Event{Kind: observe.EHerkenningAnswer, Outcome: "ok", Actor: res.Request.AccountID, Organisation: res.KvK})
	token, err := sp.ParkResult(r.Context(), *res)
	if err != nil {
		p.serverError(w, r, lang, "parking an eHerkenning answer", err)
		return
	}
	http.Redirect(w, r, "/eherkenning/complete?t="+url.QueryEscape(token), http.StatusSeeOther)
}

// ehFailed shows a plain-language page for a refused broker answer and
// logs the detail for the operator.
func (p *Portal) ehFailed(w http.ResponseWriter, r *http.Request, lang Lang, err error) {
	code := eherkenning.ErrorCode(err)
	p.logger.Warn("eHerkenning answer refused", zap.String("code", string(code)), zap.Error(err), zap.String("remote", p.clientIP(r)))
	p.record(r, observe.Event{Kind: observe.EHerkenningAnswer, Outcome: "error", Reason: string(code)})
	key, status := "eh.failed", http.StatusBadRequest
	switch code {
	case eherkenning.CodeCancelled:
		key, status = "eh.cancelled", http.StatusOK
	case eherkenning.CodeNoAuthorization:
		key, status = "eh.noauthorization", http.StatusForbidden
		ended, err := p.endAnchorOnRefusal(r, err)
		if err != nil {
			p.serverError(w, r, lang, "ending an eHerkenning anchor after a no-machtiging answer", err)
			return
		}
		if ended {
			key = "reverify.refused"
		}
	case eherkenning.CodeLevelTooLow:
		key, status = "eh.leveltoolow", http.StatusForbidden
	case eherkenning.CodeUnknownRequest, eherkenning.CodeExpired:
		key = "eh.expired"
	case eherkenning.CodeBrokerUnavailable, eherkenning.CodeInternal:
		key, status = "eh.unavailable", http.StatusServiceUnavailable
	}
	p.pages.render(w, r, status, "ehresult", &view{Lang: lang, Title: "eh.title", Data: ehResultData{Message: lang.T(key)}})
}

// ehResultData is the eHerkenning result page's data.
type ehResultData struct {
	Message string
	OrgName string
	OK      bool
}

// eherkenningComplete links the verified company to the account, when
// this browser started the login and holds that account's session.
func (p *Portal) eherkenningComplete(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	sp, ok := p.serviceProvider(w, r, lang)
	if !ok {
		return
	}
	res, err := sp.CollectResult(r.Context(), r.URL.Query().Get("t"))
	if errors.Is(err, eherkenning.ErrUnknownResult) {
		p.logger.Warn("eHerkenning completion with an unknown or used token", zap.String("remote", p.clientIP(r)))
		p.pages.render(w, r, http.StatusBadRequest, "ehresult", &view{Lang: lang, Title: "eh.title", Data: ehResultData{Message: lang.T("eh.expired")}})
		return
	}
	if err != nil {
		p.serverError(w, r, lang, "reading a parked eHerkenning answer", err)
		return
	}
	a, s, loggedIn := p.currentUser(r)
	binding, _ := r.Cookie(ehBindingCookie)
	if !loggedIn || a.ID != res.Request.AccountID || binding == nil || bindingHash(binding.Value) != res.Request.BrowserBinding {
		refused := observe.Event{Kind: observe.OrganisationLinked, Outcome: "refused", Reason: "other_browser",
			Actor: a.ID, Subject: res.Request.AccountID, Organisation: res.KvK}
		if !loggedIn || a.ID != res.Request.AccountID {
			refused.Reason = "other_account"
		}
		p.record(r, refused)
		p.logger.Warn("eHerkenning answer presented by another account or browser; nothing linked",
			zap.String("started_by", res.Request.AccountID), zap.String("presented_by", a.ID),
			zap.Bool("browser_matches", binding != nil && bindingHash(binding.Value) == res.Request.BrowserBinding),
			zap.String("kvk", res.KvK), zap.String("remote", p.clientIP(r)))
		p.pages.render(w, r, http.StatusForbidden, "ehresult", &view{Lang: lang, Title: "eh.title", Data: ehResultData{Message: lang.T("eh.otherbrowser")}})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ehBindingCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true})
	_, was, notRenewal := p.cfg.Orgs.Verification(res.KvK, a.ID)
	same, err := p.cfg.Orgs.Link(a.ID, org.Verified{
		KvK: res.KvK, Name: res.CompanyName, RSIN: res.RSIN, Branch: res.Branch,
		Pseudonym: res.Pseudonym, Level: eherkenning.ShortLevel(res.Level),
	})
	if err != nil {
		p.serverError(w, r, lang, "linking an organisation", err)
		return
	}
	if len(same) > 0 {
		p.logger.Warn("eHerkenning pseudonym already seen on other accounts", zap.String("account", a.ID), zap.Strings("other_accounts", same), zap.String("kvk", res.KvK))
	}
	p.logger.Info("organisation linked", zap.String("account", a.ID), zap.String("kvk", res.KvK), zap.String("level", res.Level))
	linked := observe.Event{Kind: observe.OrganisationLinked, Outcome: "linked", Actor: a.ID, Organisation: res.KvK}
	if notRenewal == nil {
		p.logger.Info("eHerkenning verification renewed", zap.String("account", a.ID), zap.String("kvk", res.KvK), zap.Stringer("was", was))
		linked.Outcome = "renewed"
	}
	p.record(r, linked)
	if err := p.cfg.Sessions.SetActiveOrg(s.Key, res.KvK); err != nil {
		p.logger.Warn("making the linked organisation active", zap.Error(err))
	}
	o, _ := p.cfg.Orgs.Organisation(res.KvK)
	p.pages.render(w, r, http.StatusOK, "ehresult", &view{Lang: lang, Title: "eh.success.title",
		Data: ehResultData{OK: true, OrgName: orgLabel(o)}})
}

// spMetadata serves our SAML metadata, for the broker.
func (p *Portal) spMetadata(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	sp, ok := p.serviceProvider(w, r, lang)
	if !ok {
		return
	}
	md, err := sp.Metadata()
	if err != nil {
		p.serverError(w, r, lang, "making our metadata", err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(md)
}
