package caddymodule

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/portal"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the `wijgate` HTTP handler. In a guarded route it lets a
// request through to the next handler (usually `reverse_proxy`) only for a
// logged-in account acting for an eHerkenning-anchored organisation with
// the right to use this app, and hands the upstream trustworthy identity
// headers. With Portal set it serves the account pages instead.
//
// Either way, it first deletes every identity header the client sent.
type Handler struct {
	// Portal makes this handler serve the portal (login, logout, account
	// pages) rather than guard a route.
	Portal bool `json:"portal,omitempty"`

	// App names the application this route guards, e.g. `declaratie`.
	App string `json:"app,omitempty"`

	// Name is the application's name as people see it, e.g. `Declaratie
	// Systeem`. Default: App.
	Name string `json:"name,omitempty"`

	// URL is where people open the app, for the links on their
	// dashboard, e.g. `https://declaratie.wij-techniek.nl/`.
	URL string `json:"url,omitempty"`

	// Require is what a request needs: `session` (a logged-in account),
	// `org` (also an active organisation anchored in eHerkenning) or
	// `app` (also the right to use this app). Default `app`.
	Require string `json:"require,omitempty"`

	// AdminOnly lets only admins of the active organisation through.
	AdminOnly bool `json:"admin_only,omitempty"`

	// MinAssurance is the weakest anchoring let through: `invited` (a
	// colleague invited by an admin), `eh3` or `eh4` (verified with
	// eHerkenning at that level). Default `invited`.
	MinAssurance string `json:"min_assurance,omitempty"`

	// Headers lists the identity facts sent as X-Wij-* headers: id, email,
	// name, org_kvk, org_name, org_role, apps, assurance, assertion (the
	// signed token). Default all but assertion.
	Headers []string `json:"headers,omitempty"`

	// Assertion adds the signed token (X-Wij-Assertion) to the headers,
	// for an app that verifies it.
	Assertion bool `json:"assertion,omitempty"`

	// Aliases sends identity facts under further header names an old app
	// expects, e.g. {"Remote-User": "email"}. Clients cannot send these
	// names either.
	Aliases map[string]string `json:"aliases,omitempty"`

	// WebSocket lets WebSocket upgrades through to the app. The session
	// is checked once, at the upgrade; the connection then stays open
	// whatever happens to the session. Off: a WebSocket upgrade is
	// refused (403). Other upgrades, h2c among them, are always removed.
	WebSocket bool `json:"websocket,omitempty"`

	// AllowEncodedSlashes lets paths with an encoded slash or backslash
	// (%2F, %5C) through, for an app that needs them and does not decode
	// them before routing. Off: such a request is refused (400). A `.` or
	// `..` segment in any encoding is refused either way.
	AllowEncodedSlashes bool `json:"allow_encoded_slashes,omitempty"`

	app     *App
	logger  *zap.Logger
	send    []headerField
	minRank int
	// through counts the requests let through (nil without metrics).
	through prometheus.Counter
}

// headerField is one identity fact sent under one header name.
type headerField struct {
	header string
	fact   contract.Fact
}

// assuranceRank orders anchorings from weakest to strongest.
var assuranceRank = map[string]int{"invited": 1, "eh3": 2, "eh4": 3}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wijgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the wijgate app and registers the guarded app with it.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	facts := h.Headers
	if len(facts) == 0 {
		facts = contract.Defaults()
	}
	if h.Assertion && !slices.Contains(facts, contract.Assertion.Name()) {
		facts = append(slices.Clip(facts), contract.Assertion.Name())
	}
	for _, name := range facts {
		f, err := checkFact("headers", name)
		if err != nil {
			return err
		}
		h.send = append(h.send, headerField{header: f.Header(), fact: f})
	}
	for header, name := range h.Aliases {
		f, err := checkFact("alias "+header, name)
		if err != nil {
			return err
		}
		h.send = append(h.send, headerField{header: http.CanonicalHeaderKey(header), fact: f})
	}
	if h.MinAssurance == "" {
		h.MinAssurance = "invited"
	}
	h.minRank = assuranceRank[h.MinAssurance]
	v, err := ctx.AppIfConfigured("wijgate")
	if errors.Is(err, caddy.ErrNotConfigured) {
		// An empty app block is enough; defaults apply.
		v, err = ctx.App("wijgate")
	}
	if err != nil {
		return fmt.Errorf("loading the wijgate app: %w", err)
	}
	h.app = v.(*App)
	if h.Portal {
		return h.app.registerPortal()
	}
	h.app.registerApp(AppInfo{Name: h.App, Display: h.Name, URL: h.URL}, slices.Collect(maps.Keys(h.Aliases)))
	h.through = h.app.events.counter(observe.Event{Kind: observe.Guard, App: h.App, Outcome: "through"})
	return nil
}

