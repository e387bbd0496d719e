package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/session"
)

// User-Agents of real browsers, as they send them.
const (
	firefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0"
	safariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
	edgeMac        = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0"
)

// loggedInWith logs the account in from a browser that sends this
// User-Agent and comes from remote.
func (h *portalHarness) loggedInWith(email, userAgent, remote string) *browser {
	h.t.Helper()
	b := h.browser()
	r := b.formRequest("/login", url.Values{"email": {email}, "password": {testPassword}})
	r.Header.Set("User-Agent", userAgent)
	r.RemoteAddr = remote
	if rec := b.do(r); rec.Code != http.StatusSeeOther {
		h.t.Fatalf("login as %s: %d\n%s", email, rec.Code, rec.Body)
	}
	return b
}

// handleOf is the handle the list gives the browser's session.
func (h *portalHarness) handleOf(b *browser) string {
	h.t.Helper()
	s, err := h.sessions.Lookup(b.session())
	if err != nil {
		h.t.Fatal(err)
	}
	return session.Handle(s)
}

// stillLoggedIn reports whether the browser's session opens the dashboard.
func stillLoggedIn(b *browser) bool { return b.get("/dashboard").Code == http.StatusOK }

// TestSessionsPageListsTheAccountsSessions: every live session of the
// account with its device, address and times, this one marked, nothing
// of another account, and no storage key or cookie on the page.
func TestSessionsPageListsTheAccountsSessions(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	wantRedirect(t, h.browser().get(sessionsPath), "https://portal.example.nl/login?return=%2Faccount%2Fsessions")
	h.account("jan@example.nl", "Jan Jansen")
	h.account("piet@example.nl", "Piet Pieters")
	here := h.loggedInWith("jan@example.nl", firefoxWindows, "192.0.2.10:5000")
	phone := h.loggedInWith("jan@example.nl", safariIPhone, "198.51.100.20:5000")
	odd := h.loggedInWith("jan@example.nl", "curl/8.14", "203.0.113.30:5000")
	h.loggedInWith("piet@example.nl", edgeMac, "203.0.113.99:5000")

	if rec := here.get("/dashboard"); !strings.Contains(rec.Body.String(), `href="/account/sessions"`) {
		t.Fatal("the dashboard does not link to the sessions page")
	}
	rec := here.get(sessionsPath)
	wantPage(t, rec, http.StatusOK, Dutch, "sessions.title", "sessions.endothers", "sessions.current")
	body := rec.Body.String()
	for _, want := range []string{"Firefox op Windows", "Safari op iPhone", pageText(Dutch, "sessions.unknowndevice"),
		"192.0.2.10:5000", "198.51.100.20:5000", "203.0.113.30:5000",
		h.handleOf(here), h.handleOf(phone), h.handleOf(odd)} {
		if !strings.Contains(body, want) {
			t.Errorf("the list lacks %q", want)
		}
	}
	if n := strings.Count(body, pageText(Dutch, "sessions.current")); n != 1 {
		t.Errorf("%d sessions are marked as this one, want 1", n)
	}
	if strings.Contains(body, "Edge") || strings.Contains(body, "203.0.113.99") {
		t.Error("the list shows another account's session")
	}
	for _, b := range []*browser{here, phone, odd} {
		s, _ := h.sessions.Lookup(b.session())
		if strings.Contains(body, s.Key) || strings.Contains(body, b.session()) {
			t.Error("the page shows a storage key or a cookie")
		}
	}
	here.lang = ""
	rec = here.get(sessionsPath + "?lang=en")
	wantPage(t, rec, http.StatusOK, English, "sessions.title", "sessions.endothers")
	if !strings.Contains(rec.Body.String(), "Firefox on Windows") {
		t.Errorf("the English list lacks Firefox on Windows:\n%s", rec.Body)
	}
}

// TestEndingOneSession: Afmelden on a row ends that session at once and
// leaves the others; on this session's own row it logs this browser out.
func TestEndingOneSession(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	here := h.loggedInWith("jan@example.nl", firefoxWindows, "192.0.2.10:5000")
	phone := h.loggedInWith("jan@example.nl", safariIPhone, "198.51.100.20:5000")
	laptop := h.loggedInWith("jan@example.nl", edgeMac, "198.51.100.21:5000")

	wantRedirect(t, here.post(sessionsPath, url.Values{"action": {"end"}, "session": {h.handleOf(phone)}}), sessionsPath+"?ended=one")
	if stillLoggedIn(phone) {
		t.Fatal("the ended session still opens the dashboard")
	}
	if !stillLoggedIn(here) || !stillLoggedIn(laptop) {
		t.Fatal("ending one session ended another")
	}
	rec := here.get(sessionsPath + "?ended=one")
	wantPage(t, rec, http.StatusOK, Dutch, "sessions.ended")
	if strings.Contains(rec.Body.String(), "iPhone") {
		t.Error("the ended session is still listed")
	}

	wantRedirect(t, here.post(sessionsPath, url.Values{"action": {"end"}, "session": {h.handleOf(here)}}), "/login?loggedout=1")
	if here.session() != "" || stillLoggedIn(here) {
		t.Fatal("ending this session from the list left this browser logged in")
	}
	if !stillLoggedIn(laptop) {
		t.Fatal("ending this session ended another")
	}
}

