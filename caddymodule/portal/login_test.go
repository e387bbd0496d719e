package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLoginHandler: the right password starts a session and goes on to
// the dashboard; a wrong one keeps the person on the form with a message
// and no session.
func TestLoginHandler(t *testing.T) {
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")

	wrong := h.browser()
	rec := wrong.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {"niet-het-wachtwoord"}})
	if rec.Code == http.StatusSeeOther {
		t.Fatalf("a wrong password was let in: %d %v", rec.Code, rec.Header())
	}
	if _, ok := wrong.cookies["__Host-wijgate"]; ok {
		t.Fatal("a wrong password got a session cookie")
	}
	if !strings.Contains(rec.Body.String(), `name="password"`) {
		t.Fatalf("a wrong password did not show the form again:\n%s", rec.Body)
	}

	b := h.loggedIn("jan@example.nl")
	if _, ok := b.cookies["__Host-wijgate"]; !ok {
		t.Fatal("a login set no session cookie")
	}
	if rec := b.get("/dashboard"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Jan Jansen") {
		t.Fatalf("dashboard after login: %d\n%s", rec.Code, rec.Body)
	}
}
