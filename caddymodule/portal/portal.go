// Package portal serves the account pages: login, logout, registration,
// password reset and the personal dashboard, in Dutch and English. It is a
// plain http.Handler over the domain packages and knows nothing of Caddy.
package portal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// CookieSettings shape the session cookie.
type CookieSettings struct {
	Name   string
	Domain string
}

// Config is what the portal is built from.
type Config struct {
	Accounts *account.Service
	Sessions *session.Manager
	Orgs     *org.Service
	// Privacy exports and removes an account for its owner.
	Privacy *privacy.Service
	// Apps lists the guarded apps; it is complete once the configuration
	// is provisioned.
	Apps   func() []AppInfo
	Codes  *account.Codes
	Limits *account.Limits
	// Mailer sends codes and notices.
	Mailer mail.Sender
	// Outbox, when set, is shown at /dev/mail so a person running the
	// demo can read the mail they were sent. Never set in production.
	Outbox  *mail.Outbox
	Cookie  CookieSettings
	Returns *ReturnPolicy
	Logger  *zap.Logger
	// ClientIP gives the client's address for rate limits; nil means the
	// connection's remote address.
	ClientIP func(*http.Request) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// EHerkenning is the service provider; nil when not configured.
	EHerkenning *eherkenning.ServiceProvider
	// JWKS serves the identity token's public keys.
	JWKS http.Handler
	// ShareOutbox shows /dev/mail to clients on other machines too; by
	// default only loopback clients may read the codes and links in it.
	ShareOutbox bool
	// Health are the checks /healthz reports, in order.
	Health []HealthCheck
	// Factors keeps second factors; nil offers none, and then no policy
	// can require one.
	Factors *account.Factors
	// SecondFactor is who must have a second factor.
	SecondFactor account.Policy
	// PasskeyRPID is the relying party ID of passkeys; empty means the
	// portal's host.
	PasskeyRPID string
	// Events receives the security events; nil discards them.
	Events observe.Sink
	// RequestID names a request in the audit stream; nil leaves it out.
	RequestID func(*http.Request) string
	// Ready are the checks /readyz reports, in order.
	Ready []ReadyCheck
}

// HealthCheck is one line of /healthz. Check runs on every request to it,
// so it must be cheap: a cached state or a single system call.
type HealthCheck struct {
	// Name starts the line, e.g. "storage".
	Name string
	// Check says whether all is well, and in a few words what it saw.
	Check func() (ok bool, detail string)
	// Critical marks a check whose failure makes the server unhealthy
	// (503) rather than degraded.
	Critical bool
}

// AppInfo is a guarded application as people see it.
type AppInfo struct {
	// Name is the app's name in configuration and headers.
	Name string
	// Display is its name for people.
	Display string
	// URL is where people open it (may be empty).
	URL string
}

// Portal is the account pages' handler.
type Portal struct {
	cfg    Config
	mux    *http.ServeMux
	pages  *renderer
	csrf   *http.CrossOriginProtection
	logger *zap.Logger
	// refusals tells the operator of refused attempts, rate-limited.
	refusals *refusalLog
	// outages tells the operator once per outage that the storage cannot
	// be reached.
	outages *outageLog
	// health is what /healthz reports: the configured checks and the
	// broker's.
	health []HealthCheck
	events observe.Sink
}

