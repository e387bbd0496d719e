package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// deleteForm is a filled-in removal form.
func deleteForm(password string) url.Values {
	return url.Values{"password": {password}, "confirm": {"yes"}}
}

// TestExportIsAPostedDownloadOfEverythingAndNoSecret: the export needs
// the form's token and a session, arrives as an attachment named with the
// date, and holds the account, memberships with organisation names, the
// sessions, invitations sent and received, the audit entries about the
// person and an empty factors list, but never the password hash, a
// session key or an invitation's ID.
func TestExportIsAPostedDownloadOfEverythingAndNoSecret(t *testing.T) {
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Janssen", testKvK)
	piet := h.member(jan, testKvK, "piet@example.nl", "Piet Pieters", "rie")
	if _, _, err := h.orgs.Invite(jan.ID, testKvK, "nieuw@example.nl", []string{"rie"}, []string{"declaratie", "rie"}); err != nil {
		t.Fatal(err)
	}
	kees := h.verifiedAdmin("kees@example.nl", "Kees Kok", otherKvK)
	if _, _, err := h.orgs.Invite(kees.ID, otherKvK, "jan@example.nl", nil, []string{"declaratie", "rie"}); err != nil {
		t.Fatal(err)
	}
	if err := h.orgs.SetApps(jan.ID, testKvK, piet.ID, []string{"declaratie"}, []string{"declaratie", "rie"}); err != nil {
		t.Fatal(err)
	}
	b := h.loggedIn("jan@example.nl")

	wantPage(t, b.get("/account/data"), http.StatusOK, Dutch, "privacy.title", "privacy.export")
	if rec := b.get("/account/data/export"); rec.Code != http.StatusNotFound {
		t.Errorf("GET of the export: %d, want 404 (it is a form post)", rec.Code)
	}
	wantPage(t, b.post("/account/data/export", url.Values{"csrf": {"forged"}}), http.StatusForbidden, Dutch)
	if rec := h.browser().post("/account/data/export", nil); rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "/login?") {
		t.Errorf("an export without a session: %d to %q, want the login page", rec.Code, rec.Header().Get("Location"))
	}

	rec := b.post("/account/data/export", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("export: %d\n%s", rec.Code, rec.Body)
	}
	wantDisposition := `attachment; filename="wijgate-gegevens-` + h.now().Format("2006-01-02") + `.json"`
	if got := rec.Header().Get("Content-Disposition"); got != wantDisposition {
		t.Errorf("Content-Disposition %q, want %q", got, wantDisposition)
	}
	if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type %q", got)
	}
	raw := rec.Body.String()
	var x privacy.Export
	if err := json.Unmarshal([]byte(raw), &x); err != nil {
		t.Fatal(err)
	}
	if x.Version != privacy.ExportVersion || x.Account.ID != jan.ID || x.Account.Email != jan.Email || x.Account.Name != jan.Name {
		t.Errorf("version and account: %d %+v", x.Version, x.Account)
	}
	if len(x.Memberships) != 1 || x.Memberships[0].Organisation != testOrgName || x.Memberships[0].Role != org.RoleAdmin ||
		x.Memberships[0].Anchor != org.AnchorEH3 || !x.Memberships[0].Anchored || x.Memberships[0].VerifiedAt.IsZero() {
		t.Errorf("memberships: %+v", x.Memberships)
	}
	if len(x.Sessions) != 1 || x.Sessions[0].StartedAt.IsZero() || !slices.Equal(x.Sessions[0].Methods, []string{"pwd"}) {
		t.Errorf("sessions: %+v", x.Sessions)
	}
	if len(x.InvitationsSent) != 1 || x.InvitationsSent[0].Email != "nieuw@example.nl" {
		t.Errorf("invitations sent: %+v", x.InvitationsSent)
	}
	if len(x.InvitationsReceived) != 1 || x.InvitationsReceived[0].KvK != otherKvK || x.InvitationsReceived[0].Organisation != testOrgName {
		t.Errorf("invitations received: %+v", x.InvitationsReceived)
	}
	var actions []string
	for _, e := range x.Audit {
		actions = append(actions, e.Action)
	}
	slices.Sort(actions)
	// Jan verified the company, invited Piet and the newcomer, and gave
	// Piet apps; Piet's acceptance names Piet only.
	if want := []string{"eh_verified", "invite", "invite", "set_apps"}; !slices.Equal(actions, want) {
		t.Errorf("audit actions %v, want %v", actions, want)
	}
	if x.Factors == nil || len(x.Factors) != 0 {
		t.Errorf("factors: %#v, want an empty list", x.Factors)
	}

	stored, err := h.accounts.Account(jan.ID)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"the password hash": stored.PasswordHash, "the password": testPassword}
	sessions, err := h.store.AccountSessions(jan.ID)
	if err != nil || len(sessions) != 1 {
		t.Fatal(sessions, err)
	}
	secrets["the session key"] = sessions[0].Key
	secrets["the cookie"] = b.session()
	for _, inv := range append(h.invitations(testKvK), h.invitations(otherKvK)...) {
		secrets["invitation ID "+inv.ID] = inv.ID
	}
	for what, secret := range secrets {
		if secret != "" && strings.Contains(raw, secret) {
			t.Errorf("the export holds %s", what)
		}
	}
	for _, field := range []string{`"password_hash"`, `"key"`, `"credential_version"`} {
		if strings.Contains(raw, field) {
			t.Errorf("the export has the field %s", field)
		}
	}
}

