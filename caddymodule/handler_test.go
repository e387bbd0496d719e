package caddymodule

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/portal"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

// The guard's ServeHTTP called directly, over the in-memory store, with a
// next handler that records the request it was handed. The whole-server
// tests (guard_integration_test.go and others) cover the same rules
// through Caddy; these pin down exactly what the upstream receives.

const (
	guardKvK        = "12345678"
	guardOrgName    = "Wij Techniek B.V."
	guardPortal     = "https://portal.example.nl"
	guardAppURL     = "https://apps.example.nl/declaratie/overzicht?jaar=2026"
	guardAppCookies = "_pk_id.1=5c8e; lang=nl"
)

// guardHarness is the wijgate app's state over an in-memory store, with a
// clock the test moves, and guards built on it the way Provision builds
// them.
type guardHarness struct {
	t        *testing.T
	app      *App
	store    *store.Store
	sessions *session.Manager
	offset   atomic.Int64
}

func newGuardHarness(t *testing.T) *guardHarness {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	g := &guardHarness{t: t, store: st}
	codec, err := session.NewCodec(contract.SessionCookie, session.NewKeyPair())
	if err != nil {
		t.Fatal(err)
	}
	g.sessions = session.NewManager(st, codec, session.Settings{Now: g.now})
	t.Cleanup(func() { g.sessions.Close(); st.Close() })
	tokens, err := token.NewSigner(st, token.Options{Now: g.now})
	if err != nil {
		t.Fatal(err)
	}
	accounts, orgs := domainServices(st, nil, 0)
	orgs.Now = g.now
	a := &App{PortalURL: guardPortal, engine: st, sessions: g.sessions, accounts: accounts, orgs: orgs, tokens: tokens,
		stripper: newHeaderStripper(nil), ownCookies: contract.Cookies(contract.SessionCookie),
		identity: newIdentityCache(DefaultStorageOutageGrace), lastIssuer: new(atomic.Pointer[string])}
	// Admins here act on a password alone; the mfa tests set the policy.
	a.SecondFactor = "off"
	a.ready = new(atomic.Bool)
	a.ready.Store(true)
	returns, err := portal.NewReturnPolicy(guardPortal, []string{"apps.example.nl"})
	if err != nil {
		t.Fatal(err)
	}
	a.portal, err = portal.New(portal.Config{Accounts: accounts, Sessions: g.sessions, Orgs: orgs, Apps: a.appInfos,
		Cookie: portal.CookieSettings{Name: contract.SessionCookie}, Returns: returns, Now: g.now})
	if err != nil {
		t.Fatal(err)
	}
	a.registerApp(AppInfo{Name: "declaratie", Display: "Declaratie Systeem"}, nil)
	a.registerApp(AppInfo{Name: "rie", Display: "RI&E"}, nil)
	g.app = a
	return g
}

func (g *guardHarness) now() time.Time { return time.Now().Add(time.Duration(g.offset.Load())) }

func (g *guardHarness) advance(d time.Duration) { g.offset.Add(int64(d)) }

// guard provisions h over the harness's app as Provision does: the facts
// to send, the aliases, the weakest anchoring and the app's registration.
func (g *guardHarness) guard(h Handler) *Handler {
	g.t.Helper()
	if err := h.Validate(); err != nil {
		g.t.Fatal(err)
	}
	facts := h.Headers
	if len(facts) == 0 {
		facts = contract.Names()
	}
	for _, name := range facts {
		f, err := checkFact("headers", name)
		if err != nil {
			g.t.Fatal(err)
		}
		h.send = append(h.send, headerField{header: f.Header(), fact: f})
	}
	var aliases []string
	for header, name := range h.Aliases {
		f, err := checkFact("alias "+header, name)
		if err != nil {
			g.t.Fatal(err)
		}
		h.send = append(h.send, headerField{header: http.CanonicalHeaderKey(header), fact: f})
		aliases = append(aliases, header)
	}
	if h.MinAssurance == "" {
		h.MinAssurance = "invited"
	}
	h.minRank = assuranceRank[h.MinAssurance]
	h.app, h.logger = g.app, zap.NewNop()
	g.app.registerApp(AppInfo{Name: h.App, Display: h.Name, URL: h.URL}, aliases)
	return &h
}

