package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wijtechniek/wijgate/caddymodule/portal"
	"github.com/wijtechniek/wijgate/caddymodule/session"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the `wijgate` HTTP handler. In a guarded route it lets a
// request through to the next handler (usually `reverse_proxy`) only with
// a live session, and hands the upstream trustworthy identity headers. With
// Portal set it serves the account pages instead.
//
// Either way, it first deletes every identity header the client sent.
type Handler struct {
	// Portal makes this handler serve the portal (login, logout, account
	// pages) rather than guard a route.
	Portal bool `json:"portal,omitempty"`

	// App names the application this route guards, e.g. `declaratie`.
	App string `json:"app,omitempty"`

	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wijgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the wijgate app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	v, err := ctx.AppIfConfigured("wijgate")
	if errors.Is(err, caddy.ErrNotConfigured) {
		// An empty app block is enough; defaults apply.
		v, err = ctx.App("wijgate")
	}
	if err != nil {
		return fmt.Errorf("loading the wijgate app: %w", err)
	}
	h.app = v.(*App)
	return nil
}

// Validate checks the handler's own settings.
func (h *Handler) Validate() error {
	if h.Portal && h.App != "" {
		return errors.New("a wijgate handler is either the portal or guards an app, not both")
	}
	if !h.Portal && h.App == "" {
		return errors.New("wijgate: name the guarded app (`wijgate { app <name> }`) or use `wijgate portal`")
	}
	for _, c := range h.App {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("app %q: use lower-case letters, digits, '-' and '_'", h.App)
		}
	}
	return nil
}

// ServeHTTP strips client identity headers, then serves the portal or
// guards the route.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	a := h.app
	a.stripper.strip(r.Header)
	if h.Portal {
		a.portal.ServeHTTP(w, r)
		return nil
	}

	cookieName := a.sessions.Codec().Name()
	s, err := a.sessions.Lookup(sessionCookie(r.Header, cookieName))
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			h.logger.Error("session lookup failed", zap.String("app", h.App), zap.Error(err))
		}
		return h.unauthenticated(w, r)
	}
	id, err := a.identity.get(a.store, s.AccountID)
	if err != nil || id.disabled {
		if err != nil {
			h.logger.Warn("session without a readable account", zap.String("account", s.AccountID), zap.Error(err))
		}
		return h.unauthenticated(w, r)
	}

	r.Header[HeaderUserID] = []string{id.id}
	r.Header[HeaderUserEmail] = []string{id.email}
	r.Header[HeaderUserName] = []string{id.nameHeader}
	removeCookie(r.Header, cookieName, portal.CSRFCookie)

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", id.id)
	repl.Set("wijgate.user.id", id.id)
	repl.Set("wijgate.user.email", id.email)
	repl.Set("wijgate.user.name", id.name)
	repl.Set("wijgate.app", h.App)
	return next.ServeHTTP(w, r)
}

// unauthenticated sends a browser to the portal's login page with a return
// address, and anything else a 401 with a short JSON body.
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request) error {
	login := h.app.portal.LoginURL(requestURL(r))
	if isNavigation(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, login, http.StatusFound)
		return nil
	}
	if c := h.logger.Check(zapcore.DebugLevel, "request without session refused"); c != nil {
		c.Write(zap.String("app", h.App), zap.String("uri", r.RequestURI))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("WWW-Authenticate", `Cookie realm="wijgate"`)
	w.WriteHeader(http.StatusUnauthorized)
	_, err := fmt.Fprintf(w, `{"error":"unauthenticated","login":%q}`+"\n", login)
	return err
}

// isNavigation tells a browser opening a page from a script or API client:
// a GET or HEAD that asks for HTML.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// requestURL is the absolute URL the client asked for.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.RequestURI
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