// TestDeletePageAsksPasswordAndConfirmation: the form asks the current
// password (autocomplete current-password) and a tick; without either it
// answers 400 at the field and removes nothing.
func TestDeletePageAsksPasswordAndConfirmation(t *testing.T) {
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Janssen")
	b := h.loggedIn("jan@example.nl")
	rec := b.get("/account/delete")
	wantPage(t, rec, http.StatusOK, Dutch, "privacy.delete.title", "privacy.delete.confirm", "privacy.delete.button")
	wantMarkup(t, rec, `action="/account/delete"`, `autocomplete="current-password"`, `name="confirm" type="checkbox"`)
	if i, j := strings.Index(rec.Body.String(), pageText(Dutch, "privacy.delete.button")), strings.Index(rec.Body.String(), pageText(Dutch, "privacy.delete.cancel")); i < 0 || j < i {
		t.Error("the primary button is not the form's first")
	}
	if rec := h.browser().get("/account/delete"); rec.Code != http.StatusSeeOther {
		t.Errorf("the page without a session: %d, want the login page", rec.Code)
	}

	rec = b.post("/account/delete", url.Values{"password": {testPassword}})
	wantPage(t, rec, http.StatusBadRequest, Dutch, "privacy.delete.confirm.missing")
	wantMarkup(t, rec, `aria-describedby="f-confirm-error"`, `href="#f-confirm"`)
	rec = b.post("/account/delete", url.Values{"confirm": {"yes"}})
	wantPage(t, rec, http.StatusBadRequest, Dutch, "field.password.empty")
	wantPage(t, b.post("/account/delete", url.Values{"password": {testPassword}, "confirm": {"yes"}, "role": {"x"}}), http.StatusBadRequest, Dutch, "form.unknown")
	wantPage(t, b.post("/account/delete", url.Values{"password": {testPassword}, "confirm": {"yes"}, "csrf": {"forged"}}), http.StatusForbidden, Dutch, "form.expired")
	if _, err := h.accounts.Account(jan.ID); err != nil {
		t.Fatalf("a refused form removed the account: %v", err)
	}
	wantPage(t, b.english().get("/account/delete"), http.StatusOK, English, "privacy.delete.title", "privacy.delete.confirm")
}

// TestDeleteWrongPasswordCountsInLoginRegulation: a wrong password
// removes nothing, answers 401 at the field, and counts as a failed login:
// the fifth locks removal and login alike.
func TestDeleteWrongPasswordCountsInLoginRegulation(t *testing.T) {
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Janssen")
	b := h.loggedIn("jan@example.nl")
	for i := range account.LoginFailureLimit - 1 {
		rec := b.post("/account/delete", deleteForm("verkeerd-wachtwoord-1"))
		wantPage(t, rec, http.StatusUnauthorized, Dutch, "privacy.delete.wrongpassword")
		if i == 0 {
			wantMarkup(t, rec, `aria-describedby="f-password-error"`)
		}
	}
	rec := b.post("/account/delete", deleteForm("verkeerd-wachtwoord-1"))
	wantPage(t, rec, http.StatusTooManyRequests, Dutch, "login.locked")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	wantPage(t, b.post("/account/delete", deleteForm(testPassword)), http.StatusTooManyRequests, Dutch, "login.locked")
	wantPage(t, h.browser().post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}}), http.StatusTooManyRequests, Dutch, "login.locked")
	if _, err := h.accounts.Account(jan.ID); err != nil {
		t.Fatalf("the account is gone: %v", err)
	}
	h.advance(account.LoginFirstWait + time.Second)
	wantRedirect(t, b.post("/account/delete", deleteForm(testPassword)), "/account/deleted?lang=nl")
}

