package portal

import (
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Helpers for the organisation, invitation and eHerkenning handler tests,
// on top of portalHarness.

const (
	testKvK     = "12345678"
	testOrgName = "Wij Techniek B.V."
	otherKvK    = "87654321"
)

// english makes the browser ask for English pages, so tests read the
// texts people see.
func (b *browser) english() *browser {
	b.cookies[langCookie] = &http.Cookie{Name: langCookie, Value: string(English)}
	return b
}

// verifiedAdmin creates an account that verified the organisation with
// eHerkenning, so it is the organisation's anchored admin.
func (h *portalHarness) verifiedAdmin(email, name, kvk string) storage.Account {
	h.t.Helper()
	a := h.account(email, name)
	if _, err := h.orgs.Link(a.ID, org.Verified{KvK: kvk, Name: testOrgName, Level: "loa3", Pseudonym: "S-" + a.ID}); err != nil {
		h.t.Fatal(err)
	}
	return a
}

// member creates an account the admin invited, with the given apps.
func (h *portalHarness) member(admin storage.Account, kvk, email, name string, apps ...string) storage.Account {
	h.t.Helper()
	a := h.account(email, name)
	token, _, err := h.orgs.Invite(admin.ID, kvk, email, apps, []string{"declaratie", "rie"})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.orgs.Accept(token, a); err != nil {
		h.t.Fatal(err)
	}
	return a
}

// membership reads the account's membership of the organisation; ok is
// false when there is none.
func (h *portalHarness) membership(kvk, accountID string) (storage.Membership, bool) {
	h.t.Helper()
	ms, err := h.orgs.Members(kvk)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range ms {
		if m.AccountID == accountID {
			return m, true
		}
	}
	return storage.Membership{}, false
}

// audit is the organisation's whole audit log, newest first.
func (h *portalHarness) audit(kvk string) []storage.AuditEntry {
	h.t.Helper()
	entries, _, err := h.orgs.Audit(kvk, 0, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	return entries
}

// lastAudit is the newest entry of the organisation's audit log.
func (h *portalHarness) lastAudit(kvk string) storage.AuditEntry {
	h.t.Helper()
	entries := h.audit(kvk)
	if len(entries) == 0 {
		h.t.Fatalf("the audit log of %s is empty", kvk)
	}
	return entries[0]
}

// invitations are the organisation's pending invitations.
func (h *portalHarness) invitations(kvk string) []storage.Invitation {
	h.t.Helper()
	invs, err := h.orgs.Invitations(kvk)
	if err != nil {
		h.t.Fatal(err)
	}
	return invs
}

// wantTexts checks the answer's status and that its body shows each text,
// as the page escapes it.
func wantTexts(t *testing.T, rec *httptest.ResponseRecorder, status int, texts ...string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d\n%s", rec.Code, status, rec.Body)
	}
	for _, text := range texts {
		if !strings.Contains(rec.Body.String(), html.EscapeString(text)) {
			t.Errorf("the page lacks %q:\n%s", text, rec.Body)
		}
	}
}

// wantMarkup checks that the answer's body holds each piece of markup,
// such as a form's action.
func wantMarkup(t *testing.T, rec *httptest.ResponseRecorder, markup ...string) {
	t.Helper()
	for _, m := range markup {
		if !strings.Contains(rec.Body.String(), m) {
			t.Errorf("the page lacks %s:\n%s", m, rec.Body)
		}
	}
}
