package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

var withdrawButton = regexp.MustCompile(`/org/[0-9]+/withdraw/([A-Za-z0-9_-]+)`)

// auditLog is the organisation's whole audit log as stored, newest first.
func auditLog(t *testing.T, kvk string) []storage.AuditEntry {
	t.Helper()
	entries, _, err := runningApp(t).orgs.Store.Audit(kvk, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// An account that is no member of an organisation
// cannot write into its audit log, however often it tries.
func TestOutsiderRefusalsStayOutOfTheAuditLog(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, _ := admin(t, g, "admin@a.nl", "11111111")
	bb, _ := admin(t, g, "admin@b.nl", "22222222")
	token := invite(t, g, bb, "22222222", "kees@b.nl", "website")
	_, kees := colleague(t, g, "kees@b.nl", token)
	invite(t, g, bb, "22222222", "jan@b.nl", "website")
	_, body := bb.page("/org/22222222")
	inv := withdrawButton.FindStringSubmatch(body)
	if inv == nil {
		t.Fatal("no pending invitation to aim at")
	}
	before := auditLog(t, "22222222")

	ab.page("/dashboard")
	for range 20 {
		resp, body := ab.page("/org/22222222")
		expectStatus(t, resp, body, http.StatusForbidden)
	}
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/org/22222222/invite", url.Values{"email": {"x@a.nl"}, "apps": {"website"}}},
		{"/org/22222222/invite", url.Values{"email": {"not an address"}}},
		{"/org/22222222/apps/" + kees.ID, url.Values{"apps": {"rie"}}},
		{"/org/22222222/role/" + kees.ID, url.Values{"role": {"admin"}}},
		{"/org/22222222/role/" + kees.ID, url.Values{"role": {"owner"}}},
		{"/org/22222222/remove/" + kees.ID, url.Values{}},
		{"/org/22222222/withdraw/" + inv[1], url.Values{}},
	} {
		for range 5 {
			resp, body := ab.post(tc.path, tc.form)
			expectStatus(t, resp, body, http.StatusForbidden)
		}
	}
	after := auditLog(t, "22222222")
	if len(after) != len(before) {
		t.Fatalf("an outsider's attempts changed B's audit log: %d entries before, %d after; newest %+v", len(before), len(after), after[0])
	}
	if _, body := bb.page("/org/22222222"); strings.Contains(body, "geweigerd") {
		t.Fatal("B's admin page shows an outsider's refusals")
	}
}

// A member's refused attempts in one hour are one
// counted entry, so they cannot push real events off the page.
func TestMemberRefusalsAreOneAuditEntry(t *testing.T) {
	clk := useClock(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, a := admin(t, g, "admin@a.nl", "11111111")
	token := invite(t, g, ab, "11111111", "piet@a.nl", "website")
	pb, piet := colleague(t, g, "piet@a.nl", token)
	before := len(auditLog(t, "11111111"))
	// The clock stands still while the attempts are made, a minute after
	// the invitation, so the log's order is known.
	clk.Add(time.Minute)

	pb.page("/dashboard")
	for i := range 100 {
		var resp *http.Response
		var body string
		switch i % 3 {
		case 0:
			resp, body = pb.post("/org/11111111/role/"+piet.ID, url.Values{"role": {"owner"}})
		case 1:
			resp, body = pb.post("/org/11111111/remove/"+a.ID, url.Values{})
		default:
			resp, body = pb.page("/org/11111111")
		}
		expectStatus(t, resp, body, http.StatusForbidden)
	}
	entries := auditLog(t, "11111111")
	if len(entries) != before+1 {
		t.Fatalf("100 refused attempts made %d entries, want 1", len(entries)-before)
	}
	e := entries[0]
	if e.Action != "denied" || e.Actor != piet.ID || e.Count != 100 {
		t.Fatalf("the aggregated entry: %+v", e)
	}
	_, body := ab.page("/org/11111111")
	if !strings.Contains(body, "werd 100 keer geweigerd tussen") || !strings.Contains(body, "rol wijzigen, medewerker verwijderen, beheerpagina bekijken") {
		t.Fatalf("the admin page does not show the count:\n%s", body)
	}
	if want := e.At.Add(org.DefaultAuditRetention).Truncate(time.Second); !e.ExpiresAt.Equal(want) {
		t.Fatalf("the entry expires at %v, want two years on: %v", e.ExpiresAt, want)
	}
	// An hour later the count starts again (the session is kept in use,
	// so it does not end idle meanwhile).
	for range 3 {
		clk.Add(20 * time.Minute)
		pb.page("/dashboard")
	}
	pb.post("/org/11111111/remove/"+a.ID, url.Values{})
	if entries := auditLog(t, "11111111"); len(entries) != before+2 || entries[0].Count != 1 {
		t.Fatalf("the next hour: %+v", entries[:2])
	}
}

// The admin page pages through the whole audit log,
// 50 entries a page, and every entry is kept for the retention.
func TestAuditLogPages(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, a := admin(t, g, "admin@a.nl", "11111111")
	orgs := runningApp(t).orgs
	// 120 entries, newest first: withdraw x59, invite x59, withdraw x58, …
	for i := range 60 {
		_, inv, err := orgs.Invite(a.ID, "11111111", fmt.Sprintf("x%d@a.nl", i), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := orgs.Withdraw(a.ID, "11111111", inv.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range auditLog(t, "11111111") {
		if want := e.At.Add(org.DefaultAuditRetention).Truncate(time.Second); !e.ExpiresAt.Equal(want) {
			t.Fatalf("%s expires at %v, want %v", e.Action, e.ExpiresAt, want)
		}
	}
	for _, tc := range []struct {
		path       string
		has, hasNo []string
	}{
		{"/org/11111111", []string{"voor x59@a.nl in", "nodigde x35@a.nl uit", `href="/org/11111111?page=2#audit"`},
			[]string{"voor x34@a.nl in", "page=0", "Nieuwere"}},
		{"/org/11111111?page=2", []string{"voor x34@a.nl in", "nodigde x10@a.nl uit", `href="/org/11111111?page=1#audit"`, `href="/org/11111111?page=3#audit"`},
			[]string{"nodigde x35@a.nl uit", "voor x9@a.nl in"}},
		{"/org/11111111?page=3", []string{"voor x9@a.nl in", "nodigde x0@a.nl uit", `href="/org/11111111?page=2#audit"`},
			[]string{"nodigde x10@a.nl uit", "page=4", "Oudere"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := ab.page(tc.path)
			expectStatus(t, resp, body, http.StatusOK)
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("lacks %q", s)
				}
			}
			for _, s := range tc.hasNo {
				if strings.Contains(body, s) {
					t.Errorf("has %q", s)
				}
			}
		})
	}
	for _, page := range []string{"0", "-1", "two", "99999999999999999999"} {
		resp, body := ab.page("/org/11111111?page=" + page)
		expectStatus(t, resp, body, http.StatusBadRequest)
		if !strings.Contains(body, "Een paginanummer is 1 of hoger") {
			t.Errorf("page=%s: no clear message", page)
		}
	}
}

// The global option audit_retention sets how long
// audit entries are kept.
func TestAuditRetentionOption(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{Extra: "audit_retention 720h"})
	a := g.addAccount("admin@a.nl", "Admin", testPassword)
	linkOrg(t, a.ID, "11111111", "Bedrijf", "loa3")
	if _, _, err := runningApp(t).orgs.Invite(a.ID, "11111111", "piet@a.nl", nil, nil); err != nil {
		t.Fatal(err)
	}
	e := auditLog(t, "11111111")[0]
	if want := e.At.Add(720 * time.Hour).Truncate(time.Second); !e.ExpiresAt.Equal(want) {
		t.Fatalf("expires at %v, want %v", e.ExpiresAt, want)
	}
	for _, bad := range []string{"two years", "0", "1h 2h"} {
		cfg := "{\n\twijgate {\n\t\taudit_retention " + bad + "\n\t}\n}\n"
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil); err == nil {
			t.Errorf("audit_retention %s was accepted", bad)
		}
	}
	// A duration shorter than a day is Validate's to refuse.
	if err := (&App{AuditRetention: caddy.Duration(time.Hour)}).Validate(); err == nil {
		t.Error("audit_retention 1h was accepted")
	}
}