// TestDeleteRefusedForTheLastVerifiedAdmin: while the account is the last
// eHerkenning-verified admin of an organisation with other members, the
// page names the organisation and what to do instead of the form, and a
// posted form removes nothing (409).
func TestDeleteRefusedForTheLastVerifiedAdmin(t *testing.T) {
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Janssen", testKvK)
	h.member(jan, testKvK, "piet@example.nl", "Piet Pieters", "rie")
	b := h.loggedIn("jan@example.nl")
	rec := b.get("/account/delete")
	wantPage(t, rec, http.StatusOK, Dutch, "privacy.delete.blocked", "privacy.delete.blocked.howto")
	wantTexts(t, rec, http.StatusOK, testOrgName, "KvK "+testKvK)
	wantMarkup(t, rec, `href="/org/`+testKvK+`"`)
	if strings.Contains(rec.Body.String(), `action="/account/delete"`) {
		t.Error("the refused page still offers the form")
	}
	rec = b.post("/account/delete", deleteForm(testPassword))
	wantPage(t, rec, http.StatusConflict, Dutch, "privacy.delete.blocked")
	wantTexts(t, rec, http.StatusConflict, testOrgName)
	if _, err := h.accounts.Account(jan.ID); err != nil {
		t.Fatalf("a refused removal removed the account: %v", err)
	}
	if _, ok := h.membership(testKvK, jan.ID); !ok {
		t.Fatal("a refused removal removed the membership")
	}
	var blocked *privacy.BlockedError
	if _, err := (&privacy.Service{Accounts: h.accounts, Orgs: h.orgs, Store: h.store}).Delete(jan.ID); !errors.As(err, &blocked) ||
		len(blocked.Organisations) != 1 || !strings.Contains(err.Error(), testKvK) {
		t.Errorf("the service's refusal: %v, want one naming %s", err, testKvK)
	}
}

// TestDeleteRemovesTheAccountAtOnce: after the password and the tick the
// account is gone, the browser lands on a plain page with the cookie
// cleared, the old cookie opens nothing, the old password logs nobody in,
// the address can register again, and the organisation's log shows the
// pseudonym instead of the name or address. A second verified admin
// keeps the organisation; the colleagues the removed admin invited stay
// anchored.
func TestDeleteRemovesTheAccountAtOnce(t *testing.T) {
	h := newPortalHarness(t)
	anna := h.verifiedAdmin("anna@example.nl", "Anna de Vries", testKvK)
	jan := h.account("jan@example.nl", "Jan Janssen")
	if _, err := h.orgs.Link(jan.ID, org.Verified{KvK: testKvK, Name: testOrgName, Level: "loa3", Pseudonym: "S-jan"}); err != nil {
		t.Fatal(err)
	}
	piet := h.member(jan, testKvK, "piet@example.nl", "Piet Pieters", "rie")
	if err := h.orgs.SetApps(jan.ID, testKvK, piet.ID, []string{"declaratie"}, []string{"declaratie", "rie"}); err != nil {
		t.Fatal(err)
	}
	b := h.loggedIn("jan@example.nl")
	other := h.loggedIn("jan@example.nl")
	cookie := b.session()

	rec := b.post("/account/delete", deleteForm(testPassword))
	wantRedirect(t, rec, "/account/deleted?lang=nl")
	if rec.Header().Get("Clear-Site-Data") == "" {
		t.Error("no Clear-Site-Data")
	}
	if b.session() != "" {
		t.Error("the session cookie was not cleared")
	}
	wantPage(t, b.get("/account/deleted"), http.StatusOK, Dutch, "privacy.deleted.title", "privacy.deleted.body")

	if _, err := h.accounts.Account(jan.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the account: %v, want it gone", err)
	}
	if _, err := h.sessions.Lookup(cookie); err == nil {
		t.Error("the removed account's cookie still leads to a session")
	}
	if rec := other.get("/dashboard"); rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "/login?") {
		t.Errorf("its other browser's dashboard: %d to %q, want the login page", rec.Code, rec.Header().Get("Location"))
	}
	wantPage(t, h.browser().post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}}), http.StatusUnauthorized, Dutch, "login.failed")
	if _, err := h.accounts.Create(context.Background(), "jan@example.nl", "Jan Janssen", testPassword, "nl"); err != nil {
		t.Errorf("the address cannot register again: %v", err)
	}

	m, ok := h.membership(testKvK, piet.ID)
	if !ok || m.InvitedBy != anna.ID {
		t.Errorf("the colleague Jan invited: %+v, want handed to Anna", m)
	}
	if anchored, err := h.orgs.Anchored(m); err != nil || !anchored {
		t.Errorf("the colleague Jan invited is no longer anchored: %v", err)
	}
	pseudonym := account.Pseudonym(jan.ID)
	if last := h.lastAudit(testKvK); last.Action != "account_removed" || last.Actor != jan.ID {
		t.Errorf("the log's newest entry: %+v, want the removal", last)
	}
	page := h.loggedIn("anna@example.nl").get("/org/" + testKvK)
	wantTexts(t, page, http.StatusOK, pseudonym, "Piet Pieters")
	wantPage(t, page, http.StatusOK, Dutch, "audit.account_removed")
	for _, leak := range []string{"Jan Janssen", "jan@example.nl", jan.ID} {
		if strings.Contains(page.Body.String(), leak) {
			t.Errorf("the audit page still shows %q", leak)
		}
	}
}

