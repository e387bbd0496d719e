package portal

import (
	"crypto/rsa"
	"crypto/x509"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/devmodules/ehsim"
)

// The eHerkenning pages with the broker simulator on a local HTTP server
// and a service provider over the harness's store: the browser posts the
// start form to the simulator, picks an outcome there, and brings the
// answer (an artifact the provider resolves at the simulator) back to the
// portal's ACS.

const (
	ehEntityID    = "urn:etoegang:DV:00000001234567890000:entities:9001"
	ehServiceID   = "urn:etoegang:DV:00000001234567890000:services:9052"
	ehServiceUUID = "5a1b3c4d-0000-4000-8000-00000000a001"
	ehACS         = "https://portal.example.nl" + acsPath
	// ehCompany is one of the simulator's preset companies.
	ehCompany     = "12345678"
	ehCompanyName = "Wij Techniek Demo B.V."
)

type ehKeyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// RSA keys are made once per test binary: making them is slow under the
// race detector.
var (
	ehKeysOnce sync.Once
	ehKeys     map[string]ehKeyPair
)

func testEHKeys(t *testing.T) map[string]ehKeyPair {
	t.Helper()
	ehKeysOnce.Do(func() {
		ehKeys = map[string]ehKeyPair{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range []string{"sp", "broker1", "broker2", "other"} {
			wg.Go(func() {
				key, cert, err := ehsim.GenerateKeyPair(name)
				if err != nil {
					panic(err)
				}
				mu.Lock()
				ehKeys[name] = ehKeyPair{key, cert}
				mu.Unlock()
			})
		}
		wg.Wait()
	})
	return ehKeys
}

// ehHarness is a portal harness with eHerkenning configured against the
// simulator.
type ehHarness struct {
	*portalHarness
	sim *ehsim.Simulator
}

func newEHHarness(t *testing.T) *ehHarness {
	t.Helper()
	k := testEHKeys(t)
	var sp atomic.Pointer[eherkenning.ServiceProvider]
	spMeta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		md, err := sp.Load().Metadata()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(md)
	}))
	t.Cleanup(spMeta.Close)
	simSrv := httptest.NewUnstartedServer(nil)
	sim, err := ehsim.New(ehsim.Config{
		BaseURL:    "http://" + simSrv.Listener.Addr().String() + "/ehsim/",
		SigningKey: k["broker1"].key, SigningCert: k["broker1"].cert,
		SecondSigningKey: k["broker2"].key, SecondSigningCert: k["broker2"].cert,
		OtherRecipientCert: k["other"].cert,
		SPMetadataURL:      spMeta.URL,
		ServiceUUID:        ehServiceUUID,
	})
	if err != nil {
		t.Fatal(err)
	}
	simSrv.Config.Handler = sim
	simSrv.Start()
	t.Cleanup(simSrv.Close)

	h := newPortalHarness(t, func(cfg *Config) {
		// The badger store keeps the provider's state beside the accounts.
		state := cfg.Accounts.Store.(eherkenning.StateStore)
		p, err := eherkenning.New(eherkenning.Config{
			EntityID: ehEntityID, ACSURL: ehACS,
			SigningKey: k["sp"].key, SigningCert: k["sp"].cert,
			EncryptionKey: k["sp"].key, EncryptionCert: k["sp"].cert,
			BrokerMetadata: eherkenning.MetadataSource{XML: sim.Metadata()},
			ServiceID:      ehServiceID, ServiceUUID: ehServiceUUID,
			Now: cfg.Now,
		}, state)
		if err != nil {
			t.Fatal(err)
		}
		sp.Store(p)
		cfg.EHerkenning = p
	})
	return &ehHarness{portalHarness: h, sim: sim}
}

var (
	reFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	reHidden     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	noRedirect   = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
)

