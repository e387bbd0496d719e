package portal

import (
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// formPaths are the portal's account forms, each with a form that does
// something when it is let through.
var formPaths = []struct {
	path string
	form url.Values
}{
	{"/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}}},
	{"/logout", url.Values{}},
	{"/register", url.Values{"action": {"send"}, "email": {"anna@example.nl"}}},
	{"/password/forgot", url.Values{"action": {"send"}, "email": {"jan@example.nl"}}},
	{"/dashboard/active", url.Values{"kvk": {"12345678"}}},
}

// refusedForms is a portal with an account logged in and a member of an
// organisation, for tests that post forms that must be refused.
type refusedForms struct {
	h       *portalHarness
	b       *browser
	session string
}

func newRefusedForms(t *testing.T) refusedForms {
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	h.linkOrg(jan.ID, "12345678", "Bouwbedrijf Jansen")
	h.linkOrg(jan.ID, "87654321", "Installatie De Boer")
	b := h.loggedIn("jan@example.nl")
	wantRedirect(t, b.post("/dashboard/active", url.Values{"kvk": {"87654321"}}), "/dashboard")
	return refusedForms{h: h, b: b, session: b.session()}
}

// nothingHappened fails the test if a refused form had an effect: a mail
// sent, the browser's session ended or changed, or a session started.
func (rf refusedForms) nothingHappened(t *testing.T, path string) {
	t.Helper()
	if msgs := rf.h.mail.messages(); len(msgs) != 0 {
		t.Errorf("%s: a refused form sent %d mails", path, len(msgs))
	}
	s, err := rf.h.sessions.Lookup(rf.session)
	if err != nil || s.ActiveOrg != "87654321" {
		t.Errorf("%s: a refused form changed the session: %+v, %v", path, s, err)
	}
	if rf.b.session() != rf.session {
		t.Errorf("%s: a refused form replaced the session cookie", path)
	}
}

// TestCrossOriginFormPostsAreRefused: a form posted from another site is
// refused even with the right token, whether the browser says so with
// Sec-Fetch-Site or only with Origin.
func TestCrossOriginFormPostsAreRefused(t *testing.T) {
	t.Parallel()
	rf := newRefusedForms(t)
	for _, fp := range formPaths {
		for _, header := range [][2]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}, {"Origin", "https://evil.example"}} {
			r := rf.b.formRequest(fp.path, maps.Clone(fp.form))
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set(header[0], header[1])
			wantPage(t, rf.b.do(r), http.StatusForbidden, Dutch, "form.expired")
		}
		rf.nothingHappened(t, fp.path)
	}
	// The same form from the portal's own origin goes through.
	r := rf.b.formRequest("/dashboard/active", url.Values{"kvk": {"12345678"}})
	r.Header.Del("Sec-Fetch-Site")
	r.Header.Set("Origin", "https://portal.example.nl")
	wantRedirect(t, rf.b.do(r), "/dashboard")
}

// TestFormsNeedTheirToken: a form without the anti-forgery token, with a
// wrong one, or from a browser without the token's cookie is refused.
func TestFormsNeedTheirToken(t *testing.T) {
	t.Parallel()
	rf := newRefusedForms(t)
	for _, fp := range formPaths {
		for name, token := range map[string][]string{
			"no token":    {},
			"empty":       {""},
			"wrong token": {strings.Repeat("A", 26)},
		} {
			form := maps.Clone(fp.form)
			form["csrf"] = token
			t.Run(fp.path+" "+name, func(t *testing.T) {
				wantPage(t, rf.b.post(fp.path, form), http.StatusForbidden, Dutch, "form.expired")
			})
		}
		// The right token, but the cookie it must match is gone.
		form := maps.Clone(fp.form)
		form.Set("csrf", rf.b.csrf())
		r := rf.b.formRequest(fp.path, form)
		noCookie := rf.h.browser()
		noCookie.cookies[sessionCookieName] = rf.b.cookies[sessionCookieName]
		wantPage(t, noCookie.do(r), http.StatusForbidden, Dutch, "form.expired")
		rf.nothingHappened(t, fp.path)
	}
}

// TestOversizedFormIsRefused: a form body larger than maxFormBytes is
// answered 413 before any handler reads it.
func TestOversizedFormIsRefused(t *testing.T) {
	t.Parallel()
	rf := newRefusedForms(t)
	for _, fp := range formPaths {
		form := maps.Clone(fp.form)
		form.Set("padding", strings.Repeat("x", maxFormBytes))
		wantPage(t, rf.b.post(fp.path, form), http.StatusRequestEntityTooLarge, Dutch, "form.toolarge")
		rf.nothingHappened(t, fp.path)
	}
}