// account creates an account without a password (the guard never
// checks one).
func (g *guardHarness) account(id, email, name string) storage.Account {
	g.t.Helper()
	now := g.now()
	a := storage.Account{ID: id, Email: email, Name: name, CreatedAt: now, PasswordChangedAt: now}
	if err := g.store.CreateAccount(a); err != nil {
		g.t.Fatal(err)
	}
	return a
}

// admin creates an account that verified the organisation with
// eHerkenning.
func (g *guardHarness) admin(id, email, name string) storage.Account {
	g.t.Helper()
	a := g.account(id, email, name)
	if _, err := g.app.orgs.Link(id, org.Verified{KvK: guardKvK, Name: guardOrgName, Level: "loa3", Pseudonym: "S-" + id}); err != nil {
		g.t.Fatal(err)
	}
	return a
}

// member creates an account the admin invited with the given apps.
func (g *guardHarness) member(adminID, id, email, name string, apps ...string) storage.Account {
	g.t.Helper()
	a := g.account(id, email, name)
	tok, _, err := g.app.orgs.Invite(adminID, guardKvK, email, apps, g.app.appNames())
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := g.app.orgs.Accept(tok, a); err != nil {
		g.t.Fatal(err)
	}
	return a
}

// login starts a session of the account and returns its cookie value.
func (g *guardHarness) login(a storage.Account) string {
	g.t.Helper()
	raw, _, err := g.sessions.Create(a, session.Start{})
	if err != nil {
		g.t.Fatal(err)
	}
	return raw
}

// recordingNext is the handler after the guard: it keeps the request it
// was handed.
type recordingNext struct {
	got *http.Request
}

func (n *recordingNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.got = r
	w.WriteHeader(http.StatusTeapot)
	return nil
}

