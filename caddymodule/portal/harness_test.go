package portal

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// portalHarness is the portal over an in-memory store, with a mailer that
// records what it sends and a clock the test moves. Requests go straight
// to the portal's ServeHTTP, as a browser on the portal's own site would
// send them; no Caddy and no network are involved.
type portalHarness struct {
	t        testing.TB
	portal   *Portal
	store    *store.Store
	accounts *account.Service
	orgs     *org.Service
	sessions *session.Manager
	mail     *recordingSender
	// offset moves the clock of every service.
	offset atomic.Int64
}

// harnessOptions changes the portal's configuration before it is built.
type harnessOptions func(*Config)

func newPortalHarness(t testing.TB, opts ...harnessOptions) *portalHarness {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &portalHarness{t: t, store: st, mail: &recordingSender{}}
	codec, err := session.NewCodec(sessionCookieName, session.NewKeyPair())
	if err != nil {
		t.Fatal(err)
	}
	h.sessions = session.NewManager(st, codec, session.Settings{Now: h.now})
	t.Cleanup(func() { h.sessions.Close(); st.Close() })
	h.accounts = &account.Service{Store: st, Hasher: account.NewTestHasher(), Now: h.now}
	h.orgs = &org.Service{Store: st, Now: h.now}
	returns, err := NewReturnPolicy("https://portal.example.nl", []string{"apps.example.nl"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Accounts: h.accounts,
		Sessions: h.sessions,
		Orgs:     h.orgs,
		Privacy:  &privacy.Service{Accounts: h.accounts, Orgs: h.orgs, Store: st, Now: h.now},
		Apps: func() []AppInfo {
			return []AppInfo{{Name: "declaratie", Display: "Declaratie Systeem"}, {Name: "rie", Display: "RI&E"}}
		},
		Codes:   &account.Codes{Store: st, Key: []byte("0123456789abcdef0123456789abcdef"), Now: h.now},
		Limits:  &account.Limits{Store: st, Now: h.now},
		Mailer:  h.mail,
		Cookie:  CookieSettings{Name: sessionCookieName},
		Returns: returns,
		Now:     h.now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if h.portal, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *portalHarness) now() time.Time { return time.Now().Add(time.Duration(h.offset.Load())) }

// advance moves every service's clock forward by d.
func (h *portalHarness) advance(d time.Duration) { h.offset.Add(int64(d)) }

// browser is one person's browser on the portal: it keeps the cookies the
// portal sets and sends its forms with their anti-forgery token.
type browser struct {
	h       *portalHarness
	cookies map[string]*http.Cookie
	// lang is sent as Accept-Language; empty sends none.
	lang string
}

func (h *portalHarness) browser() *browser {
	return &browser{h: h, cookies: map[string]*http.Cookie{}}
}

// get requests path and returns the recorded answer.
func (b *browser) get(path string) *httptest.ResponseRecorder {
	return b.do(httptest.NewRequest(http.MethodGet, "https://portal.example.nl"+path, nil))
}

// getFrom requests path as a client at remoteAddr ("127.0.0.1:50000").
func (b *browser) getFrom(remoteAddr, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://portal.example.nl"+path, nil)
	r.RemoteAddr = remoteAddr
	return b.do(r)
}

// post submits a form to path as the portal's own page would: same-origin,
// with the browser's anti-forgery token unless form carries one.
func (b *browser) post(path string, form url.Values) *httptest.ResponseRecorder {
	if form == nil {
		form = url.Values{}
	}
	return b.do(b.formRequest(path, form))
}

// formRequest is the request post sends, for a test that changes it
// before passing it to do.
func (b *browser) formRequest(path string, form url.Values) *http.Request {
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf())
	}
	r := httptest.NewRequest(http.MethodPost, "https://portal.example.nl"+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

// do sends r with the browser's cookies and keeps the ones it gets back.
func (b *browser) do(r *http.Request) *httptest.ResponseRecorder {
	b.h.t.Helper()
	for _, c := range b.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	if b.lang != "" {
		r.Header.Set("Accept-Language", b.lang)
	}
	rec := httptest.NewRecorder()
	b.h.portal.ServeHTTP(rec, r)
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		b.h.t.Errorf("%s %s: %d\n%s", r.Method, r.URL.Path, rec.Code, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return rec
}

// csrf is the browser's anti-forgery token, fetched from a page when it
// has none yet.
func (b *browser) csrf() string {
	if c, ok := b.cookies[csrfCookie]; ok {
		return c.Value
	}
	b.get("/login")
	c, ok := b.cookies[csrfCookie]
	if !ok {
		b.h.t.Fatal("the login page set no anti-forgery cookie")
	}
	return c.Value
}

// session is the browser's session cookie value, "" when it has none.
func (b *browser) session() string {
	if c, ok := b.cookies[sessionCookieName]; ok {
		return c.Value
	}
	return ""
}

// sessionCookieName is the session cookie's name in the harness.
const sessionCookieName = "__Host-wijgate"

// account creates an account with a password that passes the rules.
func (h *portalHarness) account(email, name string) storage.Account {
	h.t.Helper()
	a, err := h.accounts.Create(context.Background(), email, name, testPassword, "nl")
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// testPassword passes the password rules.
const testPassword = "paarden-stal-lamp-9"

// loggedIn returns a browser holding a session of the account.
func (h *portalHarness) loggedIn(email string) *browser {
	h.t.Helper()
	b := h.browser()
	rec := b.post("/login", url.Values{"email": {email}, "password": {testPassword}})
	if rec.Code != http.StatusSeeOther {
		h.t.Fatalf("login as %s: %d\n%s", email, rec.Code, rec.Body)
	}
	return b
}

// linkOrg makes the account an eHerkenning-verified admin of a company.
func (h *portalHarness) linkOrg(accountID, kvk, name string) {
	h.t.Helper()
	if _, err := h.orgs.Link(accountID, org.Verified{KvK: kvk, Name: name, Level: "loa3", Pseudonym: "ps-" + accountID}); err != nil {
		h.t.Fatal(err)
	}
}

// pageText is a catalogue text as a page shows it, HTML-escaped.
func pageText(lang Lang, key string) string { return template.HTMLEscapeString(lang.T(key)) }

// wantPage fails the test unless rec answered status with an HTML page in
// lang that shows the catalogue texts of keys.
func wantPage(t testing.TB, rec *httptest.ResponseRecorder, status int, lang Lang, keys ...string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d\n%s", rec.Code, status, rec.Body)
	}
	if got := rec.Header().Get("Content-Language"); got != string(lang) {
		t.Errorf("Content-Language %q, want %q", got, lang)
	}
	for _, key := range keys {
		if !strings.Contains(rec.Body.String(), pageText(lang, key)) {
			t.Errorf("the page lacks %s %q:\n%s", key, lang.T(key), rec.Body)
		}
	}
}

// wantRedirect fails the test unless rec sends the browser on to location.
func wantRedirect(t testing.TB, rec *httptest.ResponseRecorder, location string) {
	t.Helper()
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != location {
		t.Fatalf("%d to %q, want 303 to %q\n%s", rec.Code, rec.Header().Get("Location"), location, rec.Body)
	}
}

// recordingSender keeps the messages the portal sends; fail makes Send
// return an error instead.
type recordingSender struct {
	mu   sync.Mutex
	sent []mail.Message
	fail error
}

func (s *recordingSender) Send(_ context.Context, m mail.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.sent = append(s.sent, m)
	return nil
}

// failWith makes Send fail with err from now on; nil lets it work again.
func (s *recordingSender) failWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// messages are the messages sent so far.
func (s *recordingSender) messages() []mail.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

var codePattern = regexp.MustCompile(`\b[0-9]{3}[ -]?[0-9]{3}\b`)

// lastCode is the verification code in the newest message to addr.
func (s *recordingSender) lastCode(t testing.TB, addr string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.sent) - 1; i >= 0; i-- {
		if strings.Contains(s.sent[i].To, addr) {
			if c := codePattern.FindString(s.sent[i].Text); c != "" {
				return c
			}
		}
	}
	t.Fatalf("no code was sent to %s", addr)
	return ""
}
