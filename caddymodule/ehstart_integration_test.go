package caddymodule

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// ehBindingCookie is the browser's secret of a started eHerkenning login.
const ehBindingCookie = "__Host-wijgate_eh"

// startedLogins counts the eHerkenning logins the portal started, from
// the server's log (ehstart.caddyfile writes it next to the store).
func startedLogins(t *testing.T, g *gateway) int {
	t.Helper()
	f, err := os.Open(g.Storage + ".log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	lines := bufio.NewScanner(f)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var entry struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Msg == "eHerkenning login started" {
			n++
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEHerkenningStartByGETChangesNothing: a GET of /eherkenning/start,
// whichever site caused it, starts no SAML request and sets no cookie,
// so a login in progress in that browser still completes; starting one
// takes a POST with the form's token.
func TestEHerkenningStartByGETChangesNothing(t *testing.T) {
	g := startGateway(t, "ehstart.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	// A login in progress: at the broker's first page.
	_, body := b.startEHerkenning()
	if !strings.Contains(body, "Kies hoe u wilt inloggen") {
		t.Fatalf("not at the simulator:\n%s", body)
	}
	s := simSession.FindStringSubmatch(body)[1]
	binding := b.cookie(ehBindingCookie)
	if binding == "" || startedLogins(t, g) != 1 {
		t.Fatalf("the POST did not start a login: binding %q, %d started", binding, startedLogins(t, g))
	}

	for _, site := range []string{"cross-site", "same-site", "same-origin", "none"} {
		resp, _ := b.page("/eherkenning/start", "Sec-Fetch-Site", site)
		if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
			t.Errorf("GET with Sec-Fetch-Site %s set cookies: %q", site, c)
		}
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/eherkenning" {
			t.Errorf("GET with Sec-Fetch-Site %s: %d → %q, want 303 → /eherkenning", site, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		// Where it leads waits for the person to press the button.
		resp, body = b.follow(b.page(resp.Header.Get("Location"), "Sec-Fetch-Site", site))
		if resp.Request.URL.Path != "/eherkenning" || !strings.Contains(body, `action="/eherkenning/start"`) || strings.Contains(body, "data-autosubmit") {
			t.Errorf("GET with Sec-Fetch-Site %s ended at %s:\n%s", site, resp.Request.URL, body)
		}
	}
	if got := startedLogins(t, g); got != 1 {
		t.Errorf("GETs of /eherkenning/start started %d more SAML requests", got-1)
	}
	if got := b.cookie(ehBindingCookie); got != binding {
		t.Errorf("the binding cookie changed from %q to %q", binding, got)
	}

	// The login in progress completes.
	b.page("/ehsim/login?s=" + url.QueryEscape(s) + "&provider=" + url.QueryEscape("Testleverancier Noord"))
	resp, body := b.follow(b.do(http.MethodPost, "/ehsim/login", url.Values{"s": {s}, "company": {"12345678"}, "scenario": {"eh3"}, "person": {"jan"}}))
	expectStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Jouw account is nu Admin account voor") {
		t.Fatalf("the login in progress did not complete:\n%s", body)
	}

	// A POST without the form's token, or from another site, is refused
	// and starts nothing.
	for name, req := range map[string]struct {
		form    url.Values
		headers []string
	}{
		"without token": {url.Values{}, []string{"Origin", g.URL}},
		"cross-site":    {url.Values{"csrf": {b.cookie("__Host-wijgate_csrf")}}, []string{"Origin", "https://elders.example", "Sec-Fetch-Site", "cross-site"}},
	} {
		resp, body := b.do(http.MethodPost, "/eherkenning/start", req.form, req.headers...)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Dit formulier is verlopen") {
			t.Errorf("POST %s: %d\n%s", name, resp.StatusCode, body)
		}
		if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
			t.Errorf("POST %s set cookies: %q", name, c)
		}
	}
	if got := startedLogins(t, g); got != 1 {
		t.Errorf("refused POSTs started %d SAML requests", got-1)
	}
}
