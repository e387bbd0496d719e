package portal

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wijtechniek/wijgate/caddymodule/org"
)

// A verification of a company the account already verified is a renewal,
// and the operator's log says so; a first one is not.
func TestARenewalIsLoggedForTheOperator(t *testing.T) {
	t.Parallel()
	h := newEHHarness(t)
	core, logs := observer.New(zap.InfoLevel)
	h.portal.logger = zap.New(core)
	jan := h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl")
	wantTexts(t, b.get(h.parked(t, b)), http.StatusOK, Dutch.T("eh.success.title"))
	if n := logs.FilterMessage("eHerkenning verification renewed").Len(); n != 0 {
		t.Fatalf("a first verification logged as a renewal %d times", n)
	}
	wantTexts(t, b.get(h.parked(t, b)), http.StatusOK, Dutch.T("eh.success.title"))
	renewed := logs.FilterMessage("eHerkenning verification renewed").All()
	if len(renewed) != 1 || renewed[0].ContextMap()["kvk"] != ehCompany || renewed[0].ContextMap()["account"] != jan.ID ||
		renewed[0].ContextMap()["was"] != "holds" {
		t.Fatalf("renewal log lines: %+v", renewed)
	}
}

// After reverify_after an admin logging in first sees that the company
// must be verified again, in their language, with the button and a way
// on; the dashboard says it too.
func TestTheNoticeAfterLoginInEnglish(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	h.linkOrg(jan.ID, "12345678", "Bouwbedrijf Jansen")
	h.advance(org.DefaultReverifyAfter + time.Hour)

	b := h.browser().english()
	rec := b.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}, "return": {"https://apps.example.nl/rie/"}})
	due := template.HTMLEscapeString(strings.NewReplacer("{org}", "Bouwbedrijf Jansen",
		"{date}", formatDate(h.now().Add(org.DefaultReverifyGrace-time.Hour))).Replace(English.T("reverify.due")))
	wantTexts(t, rec, http.StatusOK, English.T("reverify.title"), due, English.T("reverify.button"))
	// Enter presses the first button: Verify again, for this company.
	wantMarkup(t, rec, `action="/eherkenning/start"><input type="hidden" name="csrf" value="`+b.csrf()+`"><input type="hidden" name="kvk" value="12345678"><button class="btn btn-primary" type="submit">`,
		`href="https://apps.example.nl/rie/">`+English.T("reverify.later"))
	wantTexts(t, b.get("/dashboard"), http.StatusOK, due, English.T("reverify.button"))
}
