package caddymodule

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// sessionRow finds a row of the sessions page: its device cell and the
// handle its Afmelden form posts.
var sessionRow = regexp.MustCompile(`(?s)<tr>\n<td>([^<]*)(?:<span[^>]*>[^<]*</span>)?</td>.*?name="session" value="([^"]+)"`)

// handleFor is the handle of the row on b's sessions page whose device
// names device.
func handleFor(t *testing.T, b *browser, device string) string {
	t.Helper()
	resp, body := b.page("/account/sessions")
	expectStatus(t, resp, body, http.StatusOK)
	for _, m := range sessionRow.FindAllStringSubmatch(body, -1) {
		if strings.Contains(m[1], device) {
			return m[2]
		}
	}
	t.Fatalf("no session on %s in the list:\n%s", device, body)
	return ""
}

// loginAs logs b in sending userAgent, so the list can tell it apart.
func loginAs(b *browser, userAgent string) {
	b.t.Helper()
	_, body := b.page("/login", "User-Agent", userAgent)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatal("no csrf token on /login")
	}
	resp, body := b.do(http.MethodPost, "/login", url.Values{"email": {testEmail}, "password": {testPassword}, "csrf": {m[1]}},
		"Origin", b.g.URL, "User-Agent", userAgent)
	expectStatus(b.t, resp, body, http.StatusSeeOther)
}

// TestEndedSessionIsRefusedOnTheNextGuardedRequest: two browsers of one
// person, each holding a session the guard has cached by serving it. One
// ends the other from its list; the ended cookie's very next request to a
// guarded app is sent to the login, while the first browser carries on.
// Then Overal elders afmelden does the same for every other session. On
// both engines.
func TestEndedSessionIsRefusedOnTheNextGuardedRequest(t *testing.T) {
	for _, engine := range []struct {
		name    string
		storage func(t *testing.T) string
	}{
		{"badger", func(t *testing.T) string { return t.TempDir() }},
		{"postgres", func(t *testing.T) string { return pgtest.Database(t) }},
	} {
		t.Run(engine.name, func(t *testing.T) {
			g := startGateway(t, "gateway.caddyfile", gatewayParams{Storage: engine.storage(t)})
			g.addAccount(testEmail, testName, testPassword)
			desk, laptop, phone := g.newBrowser(), g.newBrowser(), g.newBrowser()
			loginAs(desk, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0")
			loginAs(laptop, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36")
			loginAs(phone, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1")
			guarded := func(b *browser) int {
				resp, _ := b.page("/declaratie/")
				return resp.StatusCode
			}
			for _, b := range []*browser{desk, laptop, phone} {
				// Twice: the second is served from the guard's cache.
				for range 2 {
					if s := guarded(b); s != http.StatusOK {
						t.Fatalf("a logged-in browser's guarded request: %d", s)
					}
				}
			}

			handle := handleFor(t, desk, "Chrome op Linux")
			resp, body := desk.post("/account/sessions", url.Values{"action": {"end"}, "session": {handle}})
			expectStatus(t, resp, body, http.StatusSeeOther)
			resp, _ = laptop.page("/declaratie/")
			if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/login?return=") {
				t.Fatalf("the ended session's next guarded request: %d to %q, want 302 to the login", resp.StatusCode, resp.Header.Get("Location"))
			}
			if guarded(desk) != http.StatusOK || guarded(phone) != http.StatusOK {
				t.Fatal("ending one session ended another")
			}

			resp, body = desk.post("/account/sessions", url.Values{"action": {"endothers"}})
			expectStatus(t, resp, body, http.StatusSeeOther)
			if s := guarded(phone); s != http.StatusFound {
				t.Fatalf("after Overal elders afmelden, the phone's guarded request: %d, want 302", s)
			}
			if guarded(desk) != http.StatusOK {
				t.Fatal("Overal elders afmelden ended this session")
			}
		})
	}
}