// Validate checks the handler's own settings; the facts it sends were
// looked up by Provision.
func (h *Handler) Validate() error {
	if h.Portal && h.App != "" {
		return errors.New("a wijgate handler is either the portal or guards an app, not both")
	}
	if !h.Portal && h.App == "" {
		return errors.New("wijgate: name the guarded app (`wijgate { app <name> }`) or use `wijgate portal`")
	}
	if h.Portal {
		return nil
	}
	if err := checkAppName(h.App); err != nil {
		return err
	}
	if h.URL != "" {
		if err := checkAppURL(h.URL); err != nil {
			return err
		}
	}
	if err := checkRequire(h.Require); err != nil {
		return err
	}
	if err := checkMinAssurance(h.MinAssurance); err != nil {
		return err
	}
	for header := range h.Aliases {
		if err := checkAliasHeader(header); err != nil {
			return err
		}
	}
	return nil
}

// ServeHTTP strips client identity headers, then serves the portal or
// guards the route.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	a := h.app
	a.stripper.strip(r.Header)
	a.stripper.stripTrailers(r)
	if !a.ready.Load() {
		return h.waitingForStorage(w, r)
	}
	if h.Portal {
		a.portal.ServeHTTP(w, r)
		return nil
	}
	if ambiguousPath(r.URL.EscapedPath(), h.AllowEncodedSlashes) {
		return h.refuseAmbiguousPath(w, r)
	}
	upgrade := requestedUpgrade(r)
	if upgrade == webSocketUpgrade && !h.WebSocket {
		return h.refuseWebSocket(w, r)
	}
	if upgrade == otherUpgrade {
		// Removing the upgrade, rather than refusing, answers the request
		// as HTTP/1.1, as a server that does not speak h2c does.
		delete(r.Header, "Upgrade")
		delete(r.Header, "Http2-Settings")
	}
	a.stripper.cleanConnection(r.Header, upgrade == otherUpgrade)

	d := h.decide(r)
	switch d.verdict {
	case storageDown:
		return h.storageUnavailable(w, r, d.what, d.err)
	case noSession:
		return h.unauthenticated(w, r)
	case refused:
		return h.refuse(w, r, d.id, d.active, d.reason)
	}
	values, err := h.identityValues(r, &d)
	if err != nil {
		h.logger.Error("signing the identity token", zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	setHeaders(r.Header, h.send, values)
	removeCookie(r.Header, a.ownCookies)

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	// One closure holding the placeholders by value: a method value on a
	// new placeholders would cost two allocations.
	p := placeholders{id: d.id, active: d.active, app: h.App}
	repl.Map(func(key string) (any, bool) { return p.replace(key) })
	if h.through != nil {
		h.through.Inc()
	}
	return next.ServeHTTP(w, r)
}

// verdict is what a route's policy makes of a request.
type verdict uint8

const (
	admitted verdict = iota
	noSession
	storageDown
	refused
)

// decision is the policy's judgement on one request: whom it admits and
// for which organisation, or why not. The guard and forward_auth both act
// on it, so the policy lives in decide alone.
type decision struct {
	verdict verdict
	// sessionKey, id and active are the admitted session, its account
	// and the organisation it acts for (nil for none); id and active
	// are also set when refused.
	sessionKey string
	id         *identity
	active     *orgIdentity
	// amr is how the session's person proved who they are, for the
	// identity token.
	amr []string
	// reason is why a logged-in request is refused: no_org, lapsed,
	// admin_only, assurance or no_right.
	reason string
	// what and err say what needed the storage when it did not answer.
	what string
	err  error
}

// decide looks up the request's session and applies the route's policy.
func (h *Handler) decide(r *http.Request) decision {
	a := h.app
	cookieName := a.sessions.Codec().Name()
	s, err := a.sessions.Lookup(sessionCookie(r.Header, cookieName))
	if errors.Is(err, storage.ErrUnavailable) {
		return decision{verdict: storageDown, what: "looking up a session", err: err}
	}
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			h.logger.Error("session lookup failed", zap.String("app", h.App), zap.Error(err))
		}
		return decision{verdict: noSession}
	}
	// Lookup set LastSeen to this request's time.
	id, err := a.identity.get(a.engine, a.accounts, a.orgs, a.appNames, s.AccountID, s.LastSeen)
	if errors.Is(err, storage.ErrUnavailable) {
		return decision{verdict: storageDown, what: "reading an account", err: err}
	}
	if err != nil || id.disabled || id.credentialVersion != s.CredentialVersion {
		if err != nil {
			h.logger.Warn("session without a readable account", zap.String("account", s.AccountID), zap.Error(err))
		}
		return decision{verdict: noSession}
	}
	active, hasOrg := id.active(s.ActiveOrg)
	// An admin acts as admin only from a session that passed a second
	// factor while the policy asks that of admins.
	if hasOrg && active.role() == org.RoleAdmin && a.policy().AdminNeedsMFA() && !slices.Contains(s.AMR, "mfa") {
		active = active.asMember()
	}
	d := decision{verdict: admitted, sessionKey: s.Key, id: id, active: active, amr: s.AMR}
	if h.Require == "session" {
		return d
	}
	d.verdict = refused
	switch {
	case !hasOrg && id.waiting() != nil:
		d.active, d.reason = id.waiting(), "lapsed"
	case !hasOrg:
		d.reason = "no_org"
	case h.AdminOnly && active.role() != org.RoleAdmin:
		d.reason = "admin_only"
	case assuranceRank[active.assurance()] < h.minRank:
		d.reason = "assurance"
	case h.Require != "org" && !active.mayUse(h.App):
		d.reason = "no_right"
	default:
		d.verdict = admitted
	}
	return d
}

