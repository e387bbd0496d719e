package portal

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/org"
)

// TestOrgAdminPage: an organisation's admin sees its members, pending
// invitations and log; a member is refused and the attempt is logged; an
// outsider is refused without writing into the organisation's log.
func TestOrgAdminPage(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	h.member(jan, testKvK, "piet@example.nl", "Piet Pieters", "rie")
	if _, _, err := h.orgs.Invite(jan.ID, testKvK, "kees@example.nl", []string{"declaratie"}, h.portal.appNames()); err != nil {
		t.Fatal(err)
	}
	h.account("buiten@example.nl", "Buiten Staander")

	rec := h.loggedIn("jan@example.nl").english().get("/org/" + testKvK)
	wantTexts(t, rec, http.StatusOK, "Manage: "+testOrgName, "KvK "+testKvK,
		"Jan Jansen", "jan@example.nl", English.T("orgadmin.you"),
		"Piet Pieters", "piet@example.nl", "kees@example.nl", "Declaratie Systeem",
		"invited kees@example.nl (apps: Declaratie Systeem)", "accepted the invitation")
	wantMarkup(t, rec, `action="/org/`+testKvK+`/apps/`, `action="/org/`+testKvK+`/withdraw/`, `action="/org/`+testKvK+`/invite"`)

	before := len(h.audit(testKvK))
	rec = h.loggedIn("piet@example.nl").english().get("/org/" + testKvK)
	wantTexts(t, rec, http.StatusForbidden, English.T("error.forbidden"))
	if strings.Contains(rec.Body.String(), "kees@example.nl") {
		t.Error("a member's refusal shows the invitations")
	}
	if e := h.lastAudit(testKvK); e.Action != "denied" || e.Detail != "view" || len(h.audit(testKvK)) != before+1 {
		t.Errorf("a member's attempt logged as %+v", e)
	}

	before = len(h.audit(testKvK))
	rec = h.loggedIn("buiten@example.nl").english().get("/org/" + testKvK)
	wantTexts(t, rec, http.StatusForbidden, English.T("error.forbidden"))
	if after := len(h.audit(testKvK)); after != before {
		t.Errorf("an outsider's attempt wrote into the organisation's log: %d entries, was %d", after, before)
	}

	wantRedirect(t, h.browser().get("/org/"+testKvK), "https://portal.example.nl/login?return=%2Forg%2F"+testKvK)
	admin := h.loggedIn("jan@example.nl").english()
	wantTexts(t, admin.get("/org/1234"), http.StatusBadRequest, English.T("orgadmin.badkvk"))
	wantTexts(t, admin.get("/org/"+testKvK+"?page=0"), http.StatusBadRequest, English.T("orgadmin.badpage"))
	wantTexts(t, admin.get("/org/"+testKvK+"?page=x"), http.StatusBadRequest, English.T("orgadmin.badpage"))
}

