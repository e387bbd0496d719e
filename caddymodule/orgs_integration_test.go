package caddymodule

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var inviteLink = regexp.MustCompile(`/invite/([A-Za-z0-9]+)`)

// admin sets up an account that verified company kvk with eHerkenning,
// logged in.
func admin(t *testing.T, g *gateway, email, kvk string) (*browser, AccountSummary) {
	t.Helper()
	a := g.addAccount(email, "Admin "+kvk, testPassword)
	linkOrg(t, a.ID, kvk, "Bedrijf "+kvk, "loa3")
	b := g.newBrowser()
	b.login(email, testPassword)
	return b, a
}

// invite sends an invitation from the admin's browser and returns the
// token from the mail.
func invite(t *testing.T, g *gateway, b *browser, kvk, email string, apps ...string) string {
	t.Helper()
	b.page("/org/" + kvk)
	form := url.Values{"email": {email}, "apps": apps}
	resp, body := b.post("/org/"+kvk+"/invite", form)
	expectStatus(t, resp, body, http.StatusSeeOther)
	m := g.SMTP.WaitFor(t, email, 10*time.Second)
	link := inviteLink.FindStringSubmatch(m.Text)
	if link == nil {
		t.Fatalf("no invitation link in:\n%s", m.Text)
	}
	return link[1]
}

// colleague accepts an invitation as a new account and returns its browser.
func colleague(t *testing.T, g *gateway, email, token string) (*browser, AccountSummary) {
	t.Helper()
	a := g.addAccount(email, "Collega "+email, testPassword)
	b := g.newBrowser()
	resp, _ := b.page("/invite/" + token)
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "/login?return=%2Finvite%2F") {
		t.Fatalf("invitation without session went to %q", loc)
	}
	b.login(email, testPassword)
	_, body := b.page("/invite/" + token)
	if !strings.Contains(body, "Uitnodiging accepteren") {
		t.Fatalf("no accept button:\n%s", body)
	}
	resp, body = b.post("/invite/"+token, url.Values{})
	expectStatus(t, resp, body, http.StatusSeeOther)
	return b, a
}

