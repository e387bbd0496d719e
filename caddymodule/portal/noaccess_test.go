package portal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// guardRequest is a browser's request for an app page that a guard
// refuses; the guard hands it to the portal's page.
func guardRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://apps.example.nl/declaratie/", nil)
	r.AddCookie(&http.Cookie{Name: langCookie, Value: string(English)})
	return r
}

// TestNoAccessPage: a logged-in person refused by a guard learns why and
// which of their organisation's admins can change it; disabled admins
// and ordinary members are not named.
func TestNoAccessPage(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.verifiedAdmin("jan@example.nl", "Jan Jansen", testKvK)
	h.member(jan, testKvK, "piet@example.nl", "Piet Pieters", "rie")
	gone := h.member(jan, testKvK, "oud@example.nl", "Oud Beheerder")
	if err := h.orgs.SetRole(jan.ID, testKvK, gone.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.accounts.Disable("oud@example.nl"); err != nil {
		t.Fatal(err)
	}

	for _, reason := range []string{"no_right", "admin_only", "assurance"} {
		rec := httptest.NewRecorder()
		h.portal.NoAccess(rec, guardRequest(), NoAccessInfo{App: "Declaratie Systeem", Reason: reason, OrgKvK: testKvK, OrgName: testOrgName})
		wantTexts(t, rec, http.StatusForbidden, English.T("noaccess.title"), English.T("noaccess."+reason),
			"Declaratie Systeem", testOrgName+" (KvK "+testKvK+")", English.T("noaccess.admins"), "Jan Jansen <jan@example.nl>")
		wantMarkup(t, rec, `href="https://portal.example.nl/dashboard"`)
		for _, hidden := range []string{"Piet Pieters", "Oud Beheerder"} {
			if strings.Contains(rec.Body.String(), hidden) {
				t.Errorf("%s: the page names %s as an admin", reason, hidden)
			}
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", reason, cc)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", reason, csp)
		}
	}

	// Without an organisation there is nobody to name.
	rec := httptest.NewRecorder()
	h.portal.NoAccess(rec, guardRequest(), NoAccessInfo{App: "Declaratie Systeem", Reason: "assurance"})
	wantTexts(t, rec, http.StatusForbidden, English.T("noaccess.assurance"))
	if strings.Contains(rec.Body.String(), English.T("noaccess.admins")) || strings.Contains(rec.Body.String(), "KvK") {
		t.Errorf("a refusal without an organisation names one:\n%s", rec.Body)
	}
}

// TestRefusedPage: the guard's other refusals are a page in the
// person's language with the status the guard chose.
func TestRefusedPage(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	rec := httptest.NewRecorder()
	h.portal.Refused(rec, guardRequest(), http.StatusBadRequest, "guard.ambiguous_path")
	wantTexts(t, rec, http.StatusBadRequest, English.T("error.title"), English.T("guard.ambiguous_path"))
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}

	rec = httptest.NewRecorder()
	r := guardRequest()
	r.Header.Del("Cookie")
	h.portal.Refused(rec, r, http.StatusBadRequest, "guard.ambiguous_path")
	wantTexts(t, rec, http.StatusBadRequest, Dutch.T("guard.ambiguous_path"))
}
