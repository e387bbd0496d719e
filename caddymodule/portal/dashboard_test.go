package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/session"
)

// TestDashboardHandler: without a session it leads to the login with the
// dashboard as return; an account without an organisation is told how to
// get one; an admin sees the active organisation's apps and can make
// another organisation active.
func TestDashboardHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	wantRedirect(t, h.browser().get("/dashboard"), "https://portal.example.nl/login?return=%2Fdashboard")

	h.account("anna@example.nl", "Anna de Vries")
	rec := h.loggedIn("anna@example.nl").get("/dashboard")
	wantPage(t, rec, http.StatusOK, Dutch, "dashboard.title", "dashboard.noorg", "dashboard.linkfirst", "logout")
	if !strings.Contains(rec.Body.String(), "Anna de Vries") || !strings.Contains(rec.Body.String(), "anna@example.nl") {
		t.Fatalf("the dashboard does not show whose it is:\n%s", rec.Body)
	}

	jan := h.account("jan@example.nl", "Jan Jansen")
	h.linkOrg(jan.ID, "12345678", "Bouwbedrijf Jansen")
	h.advance(time.Second) // the memberships list oldest first
	h.linkOrg(jan.ID, "87654321", "Installatie De Boer")
	b := h.loggedIn("jan@example.nl")
	rec = b.get("/dashboard")
	wantPage(t, rec, http.StatusOK, Dutch, "dashboard.orgs", "dashboard.active", "dashboard.switch", "dashboard.manage", "dashboard.linkanother")
	body := rec.Body.String()
	for _, want := range []string{"<h2>Bouwbedrijf Jansen", "Declaratie Systeem", "RI&amp;E", `name="kvk" value="87654321"`, `href="/org/12345678"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the dashboard lacks %s", want)
		}
	}
	if strings.Contains(body, `name="kvk" value="12345678"`) {
		t.Error("the active organisation is offered as a switch")
	}

	wantRedirect(t, b.post("/dashboard/active", url.Values{"kvk": {"87654321"}}), "/dashboard")
	if s, err := h.sessions.Lookup(b.session()); err != nil || s.ActiveOrg != "87654321" {
		t.Fatalf("the session after the switch: %+v, %v", s, err)
	}
	body = b.get("/dashboard").Body.String()
	if !strings.Contains(body, "<h2>Installatie De Boer") || !strings.Contains(body, `name="kvk" value="12345678"`) {
		t.Fatalf("the dashboard does not show the switch:\n%s", body)
	}
}

// TestActiveOrganisationSwitchRefusals: the switch needs a session, the
// form's token, a well-formed KvK number, no other fields, and an
// organisation the account belongs to; a refusal leaves the session as
// it was.
func TestActiveOrganisationSwitchRefusals(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	piet := h.account("piet@example.nl", "Piet Pietersen")
	h.linkOrg(jan.ID, "12345678", "Bouwbedrijf Jansen")
	h.linkOrg(piet.ID, "87654321", "Installatie De Boer")
	b := h.loggedIn("jan@example.nl")

	wantRedirect(t, h.browser().post("/dashboard/active", url.Values{"kvk": {"12345678"}}), "https://portal.example.nl/login?return=%2Fdashboard")
	wantPage(t, b.post("/dashboard/active", url.Values{"kvk": {"87654321"}}), http.StatusForbidden, Dutch, "error.forbidden")
	wantPage(t, b.post("/dashboard/active", url.Values{"kvk": {"1234"}}), http.StatusBadRequest, Dutch, "orgadmin.badkvk")
	wantPage(t, b.post("/dashboard/active", url.Values{"kvk": {"12345678"}, "role": {"admin"}}), http.StatusBadRequest, Dutch, "form.unknown")
	wantPage(t, b.post("/dashboard/active", url.Values{"kvk": {"87654321"}, "csrf": {""}}), http.StatusForbidden, Dutch, "form.expired")
	if s, err := h.sessions.Lookup(b.session()); err != nil || s.ActiveOrg != "" {
		t.Fatalf("a refused switch changed the session: %+v, %v", s, err)
	}
}

// TestDashboardNeedsALiveSession: a session stops opening the dashboard
// when its account is disabled or it was idle too long.
func TestDashboardNeedsALiveSession(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	h.account("piet@example.nl", "Piet Pietersen")
	jan, piet := h.loggedIn("jan@example.nl"), h.loggedIn("piet@example.nl")

	if _, err := h.accounts.Disable("piet@example.nl"); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, piet.get("/dashboard"), h.portal.LoginURL("/dashboard"))
	wantRedirect(t, piet.get("/"), "/account")

	wantPage(t, jan.get("/dashboard"), http.StatusOK, Dutch, "dashboard.title")
	h.advance(session.DefaultIdleTimeout + time.Second)
	wantRedirect(t, jan.get("/dashboard"), h.portal.LoginURL("/dashboard"))
	if _, err := h.sessions.Lookup(jan.session()); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the idle session lives on: %v", err)
	}
}
