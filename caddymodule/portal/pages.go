package portal

import (
	"net/http"

	"go.uber.org/zap"
)

// landing is the manual's first page: one account for every service.
func (p *Portal) landing(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	_, _, loggedIn := p.currentUser(r)
	p.pages.render(w, r, http.StatusOK, "account", &view{Lang: lang, Title: "account.title", Data: loggedIn})
}

// eherkenningPage explains why eHerkenning level 3 is needed.
func (p *Portal) eherkenningPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	p.pages.render(w, r, http.StatusOK, "eherkenning", &view{Lang: lang, Title: "eh.title", CSRF: csrfToken(w, r), Data: ehPageData{}})
}

// devMailList shows the development outbox.
func (p *Portal) devMailList(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	msgs, err := p.cfg.Outbox.List()
	if err != nil {
		p.serverError(w, r, lang, "reading the outbox", err)
		return
	}
	p.pages.render(w, r, http.StatusOK, "devmail", &view{Lang: lang, Title: "devmail.title", Data: msgs})
}

// devMailMessage shows one message of the development outbox.
func (p *Portal) devMailMessage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	m, err := p.cfg.Outbox.Get(r.PathValue("id"))
	if err != nil {
		p.logger.Info("outbox message not found", zap.String("id", r.PathValue("id")), zap.Error(err))
		p.notFound(w, r)
		return
	}
	p.pages.render(w, r, http.StatusOK, "devmailmsg", &view{Lang: lang, Title: "devmail.title", Data: m})
}