// identityValues are the values of the route's identity headers (h.send)
// for an admitted request.
func (h *Handler) identityValues(r *http.Request, d *decision) ([]string, error) {
	values := make([]string, len(h.send))
	for i, f := range h.send {
		if f.fact != contract.Assertion {
			values[i] = headerValue(d.id, d.active, f.fact)
			continue
		}
		var err error
		if values[i], err = h.assertion(r, d.sessionKey, d.amr, d.id, d.active); err != nil {
			return nil, err
		}
	}
	return values, nil
}

// placeholders answers the {wijgate.*} placeholders (and Caddy's
// {http.auth.user.id}, so access logs show the user) from the identity the
// guard let through. A lookup happens only when a later handler or log
// asks, so a request whose configuration uses none costs nothing more.
type placeholders struct {
	id     *identity
	active *orgIdentity
	app    string
}

func (p placeholders) replace(key string) (any, bool) {
	if key == contract.AppPlaceholder {
		return p.app, true
	}
	f, ok := contract.ByPlaceholder(key)
	if !ok {
		return nil, false
	}
	return factValue(p.id, p.active, f), true
}

// factValue is one identity fact as it is, for placeholders; empty when
// the fact is about an organisation and the account acts for none, so no
// literal placeholder reaches an upstream.
func factValue(id *identity, o *orgIdentity, f contract.Fact) string {
	if o == nil && f.NeedsOrg() {
		return ""
	}
	switch f {
	case contract.UserID:
		return id.accountID()
	case contract.UserEmail:
		return id.email()
	case contract.UserName:
		return id.name()
	case contract.OrgKvK:
		return id.orgKvK(o)
	case contract.OrgName:
		return id.orgName(o)
	case contract.OrgRole:
		return o.role()
	case contract.Apps:
		return o.appsHeader()
	case contract.Assurance:
		return o.assurance()
	}
	return ""
}

// headerValue is one identity fact encoded for its header, as the
// contract's encodings say (the identity cache encodes once per account);
// empty like factValue.
func headerValue(id *identity, o *orgIdentity, f contract.Fact) string {
	switch {
	case f == contract.UserName:
		return id.nameHeader()
	case f == contract.OrgName && o != nil:
		return id.orgNameHeader(o)
	}
	return factValue(id, o, f)
}

// assertion is the signed identity token for this session and app; the
// signer reuses one until it nears expiry or the facts change, so the hot
// path rarely signs.
func (h *Handler) assertion(r *http.Request, sessionKey string, amr []string, id *identity, o *orgIdentity) (string, error) {
	c := token.Claims{
		Issuer: h.app.issuer(r), Audience: h.App, Subject: id.accountID(), Email: id.email(), Name: id.name(), AMR: amr,
	}
	if o != nil {
		c.OrgKvK, c.OrgName, c.Role, c.Apps, c.Assurance = id.orgKvK(o), id.orgName(o), o.role(), o.apps(), o.assurance()
	}
	return h.app.tokens.Token(token.CacheKey{Session: sessionKey, App: h.App}, c)
}