// TestSigningOutEverywhereElse ends every other session of the account,
// and only those.
func TestSigningOutEverywhereElse(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	h.account("piet@example.nl", "Piet Pieters")
	here := h.loggedIn("jan@example.nl")
	others := []*browser{h.loggedIn("jan@example.nl"), h.loggedIn("jan@example.nl")}
	piet := h.loggedIn("piet@example.nl")

	wantRedirect(t, here.post(sessionsPath, url.Values{"action": {"endothers"}}), sessionsPath+"?ended=others")
	for _, b := range others {
		if stillLoggedIn(b) {
			t.Fatal("a session elsewhere survived Overal elders afmelden")
		}
	}
	if !stillLoggedIn(here) || !stillLoggedIn(piet) {
		t.Fatal("Overal elders afmelden ended this session or another account's")
	}
	rec := here.get(sessionsPath + "?ended=others")
	wantPage(t, rec, http.StatusOK, Dutch, "sessions.endedothers")
	if strings.Contains(rec.Body.String(), pageText(Dutch, "sessions.endothers")) {
		t.Error("with no other sessions left, the page still offers to end them")
	}
}

// TestEndingSomeoneElsesSessionDoesNothing: a handle of another
// account's session, a made-up one or an overlong one ends nothing and
// gets a plain message with the list as it is.
func TestEndingSomeoneElsesSessionDoesNothing(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	h.account("piet@example.nl", "Piet Pieters")
	jan := h.loggedIn("jan@example.nl")
	jan2 := h.loggedIn("jan@example.nl")
	piet := h.loggedIn("piet@example.nl")
	pietSession, _ := h.sessions.Lookup(piet.session())
	for _, handle := range []string{h.handleOf(piet), pietSession.Key, piet.session(), "made-up", "", strings.Repeat("x", 10000)} {
		rec := jan.post(sessionsPath, url.Values{"action": {"end"}, "session": {handle}})
		wantPage(t, rec, http.StatusNotFound, Dutch, "sessions.unknown", "sessions.title")
	}
	if !stillLoggedIn(piet) || !stillLoggedIn(jan) || !stillLoggedIn(jan2) {
		t.Fatal("a refused handle ended a session")
	}
}

// TestSessionsFormRefusals: the form needs its token and a session, and
// has no other fields or actions.
func TestSessionsFormRefusals(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	jan := h.loggedIn("jan@example.nl")
	other := h.loggedIn("jan@example.nl")
	for name, form := range map[string]url.Values{
		"no token":      {"action": {"endothers"}, "csrf": {"wrong"}},
		"unknown field": {"action": {"endothers"}, "account": {"someone"}},
		"no action":     {},
		"other action":  {"action": {"delete"}},
	} {
		rec := jan.post(sessionsPath, form)
		if rec.Code != http.StatusForbidden && rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 403 or 400", name, rec.Code)
		}
	}
	wantRedirect(t, h.browser().post(sessionsPath, url.Values{"action": {"endothers"}}),
		"https://portal.example.nl/login?return=%2Faccount%2Fsessions")
	if !stillLoggedIn(other) {
		t.Fatal("a refused form ended a session")
	}
}

func TestDeviceNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ua, want string }{
		{firefoxWindows, "Firefox op Windows"},
		{safariIPhone, "Safari op iPhone"},
		{edgeMac, "Edge op macOS"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36", "Chrome op Linux"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36", "Samsung Internet op Android"},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/138.0 Mobile/15E148 Safari/604.1", "Chrome op iPad"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 OPR/120.0.0.0", "Opera op Windows"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36", "Chrome op ChromeOS"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari op macOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer op Windows"},
		{"Mozilla/5.0 (Android 14; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0", "Firefox op Android"},
		{"Mozilla/5.0 (X11; Linux x86_64)", "Linux"},
		{"curl/8.14", "Onbekend apparaat"},
		{"", "Onbekend apparaat"},
	} {
		if got := device(Dutch, tc.ua); got != tc.want {
			t.Errorf("device(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
	if got := device(English, firefoxWindows); got != "Firefox on Windows" {
		t.Errorf("in English: %q", got)
	}
}