// request is a request for guardAppURL with the session cookie value
// (none when empty) beside the app's own cookies.
func request(method, sessionValue string) *http.Request {
	r := httptest.NewRequest(method, guardAppURL, nil)
	// As a server reads it: origin-form, not the absolute URL.
	r.RequestURI = r.URL.RequestURI()
	cookies := guardAppCookies
	if sessionValue != "" {
		cookies += "; " + contract.SessionCookie + "=" + sessionValue
	}
	r.Header.Set("Cookie", cookies)
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

// navigation is a browser opening a page.
func navigation(sessionValue string) *http.Request {
	r := request(http.MethodGet, sessionValue)
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	r.Header.Set("Accept", "text/html")
	r.Header.Add("Cookie", contract.LanguageCookie+"=en")
	return r
}

// apiCall is a script's request.
func apiCall(sessionValue string) *http.Request {
	r := request(http.MethodGet, sessionValue)
	r.Header.Set("Accept", "application/json")
	return r
}

// serve runs the guard and returns the answer and what next received
// (nil when the guard did not call it).
func serve(t *testing.T, h *Handler, r *http.Request) (*httptest.ResponseRecorder, *http.Request) {
	t.Helper()
	w := httptest.NewRecorder()
	next := &recordingNext{}
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if next.got != nil && w.Code != http.StatusTeapot {
		t.Fatalf("the guard called next and answered %d as well", w.Code)
	}
	return w, next.got
}

// wantRefused checks that the guard answered the request itself with
// status and did not let it through.
func wantRefused(t *testing.T, w *httptest.ResponseRecorder, got *http.Request, status int) {
	t.Helper()
	if got != nil {
		t.Fatalf("the guard let the request through: headers %v", got.Header)
	}
	if w.Code != status {
		t.Fatalf("status %d, want %d\n%s", w.Code, status, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a refusal, want no-store", cc)
	}
}

// wantUnauthenticated checks the two answers to a request without a live
// session: the browser goes to the login page with its address to come
// back to, a script gets 401 naming that page.
func wantUnauthenticated(t *testing.T, h *Handler, sessionValue string) {
	t.Helper()
	login := guardPortal + "/login?return=" + url.QueryEscape(guardAppURL)
	w, got := serve(t, h, navigation(sessionValue))
	wantRefused(t, w, got, http.StatusFound)
	if loc := w.Header().Get("Location"); loc != login {
		t.Errorf("browser sent to %q, want %q", loc, login)
	}
	w, got = serve(t, h, apiCall(sessionValue))
	wantRefused(t, w, got, http.StatusUnauthorized)
	var body struct{ Error, Login string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "unauthenticated" || body.Login != login {
		t.Errorf("401 body %s (%v), want the login address %s", w.Body, err, login)
	}
	if w.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
}

// identityHeaders are the headers of next's request that the identity
// contract reserves or the stripper removes, by canonical name.
func identityHeaders(g *guardHarness, r *http.Request) map[string]string {
	out := map[string]string{}
	for name, values := range r.Header {
		if g.app.stripper.isIdentity(name) {
			out[name] = strings.Join(values, "|")
		}
	}
	return out
}

func TestGuardHandlerWithoutSession(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	h := g.guard(Handler{App: "declaratie"})
	wantUnauthenticated(t, h, "")

	// A form post is no navigation: it gets the 401, not a redirect that
	// would lose the form.
	w, got := serve(t, h, request(http.MethodPost, ""))
	wantRefused(t, w, got, http.StatusUnauthorized)
}

func TestGuardHandlerRefusesDeadSessions(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	h := g.guard(Handler{App: "declaratie"})
	jan := g.admin("u-jan", "jan@example.nl", "Jan Jansen")

	t.Run("forged", func(t *testing.T) {
		wantUnauthenticated(t, h, "MTcwMDAwMDAwMHxmb3JnZWQtc2Vzc2lvbnxub3QtYS1tYWM")
		// A well-formed cookie sealed with another key.
		other, err := session.NewCodec(contract.SessionCookie, session.NewKeyPair())
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := other.Encode(session.NewID())
		if err != nil {
			t.Fatal(err)
		}
		wantUnauthenticated(t, h, sealed)
	})
	t.Run("expired", func(t *testing.T) {
		raw := g.login(jan)
		if _, got := serve(t, h, apiCall(raw)); got == nil {
			t.Fatal("a fresh session was refused")
		}
		g.advance(session.DefaultIdleTimeout + time.Minute)
		wantUnauthenticated(t, h, raw)
	})
	t.Run("logged out", func(t *testing.T) {
		raw := g.login(jan)
		if _, got := serve(t, h, apiCall(raw)); got == nil {
			t.Fatal("a fresh session was refused")
		}
		if err := g.sessions.Revoke(raw); err != nil {
			t.Fatal(err)
		}
		wantUnauthenticated(t, h, raw)
	})
}

func TestGuardHandlerSessionWithoutAnchoredMembership(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	g.admin("u-jan", "jan@example.nl", "Jan Jansen")
	piet := g.account("u-piet", "piet@example.nl", "Piet Pieters")
	// A membership whose inviter is no member: not anchored, so the guard
	// acts as if there were none.
	err := g.store.UpdateMembers(guardKvK, func(ms []storage.Membership) ([]storage.Membership, error) {
		return append(ms, storage.Membership{KvK: guardKvK, AccountID: piet.ID, Role: org.RoleAdmin,
			Anchor: org.AnchorInvited, InvitedBy: "u-gone", Apps: []string{"declaratie"}, Since: g.now()}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := g.login(piet)
	h := g.guard(Handler{App: "declaratie"})

	w, got := serve(t, h, navigation(raw))
	wantRefused(t, w, got, http.StatusFound)
	if loc := w.Header().Get("Location"); loc != guardPortal+"/eherkenning" {
		t.Errorf("browser without an organisation sent to %q, want the eHerkenning page", loc)
	}
	w, got = serve(t, h, apiCall(raw))
	wantRefused(t, w, got, http.StatusForbidden)
	if !strings.Contains(w.Body.String(), `"reason":"no_org"`) {
		t.Errorf("403 body %s, want reason no_org", w.Body)
	}

	// A route that needs only a session lets them through, with no
	// organisation facts.
	_, got = serve(t, g.guard(Handler{App: "declaratie", Require: "session"}), apiCall(raw))
	if got == nil {
		t.Fatal("require session refused a logged-in account")
	}
	want := map[string]string{
		"X-Wij-User-Id": piet.ID, "X-Wij-User-Email": piet.Email, "X-Wij-User-Name": "Piet Pieters",
	}
	ids := identityHeaders(g, got)
	if tok := ids[contract.Assertion.Header()]; tok == "" {
		t.Error("no identity token")
	}
	delete(ids, contract.Assertion.Header())
	if !sameHeaders(ids, want) {
		t.Errorf("identity headers %v, want %v", ids, want)
	}
}

func TestGuardHandlerMemberWithoutTheRight(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	g.admin("u-jan", "jan@example.nl", "Jan Jansen")
	h := g.guard(Handler{App: "declaratie", Name: "Declaratie Systeem"})
	piet := g.member("u-jan", "u-piet", "piet@example.nl", "Piet Pieters", "rie")
	raw := g.login(piet)

	w, got := serve(t, h, navigation(raw))
	wantRefused(t, w, got, http.StatusForbidden)
	page := w.Body.String()
	for _, want := range []string{"No access", "Declaratie Systeem", guardOrgName, "KvK " + guardKvK,
		"Jan Jansen &lt;jan@example.nl&gt;", guardPortal + "/dashboard"} {
		if !strings.Contains(page, want) {
			t.Errorf("the no-access page lacks %q:\n%s", want, page)
		}
	}
	w, got = serve(t, h, apiCall(raw))
	wantRefused(t, w, got, http.StatusForbidden)
	if !strings.Contains(w.Body.String(), `"reason":"no_right"`) {
		t.Errorf("403 body %s, want reason no_right", w.Body)
	}
}

// TestGuardRequireLevels: each `require` level asks for exactly its own
// condition.
func TestGuardHandlerRequireLevels(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	jan := g.admin("u-jan", "jan@example.nl", "Jan Jansen")
	with := g.member("u-jan", "u-with", "with@example.nl", "Met Recht", "declaratie")
	without := g.member("u-jan", "u-without", "without@example.nl", "Zonder Recht")
	outsider := g.account("u-out", "out@example.nl", "Buiten Staander")
	guards := map[string]*Handler{
		"session": g.guard(Handler{App: "declaratie", Require: "session"}),
		"org":     g.guard(Handler{App: "declaratie", Require: "org"}),
		"app":     g.guard(Handler{App: "declaratie", Require: "app"}),
		"default": g.guard(Handler{App: "declaratie"}),
		// Admins may use every app, so only admin_only tells them apart.
		"admin_only": g.guard(Handler{App: "declaratie", AdminOnly: true}),
		"eh3":        g.guard(Handler{App: "declaratie", MinAssurance: "eh3"}),
	}
	for _, c := range []struct {
		who  storage.Account
		pass []string
	}{
		{jan, []string{"session", "org", "app", "default", "admin_only", "eh3"}},
		{with, []string{"session", "org", "app", "default"}},
		{without, []string{"session", "org"}},
		{outsider, []string{"session"}},
	} {
		raw := g.login(c.who)
		for level, h := range guards {
			w, got := serve(t, h, apiCall(raw))
			if passed := got != nil; passed != slices.Contains(c.pass, level) {
				t.Errorf("%s on a %s route: let through %v (status %d %s)", c.who.Name, level, passed, w.Code, w.Body)
			}
		}
	}
}

// TestGuardHandsOnIdentity: a request let through carries exactly the
// contract's identity headers with the account's values, nothing a
// client sent under an identity name, and none of wijgate's cookies.
func TestGuardHandlerHandsOnIdentity(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	g.admin("u-jan", "jan@example.nl", "Jan Jansen")
	h := g.guard(Handler{App: "declaratie", Aliases: map[string]string{"Remote-User": "email"}})
	piet := g.member("u-jan", "u-piet", "piet@example.nl", "Piet Pietersën", "declaratie")
	raw := g.login(piet)

	r := navigation(raw)
	forged := map[string]string{
		"X-Wij-User-Id": "u-jan", "x-wij-org-role": "admin", "X_Wij_Apps": "declaratie,rie",
		"X-WIJ-ASSURANCE": "eh4", "X-Wij-Something-New": "1", "Remote-User": "jan@example.nl",
		"remote_user": "jan@example.nl", "X-Forwarded-User": "jan", "X-Authentik-Username": "jan",
		"Cf-Access-Authenticated-User-Email": "jan@example.nl",
	}
	for name, value := range forged {
		r.Header[name] = []string{value}
	}
	r.Header.Add("Cookie", contract.CSRFCookie+"=ABCDEFGHIJKLMNOPQRSTUVWXYZ; "+contract.FlowCookie+"=f; app_session=keep-me")
	r.Header.Add("Cookie", contract.EHBindingCookie+"=secret")
	w, got := serve(t, h, r)
	if got == nil {
		t.Fatalf("a member with the right was refused: %d\n%s", w.Code, w.Body)
	}

	ids := identityHeaders(g, got)
	tok := ids[contract.Assertion.Header()]
	delete(ids, contract.Assertion.Header())
	want := map[string]string{
		"X-Wij-User-Id": "u-piet", "X-Wij-User-Email": "piet@example.nl", "X-Wij-User-Name": "Piet Pieters%C3%ABn",
		"X-Wij-Org-Kvk": guardKvK, "X-Wij-Org-Name": guardOrgName, "X-Wij-Org-Role": "member",
		"X-Wij-Apps": "declaratie", "X-Wij-Assurance": "invited", "Remote-User": "piet@example.nl",
	}
	if !sameHeaders(ids, want) {
		t.Errorf("identity headers upstream:\n got %v\nwant %v", ids, want)
	}
	claims := verifyToken(t, g, tok)
	if claims["sub"] != "u-piet" || claims["aud"] != "declaratie" || claims["org_kvk"] != guardKvK ||
		claims["role"] != "member" || claims["name"] != "Piet Pietersën" || claims["iss"] != guardPortal {
		t.Errorf("identity token claims %v", claims)
	}

	cookies := strings.Join(got.Header["Cookie"], "; ")
	for _, name := range contract.Cookies(contract.SessionCookie) {
		if strings.Contains(cookies, name+"=") {
			t.Errorf("wijgate's cookie %s reached the app: %q", name, cookies)
		}
	}
	for _, kept := range []string{"_pk_id.1=5c8e", "lang=nl", "app_session=keep-me"} {
		if !strings.Contains(cookies, kept) {
			t.Errorf("the app's cookie %s was removed: %q", kept, cookies)
		}
	}

	repl := got.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	for key, want := range map[string]string{"wijgate.user.email": "piet@example.nl", "http.auth.user.id": "u-piet",
		"wijgate.org.name": guardOrgName, "wijgate.app": "declaratie", "wijgate.user.name": "Piet Pietersën"} {
		if v, _ := repl.GetString(key); v != want {
			t.Errorf("placeholder %s = %q, want %q", key, v, want)
		}
	}
}

// TestGuardIdentityTokenOnlyWhenConfigured: `headers` chooses the facts
// sent; the token is one of them.
func TestGuardHandlerIdentityTokenOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	jan := g.admin("u-jan", "jan@example.nl", "Jan Jansen")
	raw := g.login(jan)

	_, got := serve(t, g.guard(Handler{App: "declaratie", Headers: []string{"email", "org_kvk"}}), apiCall(raw))
	if got == nil {
		t.Fatal("an admin was refused")
	}
	if ids, want := identityHeaders(g, got), map[string]string{"X-Wij-User-Email": jan.Email, "X-Wij-Org-Kvk": guardKvK}; !sameHeaders(ids, want) {
		t.Errorf("headers email, org_kvk sent %v", ids)
	}

	_, got = serve(t, g.guard(Handler{App: "rie", Headers: []string{"assertion"}}), apiCall(raw))
	if got == nil {
		t.Fatal("an admin was refused")
	}
	ids := identityHeaders(g, got)
	if len(ids) != 1 {
		t.Errorf("headers assertion sent %v", ids)
	}
	claims := verifyToken(t, g, ids[contract.Assertion.Header()])
	if claims["aud"] != "rie" || claims["sub"] != jan.ID || claims["role"] != "admin" || claims["assurance"] != "eh3" {
		t.Errorf("identity token claims %v", claims)
	}
}

// TestGuardHonoursChangesOnTheNextRequest: the identity cache is trusted
// only while the account's version stands, so an admin's change and a
// disabled account count from the next request on.
func TestGuardHandlerHonoursChangesOnTheNextRequest(t *testing.T) {
	t.Parallel()
	g := newGuardHarness(t)
	g.admin("u-jan", "jan@example.nl", "Jan Jansen")
	h := g.guard(Handler{App: "declaratie"})
	piet := g.member("u-jan", "u-piet", "piet@example.nl", "Piet Pieters", "declaratie")
	raw := g.login(piet)
	passes := func() bool {
		t.Helper()
		w, got := serve(t, h, apiCall(raw))
		if got == nil && w.Code != http.StatusForbidden && w.Code != http.StatusUnauthorized {
			t.Fatalf("unexpected answer %d %s", w.Code, w.Body)
		}
		return got != nil
	}
	if !passes() {
		t.Fatal("a member with the right was refused")
	}
	if err := g.app.orgs.SetApps("u-jan", guardKvK, piet.ID, []string{"rie"}, g.app.appNames()); err != nil {
		t.Fatal(err)
	}
	if passes() {
		t.Fatal("the right was taken away, but the next request went through")
	}
	if err := g.app.orgs.SetApps("u-jan", guardKvK, piet.ID, []string{"declaratie"}, g.app.appNames()); err != nil {
		t.Fatal(err)
	}
	if !passes() {
		t.Fatal("the right was given back, but the next request was refused")
	}
	if _, err := (&account.Service{Store: g.store}).Disable(piet.Email); err != nil {
		t.Fatal(err)
	}
	wantUnauthenticated(t, h, raw)
}

// sameHeaders reports whether two header maps are equal.
func sameHeaders(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// verifyToken checks the identity token's ES256 signature with the
// signer's published key and returns its claims.
func verifyToken(t *testing.T, g *guardHarness, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("identity token %q is no JWS", tok)
	}
	var header struct{ Alg, Kid string }
	decodePart(t, parts[0], &header)
	pub, ok := g.app.tokens.PublicKeys()[header.Kid].(*ecdsa.PublicKey)
	if !ok || header.Alg != "ES256" {
		t.Fatalf("identity token header %+v names no published ES256 key", header)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("identity token signature: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("identity token signature does not verify")
	}
	var claims map[string]any
	decodePart(t, parts[1], &claims)
	return claims
}

func decodePart(t *testing.T, part string, v any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}
