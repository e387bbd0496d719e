package portal

import (
	"net/http"
	"net/netip"

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

// devMailOnly lets only clients on this machine reach a /dev/mail page,
// unless the outbox is shared: it holds every code and invitation link.
func (p *Portal) devMailOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.cfg.ShareOutbox && !isLoopback(p.clientIP(r)) {
			p.logger.Info("development outbox refused a client that is not on this machine",
				zap.String("client_ip", p.clientIP(r)), zap.String("path", r.URL.Path))
			lang := requestLang(w, r)
			p.pages.render(w, r, http.StatusForbidden, "error", &view{Lang: lang, Title: "error.title", Data: lang.T("devmail.remote")})
			return
		}
		next(w, r)
	}
}

// isLoopback reports whether a client address is this machine's own.
func isLoopback(client string) bool {
	addr, err := netip.ParseAddr(client)
	if err != nil {
		// Without a ClientIP function the address still has its port.
		ap, err := netip.ParseAddrPort(client)
		if err != nil {
			return false
		}
		addr = ap.Addr()
	}
	return addr.Unmap().IsLoopback()
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