func TestInvitationEndToEnd(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, adminAcct := admin(t, g, "admin@a.nl", "11111111")
	token := invite(t, g, ab, "11111111", "piet@a.nl", "website")
	cb, c := colleague(t, g, "piet@a.nl", token)

	resp, body := cb.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	h := g.Upstream.last(t)
	for name, want := range map[string]string{
		"X-Wij-User-Id":   c.ID,
		"X-Wij-Org-Kvk":   "11111111",
		"X-Wij-Org-Role":  "member",
		"X-Wij-Apps":      "website",
		"X-Wij-Assurance": "invited",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	t.Run("no right for another app", func(t *testing.T) {
		resp, body := cb.do(http.MethodGet, "/rie/", nil, "Accept", "application/json")
		expectStatus(t, resp, body, http.StatusForbidden)
		resp, body = cb.page("/rie/")
		expectStatus(t, resp, body, http.StatusForbidden)
		if !strings.Contains(body, "Geen toegang") || !strings.Contains(body, "admin@a.nl") {
			t.Fatalf("the no-access page does not name the admins:\n%s", body)
		}
	})
	t.Run("the token works once", func(t *testing.T) {
		resp, _ := cb.post("/invite/"+token, url.Values{})
		expectStatus(t, resp, "", http.StatusNotFound)
	})
	t.Run("rights change on the very next request", func(t *testing.T) {
		resp, body := ab.post("/org/11111111/apps/"+c.ID, url.Values{"apps": {"declaratie"}, "role": {"admin"}})
		expectStatus(t, resp, body, http.StatusSeeOther)
		if r, _ := cb.do(http.MethodGet, "/website/", nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("withdrawn right still works: %d", r.StatusCode)
		}
		cb.page("/declaratie/")
		if got := g.Upstream.last(t).Get("X-Wij-Org-Role"); got != "member" {
			t.Fatalf("mass assignment: role became %q", got)
		}
	})
	t.Run("removal ends access on the very next request", func(t *testing.T) {
		resp, body := ab.post("/org/11111111/remove/"+c.ID, url.Values{})
		expectStatus(t, resp, body, http.StatusSeeOther)
		if r, _ := cb.do(http.MethodGet, "/orgapp/", nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("removed member still in: %d", r.StatusCode)
		}
	})
	t.Run("audit log", func(t *testing.T) {
		_, body := ab.page("/org/11111111")
		for _, want := range []string{"nodigde piet@a.nl uit (apps: Website)", "accepteerde de uitnodiging", "de apps: Declaratie Systeem", "verwijderde Collega piet@a.nl"} {
			if !strings.Contains(body, want) {
				t.Errorf("audit log lacks %q", want)
			}
		}
	})
	_ = adminAcct
}

func TestInvitationOnlyForTheInvitedAddress(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, _ := admin(t, g, "admin@a.nl", "11111111")
	token := invite(t, g, ab, "11111111", "piet@a.nl", "website")
	g.addAccount("mallory@a.nl", "Mallory", testPassword)
	mb := g.newBrowser()
	mb.login("mallory@a.nl", testPassword)
	resp, body := mb.post("/invite/"+token, url.Values{})
	expectStatus(t, resp, body, http.StatusForbidden)
	if r, _ := mb.do(http.MethodGet, "/website/", nil); r.StatusCode != http.StatusForbidden {
		t.Fatal("another address joined through the invitation")
	}
	// The invitation still works for Piet.
	colleague(t, g, "piet@a.nl", token)
}

func TestWithdrawnInvitation(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, _ := admin(t, g, "admin@a.nl", "11111111")
	token := invite(t, g, ab, "11111111", "piet@a.nl", "website")
	_, body := ab.page("/org/11111111")
	m := regexp.MustCompile(`/org/11111111/withdraw/([A-Za-z0-9_-]+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no withdraw button")
	}
	resp, body := ab.post("/org/11111111/withdraw/"+m[1], url.Values{})
	expectStatus(t, resp, body, http.StatusSeeOther)
	g.addAccount("piet@a.nl", "Piet", testPassword)
	pb := g.newBrowser()
	pb.login("piet@a.nl", testPassword)
	resp, _ = pb.post("/invite/"+token, url.Values{})
	expectStatus(t, resp, "", http.StatusNotFound)
}

func TestCrossOrganisationAttempts(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, _ := admin(t, g, "admin@a.nl", "11111111")
	bb, _ := admin(t, g, "admin@b.nl", "22222222")
	token := invite(t, g, bb, "22222222", "kees@b.nl", "website")
	_, kees := colleague(t, g, "kees@b.nl", token)

	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"change apps in B", "/org/22222222/apps/" + kees.ID, url.Values{"apps": {"rie"}}},
		{"B's member through A", "/org/11111111/apps/" + kees.ID, url.Values{"apps": {"rie"}}},
		{"remove in B", "/org/22222222/remove/" + kees.ID, url.Values{}},
		{"make oneself admin of B", "/org/22222222/role/" + kees.ID, url.Values{"role": {"admin"}}},
		{"invite into B", "/org/22222222/invite", url.Values{"email": {"x@a.nl"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ab.page("/dashboard")
			resp, body := ab.post(tc.path, tc.form)
			expectStatus(t, resp, body, http.StatusForbidden)
		})
	}
	t.Run("read B's admin page", func(t *testing.T) {
		resp, body := ab.page("/org/22222222")
		expectStatus(t, resp, body, http.StatusForbidden)
	})
	t.Run("switch to B", func(t *testing.T) {
		resp, body := ab.post("/dashboard/active", url.Values{"kvk": {"22222222"}})
		expectStatus(t, resp, body, http.StatusForbidden)
	})
	// An outsider's attempts are the operator's business, not B's log's.
	_, body := bb.page("/org/22222222")
	if n := strings.Count(body, "geweigerd"); n != 0 {
		t.Fatalf("B's audit log shows %d refused attempts of an outsider", n)
	}
	if r, _ := bb.page("/org/22222222"); !strings.Contains(mustBody(t, bb, "/org/22222222"), "kees@b.nl") || r.StatusCode != http.StatusOK {
		t.Fatal("B's member was changed")
	}
}

func mustBody(t *testing.T, b *browser, path string) string {
	t.Helper()
	_, body := b.page(path)
	return body
}

func TestLastVerifiedAdminStays(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, a := admin(t, g, "admin@a.nl", "11111111")
	token := invite(t, g, ab, "11111111", "piet@a.nl")
	_, piet := colleague(t, g, "piet@a.nl", token)
	resp, body := ab.post("/org/11111111/role/"+piet.ID, url.Values{"role": {"admin"}})
	expectStatus(t, resp, body, http.StatusSeeOther)
	pb := g.newBrowser()
	pb.login("piet@a.nl", testPassword)
	pb.page("/dashboard")
	for _, tc := range []struct{ name, path string }{
		{"demote", "/org/11111111/role/" + a.ID},
		{"remove", "/org/11111111/remove/" + a.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := pb.post(tc.path, url.Values{"role": {"member"}})
			expectStatus(t, resp, body, http.StatusConflict)
			if !strings.Contains(body, "minstens één Admin") {
				t.Fatal("no clear message")
			}
		})
	}
	if r, _ := ab.page("/rie/"); r.StatusCode != http.StatusOK {
		t.Fatal("the verified admin lost access")
	}
}

func TestActiveOrganisationSwitch(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	b, a := admin(t, g, "admin@a.nl", "11111111")
	linkOrg(t, a.ID, "22222222", "Tweede B.V.", "loa3")
	b.page("/website/")
	if got := g.Upstream.last(t).Get("X-Wij-Org-Kvk"); got != "11111111" {
		t.Fatalf("first organisation not active: %q", got)
	}
	b.page("/dashboard")
	resp, body := b.post("/dashboard/active", url.Values{"kvk": {"22222222"}})
	expectStatus(t, resp, body, http.StatusSeeOther)
	b.page("/website/", "X-Wij-Org-Kvk", "11111111")
	if got := g.Upstream.last(t).Values("X-Wij-Org-Kvk"); len(got) != 1 || got[0] != "22222222" {
		t.Fatalf("after the switch: %q", got)
	}
	_, body = b.page("/dashboard")
	if !strings.Contains(body, "Tweede B.V.") || !strings.Contains(body, "Nog een bedrijf koppelen") {
		t.Fatal("dashboard lacks the organisations")
	}
}