// TestOrgAdminAuditPaging: the log shows auditPageSize entries a page,
// newest first, with links to the neighbouring pages.
func TestOrgAdminAuditPaging(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	piet := h.member(jan, testKvK, "piet@example.nl", "Piet Pieters")
	for i := range auditPageSize + 10 {
		apps := []string{"declaratie"}
		if i%2 == 1 {
			apps = []string{"rie"}
		}
		if err := h.orgs.SetApps(jan.ID, testKvK, piet.ID, apps, h.portal.appNames()); err != nil {
			t.Fatal(err)
		}
	}
	total := len(h.audit(testKvK))
	if total <= auditPageSize {
		t.Fatalf("only %d entries", total)
	}
	b := h.loggedIn("jan@example.nl").english()
	rows := func(body string) int { return strings.Count(body, `<tr><td class="nowrap">`) }
	older := `href="/org/` + testKvK + `?page=2#audit"`
	newer := `href="/org/` + testKvK + `?page=1#audit"`

	first := b.get("/org/" + testKvK).Body.String()
	if rows(first) != auditPageSize || !strings.Contains(first, older) || strings.Contains(first, `rel="prev"`) {
		t.Errorf("page 1: %d rows, link to page 2 %v, link back %v", rows(first), strings.Contains(first, older), strings.Contains(first, `rel="prev"`))
	}
	// The newest entry is the last change: Piet got RI&E.
	if i := strings.Index(first, "gave Piet Pieters the apps: "); i < 0 || !strings.HasPrefix(first[i+len("gave Piet Pieters the apps: "):], "RI&amp;E") {
		t.Error("page 1 does not start with the newest change")
	}
	second := b.get("/org/" + testKvK + "?page=2").Body.String()
	if rows(second) != total-auditPageSize || !strings.Contains(second, newer) || strings.Contains(second, `rel="next"`) {
		t.Errorf("page 2: %d rows (want %d), link to page 1 %v, link on %v", rows(second), total-auditPageSize,
			strings.Contains(second, newer), strings.Contains(second, `rel="next"`))
	}
	beyond := b.get("/org/" + testKvK + "?page=9")
	wantTexts(t, beyond, http.StatusOK, English.T("orgadmin.noaudit"))
	if !strings.Contains(beyond.Body.String(), newer) {
		t.Error("a page beyond the end has no way back to the newest")
	}
}

// TestOrgInvite: an admin's invitation is stored, mailed with its link
// and logged; bad input shows the form again; a member cannot invite.
func TestOrgInvite(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	h.member(jan, testKvK, "piet@example.nl", "Piet Pieters")
	admin := h.loggedIn("jan@example.nl").english()
	path := "/org/" + testKvK + "/invite"

	rec := admin.post(path, url.Values{"email": {"Kees@Example.nl"}, "apps": {"rie", "declaratie", "rie"}})
	wantRedirect(t, rec, "/org/"+testKvK+"?done=invite")
	invs := h.invitations(testKvK)
	if len(invs) != 1 || invs[0].Email != "kees@example.nl" || !slices.Equal(invs[0].Apps, []string{"declaratie", "rie"}) || invs[0].InvitedBy != jan.ID {
		t.Fatalf("invitations %+v", invs)
	}
	h.mail.mu.Lock()
	msg := h.mail.sent[len(h.mail.sent)-1]
	h.mail.mu.Unlock()
	if msg.To != "kees@example.nl" || !strings.Contains(msg.Text, "https://portal.example.nl/invite/") {
		t.Errorf("invitation mail to %q:\n%s", msg.To, msg.Text)
	}
	if e := h.lastAudit(testKvK); e.Action != "invite" || e.Actor != jan.ID || e.Target != "kees@example.nl" || e.Detail != "apps: declaratie,rie" {
		t.Errorf("invitation logged as %+v", e)
	}
	wantTexts(t, admin.get("/org/"+testKvK+"?done=invite"), http.StatusOK, English.T("orgadmin.invited"))

	for _, c := range []struct {
		form url.Values
		text string
	}{
		{url.Values{"email": {"geen-adres"}}, English.T("errors.summary")},
		{url.Values{"email": {"klaas@example.nl"}, "apps": {"boekhouding"}}, English.T("orgadmin.unknownapp")},
	} {
		wantTexts(t, admin.post(path, c.form), http.StatusBadRequest, c.text, English.T("orgadmin.sendinvite"))
	}
	if n := len(h.invitations(testKvK)); n != 1 {
		t.Errorf("bad input left %d invitations", n)
	}

	member := h.loggedIn("piet@example.nl").english()
	wantTexts(t, member.post(path, url.Values{"email": {"klaas@example.nl"}}), http.StatusForbidden, English.T("error.forbidden"))
	wantTexts(t, member.post(path, url.Values{"email": {"geen-adres"}}), http.StatusForbidden, English.T("error.forbidden"))
	if n := len(h.invitations(testKvK)); n != 1 {
		t.Errorf("a member's invitation was stored: %d invitations", n)
	}
	if e := h.lastAudit(testKvK); e.Action != "denied" || e.Detail != "invite" || e.Count != 2 {
		t.Errorf("a member's attempts logged as %+v", e)
	}

	// Without the mail, the link is lost: the invitation is taken back.
	h.mail.mu.Lock()
	h.mail.fail = errors.New("smtp: connection refused")
	h.mail.mu.Unlock()
	wantTexts(t, admin.post(path, url.Values{"email": {"klaas@example.nl"}}), http.StatusServiceUnavailable, English.T("mail.failed"))
	if n := len(h.invitations(testKvK)); n != 1 {
		t.Errorf("an invitation whose mail failed stayed: %d invitations", n)
	}
}