// New builds the portal and its routes.
func New(cfg Config) (*Portal, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	pages, err := newRenderer(cfg.Logger)
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: cfg, mux: http.NewServeMux(), pages: pages, logger: cfg.Logger}
	if p.events = cfg.Events; p.events == nil {
		p.events = observe.Discard{}
	}
	p.refusals = newRefusalLog(cfg.Logger, p.now)
	p.outages = &outageLog{logger: cfg.Logger, now: p.now}
	p.health = slices.Clone(cfg.Health)
	if cfg.EHerkenning != nil {
		p.health = append(p.health, HealthCheck{Name: "broker", Check: p.brokerHealth})
	}
	p.csrf = http.NewCrossOriginProtection()
	p.csrf.SetDenyHandler(http.HandlerFunc(p.crossOriginDenied))
	// The broker posts its answer from its own site; the answer carries
	// its own proof (signature, tracked request, browser binding).
	p.csrf.AddInsecureBypassPattern("POST " + acsPath)

	static, _ := fs.Sub(staticFS, "static")
	p.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	p.mux.HandleFunc("GET /healthz", p.healthz)
	p.mux.HandleFunc("GET /readyz", p.readyz)
	if cfg.JWKS != nil {
		p.mux.Handle("GET /.well-known/jwks.json", cfg.JWKS)
	}
	p.mux.HandleFunc("GET /{$}", p.home)
	p.mux.HandleFunc("GET /login", p.loginPage)
	p.mux.HandleFunc("POST /login", p.login)
	p.mux.HandleFunc("POST /logout", p.logout)
	p.mux.HandleFunc("GET "+factorStepPath, p.factorStepPage)
	p.mux.HandleFunc("POST "+factorStepPath, p.factorStep)
	p.mux.HandleFunc("GET "+securityPath, p.securityPage)
	p.mux.HandleFunc("POST "+securityPath, p.securityAction)
	if cfg.Factors != nil {
		p.mux.HandleFunc("POST "+passkeyRegisterPath+beginSuffix, p.passkeyRegisterBegin)
		p.mux.HandleFunc("POST "+passkeyRegisterPath, p.passkeyRegister)
		p.mux.HandleFunc("POST "+passkeyLoginPath+beginSuffix, p.passkeyLoginBegin)
		p.mux.HandleFunc("POST "+passkeyLoginPath, p.passkeyLogin)
		p.mux.HandleFunc("POST "+passkeyStepPath+beginSuffix, p.passkeyStepBegin)
		p.mux.HandleFunc("POST "+passkeyStepPath, p.passkeyStep)
	}
	p.mux.HandleFunc("GET /dashboard", p.dashboard)
	p.mux.HandleFunc("POST /dashboard/active", p.switchOrg)
	p.mux.HandleFunc("GET /org/{kvk}", p.orgAdmin)
	p.mux.HandleFunc("POST /org/{kvk}/{action}", p.orgAction)
	p.mux.HandleFunc("POST /org/{kvk}/{action}/{target}", p.orgAction)
	p.mux.HandleFunc("GET /invite/{token}", p.invitationPage)
	p.mux.HandleFunc("POST /invite/{token}", p.acceptInvitation)
	p.mux.HandleFunc("GET /account", p.landing)
	p.mux.HandleFunc("GET "+sessionsPath, p.sessionsPage)
	p.mux.HandleFunc("POST "+sessionsPath, p.endSessions)
	p.mux.HandleFunc("GET "+emailChangePath, p.emailChangePage)
	p.mux.HandleFunc("POST "+emailChangePath, p.emailChange)
	p.mux.HandleFunc("GET "+emailChangePath+"/undo/{token}", p.emailUndoPage)
	p.mux.HandleFunc("POST "+emailChangePath+"/undo/{token}", p.emailUndo)
	p.mux.HandleFunc("GET /account/data", p.dataPage)
	p.mux.HandleFunc("POST /account/data/export", p.exportData)
	p.mux.HandleFunc("GET /account/delete", p.deletePage)
	p.mux.HandleFunc("POST /account/delete", p.deleteAccount)
	p.mux.HandleFunc("GET /account/deleted", p.deletedPage)
	p.mux.HandleFunc("GET /eherkenning", p.eherkenningPage)
	p.mux.HandleFunc("GET /eherkenning/start", p.eherkenningStartPage)
	p.mux.HandleFunc("POST /eherkenning/start", p.eherkenningStart)
	p.mux.HandleFunc("GET "+acsPath, p.eherkenningACS)
	p.mux.HandleFunc("POST "+acsPath, p.eherkenningACS)
	p.mux.HandleFunc("GET /eherkenning/complete", p.eherkenningComplete)
	p.mux.HandleFunc("GET /eherkenning/metadata", p.spMetadata)
	p.mux.HandleFunc("GET /register", p.registerPage)
	p.mux.HandleFunc("POST /register", p.register)
	p.mux.HandleFunc("GET /password/forgot", p.resetPage)
	p.mux.HandleFunc("POST /password/forgot", p.reset)
	p.mux.HandleFunc("GET /password/done", p.resetDone)
	if cfg.Outbox != nil {
		p.mux.HandleFunc("GET /dev/mail", p.devMailOnly(p.devMailList))
		p.mux.HandleFunc("GET /dev/mail/{id}", p.devMailOnly(p.devMailMessage))
	}
	p.mux.HandleFunc("/", p.notFound)
	return p, nil
}