// TestUnreadableFormIsRefused: a body that is no form of its content
// type is answered 400, not taken for a form without its token.
func TestUnreadableFormIsRefused(t *testing.T) {
	t.Parallel()
	rf := newRefusedForms(t)
	for _, fp := range formPaths {
		for _, body := range []struct{ contentType, body string }{
			{"application/x-www-form-urlencoded", "csrf=" + rf.b.csrf() + "&email=%zz"},
			{"multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + rf.b.csrf()},
			{"multipart/form-data", "no boundary"},
		} {
			r := httptest.NewRequest(http.MethodPost, "https://portal.example.nl"+fp.path, strings.NewReader(body.body))
			r.Header.Set("Content-Type", body.contentType)
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			wantPage(t, rf.b.do(r), http.StatusBadRequest, Dutch, "form.unknown")
		}
		rf.nothingHappened(t, fp.path)
	}
}

// TestUnknownPathsGetTheNotFoundPage: any method on a path the portal
// does not have answers the 404 page in the person's language.
func TestUnknownPathsGetTheNotFoundPage(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	for _, path := range []string{"/nope", "/login/extra", "/dashboard/active", "/register/x"} {
		wantPage(t, b.get(path), http.StatusNotFound, Dutch, "error.notfound", "error.back")
	}
	wantPage(t, b.post("/nope", nil), http.StatusNotFound, Dutch, "error.notfound")
	b.get("/account?lang=en")
	wantPage(t, b.get("/nope"), http.StatusNotFound, English, "error.notfound")
}

// TestStaticFiles: the stylesheet, script and icon are served as embedded,
// with their types; other names under /static are not found.
func TestStaticFiles(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	for name, contentType := range map[string]string{
		"wijgate.css":   "text/css; charset=utf-8",
		"autosubmit.js": "text/javascript; charset=utf-8",
		"favicon.svg":   "image/svg+xml",
	} {
		want, err := fs.ReadFile(staticFS, "static/"+name)
		if err != nil {
			t.Fatal(err)
		}
		rec := b.get("/static/" + name)
		if rec.Code != http.StatusOK || rec.Body.String() != string(want) || rec.Header().Get("Content-Type") != contentType {
			t.Errorf("/static/%s: %d %q, %d bytes, want %q, %d bytes", name, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len(), contentType, len(want))
		}
	}
	for _, path := range []string{"/static/nope.css", "/static/templates/login.html", "/static/static/wijgate.css"} {
		if rec := b.get(path); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
}

// TestHealthzRoute: /healthz is served through the portal, as plain text
// that no cache keeps.
func TestHealthzRoute(t *testing.T) {
	t.Parallel()
	storageOK := true
	h := newPortalHarness(t, func(c *Config) {
		c.Health = []HealthCheck{{Name: "storage", Critical: true, Check: func() (bool, string) {
			if storageOK {
				return true, "ok"
			}
			return false, "full"
		}}}
	})
	rec := h.browser().get("/healthz")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\nstorage: ok\n" ||
		rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("/healthz: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	storageOK = false
	if rec := h.browser().get("/healthz"); rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "unhealthy\nstorage: full\n" {
		t.Fatalf("/healthz with the storage full: %d %q", rec.Code, rec.Body)
	}
}

// TestSecurityHeaders: every answer of the portal, page or refusal,
// carries the headers that keep it out of frames, caches and other
// sites' reach.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	b := h.browser()
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"login page":   b.get("/login"),
		"not found":    b.get("/nope"),
		"static file":  b.get("/static/wijgate.css"),
		"form refused": b.post("/login", url.Values{"csrf": {}}),
	} {
		for header, want := range map[string]string{
			"Cache-Control":              "no-store",
			"Content-Security-Policy":    "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'",
			"X-Content-Type-Options":     "nosniff",
			"Referrer-Policy":            "no-referrer",
			"Cross-Origin-Opener-Policy": "same-origin",
			"X-Frame-Options":            "DENY",
			"Strict-Transport-Security":  "max-age=63072000; includeSubDomains",
		} {
			if got := rec.Header().Get(header); got != want {
				t.Errorf("%s: %s %q, want %q", name, header, got, want)
			}
		}
	}
	// Without TLS the browser would ignore HSTS; it is not sent.
	r := httptest.NewRequest(http.MethodGet, "http://portal.example.nl/login", nil)
	if got := b.do(r).Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("HSTS over plain HTTP: %q", got)
	}
}

// TestLanguage: pages are Dutch by default, whatever the browser asks
// for; ?lang=en switches to English and the choice sticks, also on
// refusals, until ?lang=nl.
func TestLanguage(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.browser()
	b.lang = "en-GB,en;q=0.9"
	rec := b.get("/login")
	wantPage(t, rec, http.StatusOK, Dutch, "login.title", "lang.switch")
	if !strings.Contains(rec.Body.String(), `<html lang="nl">`) || !strings.Contains(rec.Body.String(), `href="/login?lang=en"`) {
		t.Fatalf("the Dutch page lacks its language or the switch to English:\n%s", rec.Body)
	}

	rec = b.get("/login?lang=en")
	wantPage(t, rec, http.StatusOK, English, "login.title", "login.forgot", "lang.switch")
	if !strings.Contains(rec.Body.String(), `<html lang="en">`) || !strings.Contains(rec.Body.String(), `href="/login?lang=nl"`) {
		t.Fatalf("the English page lacks its language or the switch to Dutch:\n%s", rec.Body)
	}
	if c := b.cookies[langCookie]; c == nil || c.Value != "en" {
		t.Fatalf("the choice is not remembered: %v", c)
	}
	wantPage(t, b.get("/register"), http.StatusOK, English, "register.title", "register.send")
	wantPage(t, b.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {"niet-het-wachtwoord"}}),
		http.StatusUnauthorized, English, "login.failed")
	wantPage(t, b.post("/login", url.Values{"csrf": {}}), http.StatusForbidden, English, "form.expired")

	wantPage(t, b.get("/account?lang=nl"), http.StatusOK, Dutch, "account.title")
	wantPage(t, b.get("/register"), http.StatusOK, Dutch, "register.title")
	// An unknown language leaves the choice as it was.
	wantPage(t, b.get("/register?lang=de"), http.StatusOK, Dutch, "register.title")
}