// startLogin presses "Login eHerkenning" in b, follows the auto-submitted
// form to the simulator and answers there as a person choosing the
// company and scenario. It returns where the simulator sends the browser
// back to: the portal's ACS with an artifact.
func (h *ehHarness) startLogin(t *testing.T, b *browser, company string, scenario ehsim.Scenario) string {
	t.Helper()
	rec := b.post(ehStartPath, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("start: %d\n%s", rec.Code, rec.Body)
	}
	if _, ok := b.cookies[ehBindingCookie]; !ok {
		t.Fatal("the start set no binding cookie")
	}
	action := reFormAction.FindStringSubmatch(rec.Body.String())
	if action == nil {
		t.Fatalf("no form to the broker:\n%s", rec.Body)
	}
	form := url.Values{}
	for _, m := range reHidden.FindAllStringSubmatch(rec.Body.String(), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	resp, err := noRedirect.PostForm(html.UnescapeString(action[1]), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	choose, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || choose.Query().Get("s") == "" {
		t.Fatalf("the simulator refused the request: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noRedirect.PostForm(h.sim.URL("login"), url.Values{
		"s": {choose.Query().Get("s")}, "company": {company}, "scenario": {string(scenario)}, "person": {"Jan"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back := resp.Header.Get("Location")
	if u, err := url.Parse(back); resp.StatusCode != http.StatusSeeOther || err != nil ||
		!strings.HasPrefix(back, ehACS+"?") || u.Query().Get("SAMLart") == "" {
		t.Fatalf("the simulator answered %d to %q", resp.StatusCode, back)
	}
	return back
}

// acs brings the broker's answer to the ACS in b and returns the
// portal's answer.
func (h *ehHarness) acs(b *browser, back string) *httptest.ResponseRecorder {
	return b.do(httptest.NewRequest(http.MethodGet, back, nil))
}

// parked runs a login to the ACS and returns the completion address the
// ACS sends the browser to.
func (h *ehHarness) parked(t *testing.T, b *browser) string {
	t.Helper()
	rec := h.acs(b, h.startLogin(t, b, ehCompany, ehsim.ScenarioEH3))
	complete := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(complete, "/eherkenning/complete?t=") {
		t.Fatalf("ACS: %d to %q\n%s", rec.Code, complete, rec.Body)
	}
	return complete
}

// TestEHerkenningPages: the page explains and offers the button; only
// its form post starts a login.
func TestEHerkenningPages(t *testing.T) {
	t.Parallel()
	h := newEHHarness(t)
	h.account("jan@example.nl", "Jan Jansen")

	b := h.browser().english()
	rec := b.get("/eherkenning")
	wantTexts(t, rec, http.StatusOK, English.T("eh.lead"), English.T("eh.button"))
	wantMarkup(t, rec, `action="/eherkenning/start"`, `name="csrf" value="`+b.cookies[csrfCookie].Value+`"`)

	rec = b.get(ehStartPath)
	wantRedirect(t, rec, "/eherkenning")
	for _, c := range rec.Result().Cookies() {
		if c.Name == ehBindingCookie {
			t.Error("a GET of the start address set the binding cookie")
		}
	}

	wantRedirect(t, b.post(ehStartPath, nil), "https://portal.example.nl/login?return=%2Feherkenning%2Fstart")
	// Logging in on the way goes on to eHerkenning: the page posts its
	// form by itself.
	rec = b.post("/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}, "return": {ehStartPath}})
	wantTexts(t, rec, http.StatusOK, English.T("eh.continue"))
	wantMarkup(t, rec, `action="/eherkenning/start" data-autosubmit`)

	wantTexts(t, b.post(ehStartPath, url.Values{"csrf": {"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}}), http.StatusForbidden, English.T("form.expired"))
	if _, ok := b.cookies[ehBindingCookie]; ok {
		t.Error("a start without the form's token set the binding cookie")
	}

	// The form posts to the broker, so the page's policy lets it.
	broker, err := url.Parse(h.sim.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	rec = b.post(ehStartPath, nil)
	if csp := rec.Header().Get("Content-Security-Policy"); rec.Code != http.StatusOK || !strings.Contains(csp, "form-action 'self' http://"+broker.Host) {
		t.Errorf("start: %d, Content-Security-Policy %q", rec.Code, csp)
	}
}

// TestEHerkenningNotConfigured: without a service provider the pages
// say so rather than fail.
func TestEHerkenningNotConfigured(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl").english()
	wantTexts(t, b.post(ehStartPath, nil), http.StatusServiceUnavailable, English.T("eh.notconfigured"))
	wantTexts(t, b.get("/eherkenning/complete?t=x"), http.StatusServiceUnavailable, English.T("eh.notconfigured"))
	wantTexts(t, b.get(acsPath+"?SAMLart=x"), http.StatusServiceUnavailable, English.T("eh.notconfigured"))
}

// TestEHerkenningLinksTheOrganisation: the browser and account that
// started the login get the company linked, as its verified admin, once.
func TestEHerkenningLinksTheOrganisation(t *testing.T) {
	t.Parallel()
	h := newEHHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl").english()

	complete := h.parked(t, b)
	if _, ok := h.membership(ehCompany, jan.ID); ok {
		t.Fatal("the ACS linked the company before the browser came back")
	}
	rec := b.get(complete)
	wantTexts(t, rec, http.StatusOK, English.T("eh.success.title"), English.T("eh.success.lead"), ehCompanyName)
	m, ok := h.membership(ehCompany, jan.ID)
	if !ok || m.Role != org.RoleAdmin || m.Anchor != org.AnchorEH3 || m.Level != "loa3" || m.Pseudonym == "" {
		t.Fatalf("membership after the login: %+v (%v)", m, ok)
	}
	if _, ok := b.cookies[ehBindingCookie]; ok {
		t.Error("the binding cookie outlived the completed login")
	}
	wantMarkup(t, b.get("/dashboard"), "<h2>"+ehCompanyName+" <span", `href="/org/`+ehCompany+`"`)

	// The parked answer is collected once.
	wantTexts(t, b.get(complete), http.StatusBadRequest, English.T("eh.expired"))
	wantTexts(t, b.get("/eherkenning/complete?t=made-up"), http.StatusBadRequest, English.T("eh.expired"))
}

// TestEHerkenningCompleteOnlyForTheStarter: the completion page links
// nothing for another browser of the same account, another account
// holding the starter's browser secret, or nobody logged in; and the
// answer it saw is used up.
func TestEHerkenningCompleteOnlyForTheStarter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		presenter func(h *ehHarness, starter *browser) *browser
	}{
		{"another browser of the same account", func(h *ehHarness, _ *browser) *browser { return h.loggedIn("jan@example.nl") }},
		{"another account with the starter's secret", func(h *ehHarness, starter *browser) *browser {
			b := h.loggedIn("piet@example.nl")
			b.cookies[ehBindingCookie] = starter.cookies[ehBindingCookie]
			return b
		}},
		{"no session, with the starter's secret", func(h *ehHarness, starter *browser) *browser {
			b := h.browser()
			b.cookies[ehBindingCookie] = starter.cookies[ehBindingCookie]
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newEHHarness(t)
			jan := h.account("jan@example.nl", "Jan Jansen")
			piet := h.account("piet@example.nl", "Piet Pieters")
			starter := h.loggedIn("jan@example.nl").english()
			complete := h.parked(t, starter)
			wantTexts(t, c.presenter(h, starter).english().get(complete), http.StatusForbidden, English.T("eh.otherbrowser"))
			for _, a := range []string{jan.ID, piet.ID} {
				if _, ok := h.membership(ehCompany, a); ok {
					t.Fatalf("the company was linked to %s", a)
				}
			}
			wantTexts(t, starter.get(complete), http.StatusBadRequest, English.T("eh.expired"))
		})
	}
}

// TestEHerkenningRefusedAnswers: a broker answer without a login is
// explained and links nothing; an answer is taken once.
func TestEHerkenningRefusedAnswers(t *testing.T) {
	t.Parallel()
	h := newEHHarness(t)
	jan := h.account("jan@example.nl", "Jan Jansen")
	b := h.loggedIn("jan@example.nl").english()

	for _, c := range []struct {
		scenario ehsim.Scenario
		status   int
		text     string
	}{
		{ehsim.ScenarioCancel, http.StatusOK, "eh.cancelled"},
		{ehsim.ScenarioNoAuthorization, http.StatusForbidden, "eh.noauthorization"},
		{ehsim.ScenarioLevelTooLow, http.StatusForbidden, "eh.leveltoolow"},
	} {
		rec := h.acs(b, h.startLogin(t, b, ehCompany, c.scenario))
		wantTexts(t, rec, c.status, English.T(c.text))
		if loc := rec.Header().Get("Location"); loc != "" {
			t.Errorf("%s: sent on to %q", c.scenario, loc)
		}
	}

	back := h.startLogin(t, b, ehCompany, ehsim.ScenarioEH3)
	first := h.acs(b, back)
	if first.Code != http.StatusSeeOther {
		t.Fatalf("ACS: %d\n%s", first.Code, first.Body)
	}
	wantTexts(t, h.acs(b, back), http.StatusBadRequest, English.T("eh.expired"))
	if _, ok := h.membership(ehCompany, jan.ID); ok {
		t.Error("the ACS linked the company itself")
	}
}