// LoginURL is where a guard sends someone without a session; returnTo is
// the address they were going to.
func (p *Portal) LoginURL(returnTo string) string { return p.cfg.Returns.LoginURL(returnTo) }

// ServeHTTP sets the security headers every portal page carries, refuses
// cross-origin form posts, and routes.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w, r)
	// The broker's SAML answer is not one of our forms: the eherkenning
	// package bounds and reads that body itself, at the size a signed and
	// encrypted assertion needs.
	if r.Method == http.MethodPost && r.URL.Path != acsPath {
		// Bound what a form post can make us read, and read it here: a
		// form too large or not decodable is answered as such, not taken
		// for a form without its token.
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		// ParseMultipartForm drops ParseForm's error for other kinds of
		// body, so both are called.
		err := r.ParseForm()
		if merr := r.ParseMultipartForm(maxFormBytes); err == nil && !errors.Is(merr, http.ErrNotMultipart) {
			err = merr
		}
		if err != nil {
			p.unreadableForm(w, r, err)
			return
		}
	}
	p.csrf.Handler(p.mux).ServeHTTP(w, r)
}

// setSecurityHeaders sets the headers every portal page carries.
func setSecurityHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
}

// unreadableForm answers a form post whose body could not be read.
func (p *Portal) unreadableForm(w http.ResponseWriter, r *http.Request, err error) {
	lang := requestLang(w, r)
	status, text := http.StatusBadRequest, "form.unknown"
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		status, text = http.StatusRequestEntityTooLarge, "form.toolarge"
	}
	p.logger.Info("unreadable form", zap.String("path", r.URL.Path), zap.Error(err))
	p.pages.render(w, r, status, "error", &view{Lang: lang, Title: "error.title", Data: lang.T(text)})
}

// maxFormBytes bounds a form post; our largest form is a few hundred bytes.
const maxFormBytes = 16 << 10

// acsPath receives the broker's answers.
const acsPath = "/eherkenning/acs"

