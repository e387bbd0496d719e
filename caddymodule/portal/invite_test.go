package portal

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/org"
)

var invitationLink = regexp.MustCompile(`https://portal\.example\.nl/invite/([A-Z0-9]+)`)

// invite has the admin's browser invite email to the organisation with
// apps, and returns the token from the link in the mail.
func invite(t *testing.T, h *portalHarness, admin *browser, email string, apps ...string) string {
	t.Helper()
	wantRedirect(t, admin.post("/org/"+testKvK+"/invite", url.Values{"email": {email}, "apps": apps}), "/org/"+testKvK+"?done=invite")
	h.mail.mu.Lock()
	defer h.mail.mu.Unlock()
	m := invitationLink.FindStringSubmatch(h.mail.sent[len(h.mail.sent)-1].Text)
	if m == nil {
		t.Fatalf("no invitation link in:\n%s", h.mail.sent[len(h.mail.sent)-1].Text)
	}
	return m[1]
}

// TestInvitationAccepted: the invited address sees the invitation and
// accepts it once; the membership rests on the inviting admin and becomes
// the session's organisation.
func TestInvitationAccepted(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	kees := h.account("kees@example.nl", "Kees Klaassen")
	// Kees already acts for another company, which comes first.
	if _, err := h.orgs.Link(kees.ID, org.Verified{KvK: otherKvK, Name: "Andere Zaak B.V.", Level: "loa3", Pseudonym: "S-kees"}); err != nil {
		t.Fatal(err)
	}
	token := invite(t, h, h.loggedIn("jan@example.nl"), "kees@example.nl", "declaratie")
	path := "/invite/" + token

	wantRedirect(t, h.browser().get(path), "https://portal.example.nl/login?return=%2Finvite%2F"+token)

	b := h.loggedIn("kees@example.nl").english()
	rec := b.get(path)
	wantTexts(t, rec, http.StatusOK, English.T("invite.lead"), testOrgName, "Declaratie Systeem", English.T("invite.accept"))
	wantMarkup(t, rec, `action="/invite/`+token+`"`)

	wantRedirect(t, b.post(path, nil), "/dashboard")
	m, ok := h.membership(testKvK, kees.ID)
	if !ok || m.Role != org.RoleMember || m.Anchor != org.AnchorInvited || m.InvitedBy != jan.ID || !slices.Equal(m.Apps, []string{"declaratie"}) {
		t.Fatalf("membership after acceptance: %+v (%v)", m, ok)
	}
	if e := h.lastAudit(testKvK); e.Action != "accept_invitation" || e.Actor != kees.ID {
		t.Errorf("acceptance logged as %+v", e)
	}
	if len(h.invitations(testKvK)) != 0 {
		t.Error("the accepted invitation is still pending")
	}
	// The dashboard acts for the organisation just joined, with its app.
	wantMarkup(t, b.get("/dashboard"), "<h2>"+testOrgName+" <span", "Declaratie Systeem")

	wantTexts(t, b.post(path, nil), http.StatusNotFound, English.T("invite.invalid"))
	wantTexts(t, b.get(path), http.StatusNotFound, English.T("invite.invalid"))
}

// TestInvitationForAnotherAddress: an invitation opened by another
// account says so and offers to sign out; accepting it is refused and
// leaves it for the invited address.
func TestInvitationForAnotherAddress(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	klaas := h.account("klaas@example.nl", "Klaas Bakker")
	h.account("kees@example.nl", "Kees Klaassen")
	token := invite(t, h, h.loggedIn("jan@example.nl"), "kees@example.nl", "rie")

	b := h.loggedIn("klaas@example.nl").english()
	rec := b.get("/invite/" + token)
	wantTexts(t, rec, http.StatusOK, English.T("invite.otheremail"), English.T("logout"))
	if strings.Contains(rec.Body.String(), `action="/invite/`+token+`"`) {
		t.Errorf("the wrong account is offered the accept button:\n%s", rec.Body)
	}
	wantTexts(t, b.post("/invite/"+token, nil), http.StatusForbidden, English.T("invite.otheremail"))
	if _, ok := h.membership(testKvK, klaas.ID); ok {
		t.Fatal("the wrong account became a member")
	}
	if len(h.invitations(testKvK)) != 1 {
		t.Fatal("the refused acceptance used up the invitation")
	}

	kees := h.loggedIn("kees@example.nl")
	wantRedirect(t, kees.post("/invite/"+token, nil), "/dashboard")
}

// TestInvitationExpired: after InvitationValidity the link shows that it
// no longer works and accepting it changes nothing.
func TestInvitationExpired(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	kees := h.account("kees@example.nl", "Kees Klaassen")
	token := invite(t, h, h.loggedIn("jan@example.nl"), "kees@example.nl")

	h.advance(org.InvitationValidity + 1)
	b := h.loggedIn("kees@example.nl").english()
	wantTexts(t, b.get("/invite/"+token), http.StatusNotFound, English.T("invite.invalid"))
	wantTexts(t, b.post("/invite/"+token, nil), http.StatusNotFound, English.T("invite.invalid"))
	if _, ok := h.membership(testKvK, kees.ID); ok {
		t.Fatal("an expired invitation made a member")
	}
	wantTexts(t, b.get("/invite/NOSUCHTOKEN"), http.StatusNotFound, English.T("invite.invalid"))
}