// refuse answers a logged-in request that the policy does not let
// through: a browser without an organisation goes to verify one, a
// browser without the right sees who can grant it, anything else gets 403.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, id *identity, active *orgIdentity, reason string) error {
	h.logger.Info("request refused by policy", zap.String("app", h.App), zap.String("account", id.accountID()),
		zap.String("reason", reason), zap.String("uri", r.RequestURI))
	w.Header().Set("Cache-Control", "no-store")
	h.app.events.Record(observe.Event{Kind: observe.Guard, App: h.App, Outcome: refusalOutcome(r, reason), Reason: reason})
	if isNavigation(r) {
		if reason == "no_org" {
			http.Redirect(w, r, h.app.portal.PortalPath(r, "/eherkenning"), http.StatusFound)
			return nil
		}
		var kvk, orgName string
		if active != nil {
			kvk, orgName = id.orgKvK(active), id.orgName(active)
		}
		h.app.portal.NoAccess(w, r, portal.NoAccessInfo{
			App: h.displayName(), Reason: reason, OrgKvK: kvk, OrgName: orgName,
		})
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, err := fmt.Fprintf(w, `{"error":"forbidden","reason":%q}`+"\n", reason)
	return err
}

// refuseAmbiguousPath answers a path the app might read differently from
// the route that guarded it: 400, with a page for a browser.
func (h *Handler) refuseAmbiguousPath(w http.ResponseWriter, r *http.Request) error {
	h.logger.Info("request refused: encoded slash or dot segment in the path", zap.String("app", h.App),
		zap.String("uri", r.RequestURI))
	h.app.events.Record(observe.Event{Kind: observe.Guard, App: h.App, Outcome: "400", Reason: "ambiguous_path"})
	w.Header().Set("Cache-Control", "no-store")
	if isNavigation(r) {
		h.app.portal.Refused(w, r, http.StatusBadRequest, "guard.ambiguous_path")
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, err := fmt.Fprintln(w, `{"error":"bad_request","reason":"ambiguous_path"}`)
	return err
}

// refuseWebSocket answers a WebSocket upgrade on a route without the
// websocket option.
func (h *Handler) refuseWebSocket(w http.ResponseWriter, r *http.Request) error {
	h.logger.Info("WebSocket upgrade refused: the route has no websocket option", zap.String("app", h.App),
		zap.String("uri", r.RequestURI))
	h.app.events.Record(observe.Event{Kind: observe.Guard, App: h.App, Outcome: "403", Reason: "websocket"})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, err := fmt.Fprintln(w, `{"error":"forbidden","reason":"websocket"}`)
	return err
}

// waitingForStorage answers while the server waits for its storage at
// start: the portal's waiting pages, or 503 for a guarded request.
func (h *Handler) waitingForStorage(w http.ResponseWriter, r *http.Request) error {
	switch {
	case h.Portal:
		h.app.waiting.ServeHTTP(w, r)
	case isNavigation(r):
		h.app.waiting.Page(w, r)
	default:
		writeUnavailable(w)
	}
	return nil
}

// storageUnavailable answers a guarded request that needs the storage
// while it cannot be reached: a page for a browser, 503 JSON otherwise,
// and one log line per outage.
func (h *Handler) storageUnavailable(w http.ResponseWriter, r *http.Request, what string, err error) error {
	if isNavigation(r) {
		h.app.portal.Unavailable(w, r, what, err)
		return nil
	}
	h.app.portal.LogUnavailable(r, what, err)
	writeUnavailable(w)
	return nil
}

// writeUnavailable is the 503 an API client gets while the storage cannot
// be reached.
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "30")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = fmt.Fprintln(w, `{"error":"unavailable"}`)
}

func (h *Handler) displayName() string {
	if h.Name != "" {
		return h.Name
	}
	return h.App
}

// unauthenticated sends a browser to the portal's login page with a return
// address, and anything else a 401 with a short JSON body.
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request) error {
	login := h.app.portal.LoginURL(requestURL(r))
	if isNavigation(r) {
		h.app.events.Record(observe.Event{Kind: observe.Guard, App: h.App, Outcome: "redirect"})
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, login, http.StatusFound)
		return nil
	}
	h.app.events.Record(observe.Event{Kind: observe.Guard, App: h.App, Outcome: "401"})
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