// healthz answers "ok" when every check passes, then one line per check:
// "storage: full (…)". A failing critical check makes it 503 and
// "unhealthy"; any other failing check 200 and "degraded", since the
// apps behind the guard still work.
func (p *Portal) healthz(w http.ResponseWriter, r *http.Request) {
	status, summary := http.StatusOK, "ok"
	var lines strings.Builder
	for _, c := range p.health {
		ok, detail := c.Check()
		switch {
		case ok:
		case c.Critical:
			status, summary = http.StatusServiceUnavailable, "unhealthy"
		case status == http.StatusOK:
			summary = "degraded"
		}
		fmt.Fprintf(&lines, "%s: %s\n", c.Name, detail)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, summary+"\n"+lines.String())
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := p.currentUser(r); ok {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (p *Portal) now() time.Time {
	if p.cfg.Now != nil {
		return p.cfg.Now()
	}
	return time.Now()
}

func (p *Portal) notFound(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	p.pages.render(w, r, http.StatusNotFound, "error", &view{Lang: lang, Title: "error.title", Data: lang.T("error.notfound")})
}

func (p *Portal) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	p.logger.Warn("cross-origin form post refused",
		zap.String("path", r.URL.Path), zap.String("origin", r.Header.Get("Origin")),
		zap.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")), zap.String("remote", r.RemoteAddr))
	lang := requestLang(w, r)
	p.pages.render(w, r, http.StatusForbidden, "error", &view{Lang: lang, Title: "error.title", Data: lang.T("form.expired")})
}

// serverError shows a plain apology and logs what went wrong and where.
// A write refused because the disk is full gets its own page; the store
// logged that once already, so it is not logged per request. A storage
// that cannot be reached gets the "busy or maintenance" page, and one log
// line per outage.
func (p *Portal) serverError(w http.ResponseWriter, r *http.Request, lang Lang, what string, err error) {
	if isUnavailable(err) {
		p.Unavailable(w, r, what, err)
		return
	}
	if errors.Is(err, storage.ErrStorageFull) {
		p.logger.Debug(what+": storage full", zap.String("path", r.URL.Path))
		w.Header().Set("Retry-After", "300")
		p.pages.render(w, r, http.StatusServiceUnavailable, "unavailable", &view{Lang: lang, Title: "unavailable.title", Data: lang.T("unavailable.storage")})
		return
	}
	status, text := http.StatusInternalServerError, "error.generic"
	if errors.Is(err, account.ErrBusy) {
		status, text = http.StatusServiceUnavailable, "error.busy"
		w.Header().Set("Retry-After", "60")
	}
	p.logger.Error(what, zap.String("path", r.URL.Path), zap.Error(err))
	p.pages.render(w, r, status, "error", &view{Lang: lang, Title: "error.title", Data: lang.T(text)})
}

// currentUser returns the logged-in account behind the request's cookie.
func (p *Portal) currentUser(r *http.Request) (storage.Account, storage.Session, bool) {
	a, s, err := p.user(r)
	return a, s, err == nil
}

// signedIn returns the logged-in account behind the request's cookie, or
// answers for it: without one, the login page with ret to return to; while
// the storage cannot be reached, the 503 page, since the person may well be
// logged in.
func (p *Portal) signedIn(w http.ResponseWriter, r *http.Request, ret string) (storage.Account, storage.Session, bool) {
	a, s, err := p.user(r)
	switch {
	case err == nil:
		return a, s, true
	case isUnavailable(err):
		p.Unavailable(w, r, "reading the logged-in account", err)
	default:
		http.Redirect(w, r, p.LoginURL(ret), http.StatusSeeOther)
	}
	return a, s, false
}

// errNotSignedIn means the request carries no live session of an account
// that may use it.
var errNotSignedIn = errors.New("portal: not signed in")

func (p *Portal) user(r *http.Request) (storage.Account, storage.Session, error) {
	c, err := r.Cookie(p.cfg.Cookie.Name)
	if err != nil {
		return storage.Account{}, storage.Session{}, errNotSignedIn
	}
	s, err := p.cfg.Sessions.Lookup(c.Value)
	if isUnavailable(err) {
		return storage.Account{}, storage.Session{}, err
	}
	if err != nil {
		return storage.Account{}, storage.Session{}, errNotSignedIn
	}
	a, err := p.cfg.Accounts.Account(s.AccountID)
	if isUnavailable(err) {
		return storage.Account{}, storage.Session{}, err
	}
	if err != nil || a.Disabled || a.CredentialVersion != s.CredentialVersion {
		return storage.Account{}, storage.Session{}, errNotSignedIn
	}
	return a, s, nil
}

// startSession logs the account in with a fresh session ID and cookie,
// recording how the person proved who they are (amr) and from where.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, a storage.Account, amr []string) error {
	value, _, err := p.cfg.Sessions.Create(a, session.Start{
		AMR: amr, UserAgent: r.UserAgent(), Address: p.clientIP(r),
	})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: p.cfg.Cookie.Name, Value: value, Path: "/", Domain: p.cfg.Cookie.Domain,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

func (p *Portal) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: p.cfg.Cookie.Name, Value: "", Path: "/", Domain: p.cfg.Cookie.Domain,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		MaxAge: -1, Expires: time.Unix(0, 0),
	})
}

// returnTarget is the checked return address of a request, or "".
func (p *Portal) returnTarget(r *http.Request, raw string) string {
	return p.cfg.Returns.Safe(raw, r.Host)
}