// TestOrgWithdraw: an admin withdraws the organisation's invitation; a
// member cannot, and nobody can through another organisation.
func TestOrgWithdraw(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	h.member(jan, testKvK, "piet@example.nl", "Piet Pieters")
	anna := h.verifiedAdmin("anna@example.nl", "Anna de Vries", otherKvK)
	_, kees, err := h.orgs.Invite(jan.ID, testKvK, "kees@example.nl", nil, h.portal.appNames())
	if err != nil {
		t.Fatal(err)
	}
	_, klaas, err := h.orgs.Invite(anna.ID, otherKvK, "klaas@example.nl", nil, h.portal.appNames())
	if err != nil {
		t.Fatal(err)
	}

	member := h.loggedIn("piet@example.nl").english()
	wantTexts(t, member.post("/org/"+testKvK+"/withdraw/"+kees.ID, nil), http.StatusForbidden, English.T("error.forbidden"))
	admin := h.loggedIn("jan@example.nl").english()
	// Another organisation's invitation, named under one's own.
	wantTexts(t, admin.post("/org/"+testKvK+"/withdraw/"+klaas.ID, nil), http.StatusForbidden, English.T("error.forbidden"))
	if len(h.invitations(testKvK)) != 1 || len(h.invitations(otherKvK)) != 1 {
		t.Fatal("a refused withdrawal took an invitation")
	}
	if e := h.lastAudit(testKvK); e.Action != "denied" || e.Detail != "withdraw" {
		t.Errorf("the refused withdrawal logged as %+v", e)
	}

	wantRedirect(t, admin.post("/org/"+testKvK+"/withdraw/"+kees.ID, nil), "/org/"+testKvK+"?done=withdraw")
	if n := len(h.invitations(testKvK)); n != 0 {
		t.Errorf("%d invitations after the withdrawal", n)
	}
	if e := h.lastAudit(testKvK); e.Action != "withdraw_invitation" || e.Target != "kees@example.nl" || e.Actor != jan.ID {
		t.Errorf("the withdrawal logged as %+v", e)
	}
	wantTexts(t, admin.get("/org/"+testKvK+"?done=withdraw"), http.StatusOK, English.T("orgadmin.saved"),
		"withdrew the invitation for kees@example.nl")
}

