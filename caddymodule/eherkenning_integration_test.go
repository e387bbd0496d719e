package caddymodule

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	formAction  = regexp.MustCompile(`<form[^>]*method="post"[^>]*action="([^"]+)"`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
	simSession  = regexp.MustCompile(`name="s" value="([^"]+)"`)
)

// follow walks redirects and self-submitting forms (the SAML POST
// binding, the way on to eHerkenning after a login) until a page that
// waits for a person, and returns it.
func (b *browser) follow(resp *http.Response, body string) (*http.Response, string) {
	b.t.Helper()
	for range 20 {
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				b.t.Fatal(err)
			}
			resp, body = b.page(next.String())
		case resp.StatusCode == http.StatusOK && (strings.Contains(body, `id="saml-post"`) || strings.Contains(body, " data-autosubmit")):
			action := formAction.FindStringSubmatch(body)
			form := url.Values{}
			for _, f := range hiddenField.FindAllStringSubmatch(body, -1) {
				form.Set(f[1], htmlUnescape(f[2]))
			}
			target, _ := resp.Request.URL.Parse(htmlUnescape(action[1]))
			resp, body = b.do(http.MethodPost, target.String(), form)
		default:
			return resp, body
		}
	}
	b.t.Fatal("too many hops")
	return nil, ""
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// startEHerkenning presses Login eHerkenning and follows on to the
// simulator's first page.
func (b *browser) startEHerkenning() (*http.Response, string) {
	b.t.Helper()
	return b.follow(b.post("/eherkenning/start", url.Values{}))
}

// verifyAt walks the manual's eHerkenning steps in the simulator: start,
// pick a provider, pick the company and scenario, and returns the page
// the person ends on.
func (b *browser) verifyAt(company, scenario string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.startEHerkenning()
	if !strings.Contains(body, "Kies hoe u wilt inloggen") || !strings.Contains(body, "SIMULATOR") {
		b.t.Fatalf("not at the simulator's choice page: %d\n%s", resp.StatusCode, body)
	}
	s := simSession.FindStringSubmatch(body)[1]
	resp, body = b.page("/ehsim/login?s=" + url.QueryEscape(s) + "&provider=" + url.QueryEscape("Testleverancier Noord"))
	expectStatus(b.t, resp, body, http.StatusOK)
	resp, body = b.do(http.MethodPost, "/ehsim/login", url.Values{"s": {s}, "company": {company}, "scenario": {scenario}, "person": {"jan"}})
	return b.follow(resp, body)
}

func TestEHerkenningLinksTheCompanyAsAdmin(t *testing.T) {
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	if resp, _ := b.page("/website/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("before verification: %d", resp.StatusCode)
	}
	resp, body := b.verifyAt("12345678", "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Jouw account is nu Admin account voor") || !strings.Contains(body, "Naar je persoonlijke dashboard") {
		t.Fatalf("no success page:\n%s", body)
	}
	resp, body = b.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	h := g.Upstream.last(t)
	if h.Get("X-Wij-Org-Kvk") != "12345678" || h.Get("X-Wij-Org-Role") != "admin" || h.Get("X-Wij-Assurance") != "eh3" || h.Get("X-Wij-User-Id") != acct.ID {
		t.Fatalf("headers after verification: %v", h)
	}

	t.Run("a second company on the same account", func(t *testing.T) {
		other := g.newBrowser()
		other.login(testEmail, testPassword)
		resp, body := other.verifyAt("87654321", "eh4")
		expectStatus(t, resp, body, http.StatusOK)
		_, body = other.page("/dashboard")
		if !strings.Contains(body, "12345678") || !strings.Contains(body, "87654321") {
			t.Fatalf("dashboard does not list both companies:\n%s", body)
		}
	})
}

func TestEHerkenningRefusals(t *testing.T) {
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	for _, tc := range []struct {
		scenario, message string
		status            int
	}{
		{"cancel", "afgebroken", http.StatusOK},
		{"eh2plus", "te laag betrouwbaarheidsniveau", http.StatusForbidden},
		{"nomandate", "geen machtiging", http.StatusForbidden},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			b := g.newBrowser()
			b.login(testEmail, testPassword)
			resp, body := b.verifyAt("12345678", tc.scenario)
			expectStatus(t, resp, body, tc.status)
			if !strings.Contains(body, tc.message) {
				t.Fatalf("no clear message %q:\n%s", tc.message, body)
			}
			if r, _ := b.do(http.MethodGet, "/website/", nil); r.StatusCode != http.StatusForbidden {
				t.Fatalf("a refused verification linked the company: %d", r.StatusCode)
			}
		})
	}
}

// TestEHerkenningAnswerInAnotherBrowser: account A starts, and the
// broker's answer is presented in B's browser. Nothing may be linked.
func TestEHerkenningAnswerInAnotherBrowser(t *testing.T) {
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{})
	g.addAccount("a@example.nl", "A", testPassword)
	g.addAccount("b@example.nl", "B", testPassword)
	a, bb := g.newBrowser(), g.newBrowser()
	a.login("a@example.nl", testPassword)
	bb.login("b@example.nl", testPassword)

	_, body := a.startEHerkenning()
	s := simSession.FindStringSubmatch(body)[1]
	a.page("/ehsim/login?s=" + url.QueryEscape(s) + "&provider=" + url.QueryEscape("Testleverancier Noord"))
	resp, _ := a.do(http.MethodPost, "/ehsim/login", url.Values{"s": {s}, "company": {"12345678"}, "scenario": {"eh3"}})
	if resp.StatusCode/100 != 3 || !strings.Contains(resp.Header.Get("Location"), "/eherkenning/acs") {
		t.Fatalf("expected a redirect to the ACS, got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// B's browser receives A's answer.
	resp, body = bb.follow(bb.page(resp.Header.Get("Location")))
	expectStatus(t, resp, body, http.StatusForbidden)
	if !strings.Contains(body, "andere browser") {
		t.Fatalf("no clear page:\n%s", body)
	}
	for _, br := range []*browser{a, bb} {
		if r, _ := br.do(http.MethodGet, "/website/", nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("a company was linked: %d", r.StatusCode)
		}
	}
}

func TestEHerkenningStartNeedsLogin(t *testing.T) {
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{})
	b := g.newBrowser()
	resp, _ := b.submit("/eherkenning", "/eherkenning/start", url.Values{})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "/login?return=%2Feherkenning%2Fstart") {
		t.Fatalf("without a session: %d %q", resp.StatusCode, loc)
	}
}

func TestServiceProviderMetadataIsServed(t *testing.T) {
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{})
	resp, body := g.newBrowser().do(http.MethodGet, "/eherkenning/metadata", nil)
	expectStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"urn:etoegang:DV:00000009999999999999:entities:9001", "/eherkenning/acs", "HTTP-Artifact"} {
		if !strings.Contains(body, want) {
			t.Errorf("metadata lacks %q", want)
		}
	}
}