// TestDeleteOfTheOnlyMemberKeepsTheOrganisation: an admin alone in an
// organisation may go; the organisation and its log stay, and whoever
// verifies it next becomes its admin.
func TestDeleteOfTheOnlyMemberKeepsTheOrganisation(t *testing.T) {
	h := newPortalHarness(t)
	h.verifiedAdmin("jan@example.nl", "Jan Janssen", testKvK)
	if _, _, err := h.orgs.Invite(h.mustAccount("jan@example.nl").ID, testKvK, "nieuw@example.nl", nil, []string{"rie"}); err != nil {
		t.Fatal(err)
	}
	b := h.loggedIn("jan@example.nl")
	wantRedirect(t, b.post("/account/delete", deleteForm(testPassword)), "/account/deleted?lang=nl")
	if ms, _ := h.orgs.Members(testKvK); len(ms) != 0 {
		t.Errorf("members left: %+v", ms)
	}
	if _, err := h.orgs.Organisation(testKvK); err != nil {
		t.Errorf("the organisation: %v, want it kept", err)
	}
	if invs := h.invitations(testKvK); len(invs) != 0 {
		t.Errorf("the invitation the removed admin sent is still pending: %+v", invs)
	}
	kees := h.verifiedAdmin("kees@example.nl", "Kees Kok", testKvK)
	if m, ok := h.membership(testKvK, kees.ID); !ok || m.Role != org.RoleAdmin {
		t.Errorf("the next to verify: %+v, want admin", m)
	}
	for _, e := range h.audit(testKvK) {
		if e.Target == "nieuw@example.nl" {
			continue
		}
		if strings.Contains(e.Target+e.Detail, "jan@example.nl") {
			t.Errorf("the log still names the address: %+v", e)
		}
	}
}

// TestDeletePseudonymisesTheAddressInOtherOrganisationsLogs: an
// organisation that invited the person's address, though they never
// joined, gets the pseudonym in its log instead.
func TestDeletePseudonymisesTheAddressInOtherOrganisationsLogs(t *testing.T) {
	h := newPortalHarness(t)
	kees := h.verifiedAdmin("kees@example.nl", "Kees Kok", otherKvK)
	jan := h.account("jan@example.nl", "Jan Janssen")
	if _, _, err := h.orgs.Invite(kees.ID, otherKvK, "jan@example.nl", nil, []string{"rie"}); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, h.loggedIn("jan@example.nl").post("/account/delete", deleteForm(testPassword)), "/account/deleted?lang=nl")
	last := h.lastAudit(otherKvK)
	if last.Action != "invite" || last.Target != account.Pseudonym(jan.ID) {
		t.Errorf("the inviting organisation's log: %+v, want the pseudonym as target", last)
	}
	if invs := h.invitations(otherKvK); len(invs) != 0 {
		t.Errorf("the invitation to the removed address is still pending: %+v", invs)
	}
}

// mustAccount reads the account with this address.
func (h *portalHarness) mustAccount(email string) storage.Account {
	h.t.Helper()
	a, err := h.accounts.AccountByEmail(email)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}