// TestOrgSetApps: an admin gives a member exactly the chosen apps; a
// member cannot, nor can an admin for another organisation's member.
func TestOrgSetApps(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	piet := h.member(jan, testKvK, "piet@example.nl", "Piet Pieters", "rie")
	kees := h.member(jan, testKvK, "kees@example.nl", "Kees Klaassen")
	anna := h.verifiedAdmin("anna@example.nl", "Anna de Vries", otherKvK)
	klaas := h.member(anna, otherKvK, "klaas@example.nl", "Klaas Bakker")
	admin := h.loggedIn("jan@example.nl").english()
	apps := func(kvk, id string) []string {
		m, _ := h.membership(kvk, id)
		return m.Apps
	}

	wantRedirect(t, admin.post("/org/"+testKvK+"/apps/"+piet.ID, url.Values{"apps": {"declaratie"}, "role": {"admin"}}),
		"/org/"+testKvK+"?done=apps")
	if m, _ := h.membership(testKvK, piet.ID); !slices.Equal(m.Apps, []string{"declaratie"}) || m.Role != "member" {
		t.Errorf("after set_apps: %+v", m)
	}
	if e := h.lastAudit(testKvK); e.Action != "set_apps" || e.Target != piet.ID || e.Detail != "declaratie" {
		t.Errorf("set_apps logged as %+v", e)
	}
	wantRedirect(t, admin.post("/org/"+testKvK+"/apps/"+piet.ID, nil), "/org/"+testKvK+"?done=apps")
	if got := apps(testKvK, piet.ID); len(got) != 0 {
		t.Errorf("no apps ticked left %v", got)
	}

	wantTexts(t, admin.post("/org/"+testKvK+"/apps/"+piet.ID, url.Values{"apps": {"boekhouding"}}),
		http.StatusBadRequest, English.T("orgadmin.unknownapp"))
	wantTexts(t, admin.post("/org/"+testKvK+"/apps/"+klaas.ID, url.Values{"apps": {"rie"}}),
		http.StatusForbidden, English.T("error.forbidden"))
	if got := apps(otherKvK, klaas.ID); len(got) != 0 {
		t.Errorf("another organisation's member got %v", got)
	}
	member := h.loggedIn("kees@example.nl").english()
	wantTexts(t, member.post("/org/"+testKvK+"/apps/"+kees.ID, url.Values{"apps": {"declaratie", "rie"}}),
		http.StatusForbidden, English.T("error.forbidden"))
	if got := apps(testKvK, kees.ID); len(got) != 0 {
		t.Errorf("a member gave themselves %v", got)
	}
	if e := h.lastAudit(testKvK); e.Action != "denied" || e.Actor != kees.ID || e.Detail != "set_apps" {
		t.Errorf("a member's attempt logged as %+v", e)
	}
}

// TestOrgSetRole: an admin promotes and demotes; the organisation keeps
// one admin verified with eHerkenning.
func TestOrgSetRole(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	piet := h.member(jan, testKvK, "piet@example.nl", "Piet Pieters")
	admin := h.loggedIn("jan@example.nl").english()
	role := func(id string) string {
		m, _ := h.membership(testKvK, id)
		return m.Role
	}

	wantRedirect(t, admin.post("/org/"+testKvK+"/role/"+piet.ID, url.Values{"role": {"admin"}}), "/org/"+testKvK+"?done=role")
	if role(piet.ID) != "admin" {
		t.Fatalf("promoted member has role %q", role(piet.ID))
	}
	if e := h.lastAudit(testKvK); e.Action != "set_role" || e.Target != piet.ID || e.Detail != "admin" {
		t.Errorf("the promotion logged as %+v", e)
	}

	// Piet is an admin by invitation: Jan is the only verified one.
	wantTexts(t, admin.post("/org/"+testKvK+"/role/"+jan.ID, url.Values{"role": {"member"}}),
		http.StatusConflict, English.T("orgadmin.lastadmin"))
	invitedAdmin := h.loggedIn("piet@example.nl").english()
	wantTexts(t, invitedAdmin.post("/org/"+testKvK+"/role/"+jan.ID, url.Values{"role": {"member"}}),
		http.StatusConflict, English.T("orgadmin.lastadmin"))
	if role(jan.ID) != "admin" {
		t.Fatal("the last verified admin was demoted")
	}

	wantTexts(t, admin.post("/org/"+testKvK+"/role/"+piet.ID, url.Values{"role": {"owner"}}),
		http.StatusBadRequest, English.T("orgadmin.badrole"))
	wantRedirect(t, admin.post("/org/"+testKvK+"/role/"+piet.ID, url.Values{"role": {"member"}}), "/org/"+testKvK+"?done=role")
	if role(piet.ID) != "member" {
		t.Errorf("demoted admin has role %q", role(piet.ID))
	}
	member := h.loggedIn("piet@example.nl").english()
	wantTexts(t, member.post("/org/"+testKvK+"/role/"+piet.ID, url.Values{"role": {"admin"}}),
		http.StatusForbidden, English.T("error.forbidden"))
	if role(piet.ID) != "member" {
		t.Error("a member made themselves admin")
	}
}

