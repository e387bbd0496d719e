package portal

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// sessionsPath is the person's list of their sessions.
const sessionsPath = "/account/sessions"

// maxHandleInput caps a posted session handle; a real one is 22 bytes.
const maxHandleInput = 64

// sessionsData is what the sessions template needs beyond the view.
type sessionsData struct {
	Sessions []sessionRow
	// Others says there are sessions besides this one to end.
	Others bool
}

// sessionRow is one session as the list shows it.
type sessionRow struct {
	// Handle names the session in the form; it is neither the storage
	// key nor the cookie (session.Handle).
	Handle   string
	Device   string
	Address  string
	Started  string
	LastSeen string
	Current  bool
}

func (p *Portal) sessionsPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	a, s, ok := p.signedIn(w, r, sessionsPath)
	if !ok {
		return
	}
	v := &view{Lang: lang, Title: "sessions.title", CSRF: csrfToken(w, r)}
	switch r.URL.Query().Get("ended") {
	case "one":
		v.Notice = lang.T("sessions.ended")
	case "others":
		v.Notice = lang.T("sessions.endedothers")
	}
	p.renderSessions(w, r, v, a, s, http.StatusOK)
}

// renderSessions shows the account's sessions with status, reading them
// afresh, so a page after a refusal shows what is true now.
func (p *Portal) renderSessions(w http.ResponseWriter, r *http.Request, v *view, a storage.Account, current storage.Session, status int) {
	list, err := p.cfg.Sessions.AccountSessions(a.ID)
	if err != nil {
		p.serverError(w, r, v.Lang, "listing an account's sessions", err)
		return
	}
	var data sessionsData
	for _, s := range list {
		row := sessionRow{
			Handle:   session.Handle(s),
			Device:   device(v.Lang, s.UserAgent),
			Address:  s.Address,
			Started:  formatDateTime(s.CreatedAt),
			LastSeen: formatDateTime(s.LastSeen),
			Current:  s.Key == current.Key,
		}
		if row.Current {
			// This request is the session's latest use; the stored time
			// may lag it by a minute.
			row.LastSeen = formatDateTime(current.LastSeen)
		} else {
			data.Others = true
		}
		data.Sessions = append(data.Sessions, row)
	}
	v.User = &userView{ID: a.ID, Email: a.Email, Name: a.Name}
	v.Data = data
	p.pages.render(w, r, status, "sessions", v)
}

// endSessions ends one of the person's sessions ("end", by its handle) or
// every one but this ("endothers"). Only the account's own sessions are
// searched: a handle of someone else's session ends nothing and gets a
// plain message.
func (p *Portal) endSessions(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, current, ok := p.signedIn(w, r, sessionsPath)
	if !ok {
		return
	}
	v := &view{Lang: lang, Title: "sessions.title", CSRF: csrfToken(w, r)}
	if err := parseForm(r, "action", "session"); err != nil {
		p.logger.Info("sessions form refused", zap.Error(err), zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.renderSessions(w, r, v, a, current, http.StatusBadRequest)
		return
	}
	switch r.PostFormValue("action") {
	case "end":
		handle := r.PostFormValue("session")
		ended, err := storage.Session{}, session.ErrUnknownHandle
		if len(handle) <= maxHandleInput {
			ended, err = p.cfg.Sessions.End(a.ID, handle)
		}
		switch {
		case errors.Is(err, session.ErrUnknownHandle):
			p.logger.Info("ending a session refused: no live session of the account has that handle",
				zap.String("account", a.ID), zap.String("remote", p.clientIP(r)))
			v.FormError = lang.T("sessions.unknown")
			p.renderSessions(w, r, v, a, current, http.StatusNotFound)
			return
		case err != nil:
			p.serverError(w, r, lang, "ending a session", err)
			return
		}
		p.logger.Info("session ended from the list", zap.String("account", a.ID), zap.Bool("this_one", ended.Key == current.Key))
		p.record(r, observe.Event{Kind: observe.SessionEnded, Outcome: "from_list", Actor: a.ID})
		if ended.Key == current.Key {
			p.clearSessionCookie(w)
			http.Redirect(w, r, "/login?loggedout=1", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, sessionsPath+"?ended=one", http.StatusSeeOther)
	case "endothers":
		n, err := p.cfg.Sessions.EndOthers(a.ID, current.Key)
		if err != nil {
			p.serverError(w, r, lang, "ending an account's other sessions", err)
			return
		}
		p.logger.Info("other sessions ended", zap.String("account", a.ID), zap.Int("count", n))
		p.record(r, observe.Event{Kind: observe.SessionEnded, Outcome: "others", Actor: a.ID})
		http.Redirect(w, r, sessionsPath+"?ended=others", http.StatusSeeOther)
	default:
		v.FormError = lang.T("form.unknown")
		p.renderSessions(w, r, v, a, current, http.StatusBadRequest)
	}
}

// formatDateTime shows a time to the minute, as the server's clock reads.
func formatDateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("02-01-2006 15:04")
}