// TestOrgRemove: an admin removes a member, and a second verified admin,
// but never the last verified admin.
func TestOrgRemove(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	piet := h.member(jan, testKvK, "piet@example.nl", "Piet Pieters")
	kees := h.member(jan, testKvK, "kees@example.nl", "Kees Klaassen")
	admin := h.loggedIn("jan@example.nl").english()

	member := h.loggedIn("piet@example.nl").english()
	wantTexts(t, member.post("/org/"+testKvK+"/remove/"+kees.ID, nil), http.StatusForbidden, English.T("error.forbidden"))
	if _, ok := h.membership(testKvK, kees.ID); !ok {
		t.Fatal("a member removed a colleague")
	}

	wantRedirect(t, admin.post("/org/"+testKvK+"/remove/"+piet.ID, nil), "/org/"+testKvK+"?done=remove")
	if _, ok := h.membership(testKvK, piet.ID); ok {
		t.Fatal("the removed member is still a member")
	}
	if e := h.lastAudit(testKvK); e.Action != "remove" || e.Target != piet.ID || e.Actor != jan.ID {
		t.Errorf("the removal logged as %+v", e)
	}
	wantTexts(t, admin.get("/org/"+testKvK+"?done=remove"), http.StatusOK, "removed Piet Pieters")

	wantTexts(t, admin.post("/org/"+testKvK+"/remove/"+jan.ID, nil), http.StatusConflict, English.T("orgadmin.lastadmin"))
	if _, ok := h.membership(testKvK, jan.ID); !ok {
		t.Fatal("the last verified admin was removed")
	}

	// With a second verified admin, one of them may go.
	if _, err := h.orgs.Link(kees.ID, org.Verified{KvK: testKvK, Name: testOrgName, Level: "loa3", Pseudonym: "S-kees"}); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, admin.post("/org/"+testKvK+"/remove/"+jan.ID, nil), "/org/"+testKvK+"?done=remove")
	if _, ok := h.membership(testKvK, jan.ID); ok {
		t.Error("a verified admin beside another could not leave")
	}
}

// TestOrgActionBadInput: what the URL or form carries is checked before
// anything changes.
func TestOrgActionBadInput(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	piet := h.member(jan, testKvK, "piet@example.nl", "Piet Pieters", "rie")
	admin := h.loggedIn("jan@example.nl").english()

	wantTexts(t, admin.post("/org/1234567/apps/"+piet.ID, url.Values{"apps": {"declaratie"}}), http.StatusBadRequest, English.T("orgadmin.badkvk"))
	wantTexts(t, admin.post("/org/"+testKvK+"/apps/u.piet", url.Values{"apps": {"declaratie"}}), http.StatusBadRequest, English.T("orgadmin.badtarget"))
	wantTexts(t, admin.post("/org/"+testKvK+"/apps/"+strings.Repeat("a", maxTargetInput+1), nil), http.StatusBadRequest, English.T("orgadmin.badtarget"))
	wantTexts(t, admin.post("/org/"+testKvK+"/role", url.Values{"role": {"admin"}}), http.StatusBadRequest, English.T("orgadmin.badtarget"))
	wantTexts(t, admin.post("/org/"+testKvK+"/promote/"+piet.ID, nil), http.StatusNotFound, English.T("error.notfound"))
	wantTexts(t, admin.post("/org/"+testKvK+"/apps/"+piet.ID, url.Values{"apps": {"declaratie"}, "csrf": {"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}}),
		http.StatusForbidden, English.T("form.expired"))
	wantRedirect(t, h.browser().post("/org/"+testKvK+"/apps/"+piet.ID, url.Values{"apps": {"declaratie"}}),
		"https://portal.example.nl/login?return=%2Fdashboard")
	if m, _ := h.membership(testKvK, piet.ID); !slices.Equal(m.Apps, []string{"rie"}) {
		t.Errorf("bad input changed the member's apps to %v", m.Apps)
	}
	if e := h.lastAudit(testKvK); e.Action != "accept_invitation" {
		t.Errorf("bad input was logged: %+v", e)
	}
}
