package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
)

const (
	testEmail    = "jan@example.nl"
	testName     = "Jan Jänssen"
	testPassword = "correct horse battery staple"
	cookieName   = "__Host-wijgate"
)

func TestGuardWithoutSession(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	b := g.newBrowser()

	t.Run("browser navigation is sent to login with a return address", func(t *testing.T) {
		resp, _ := b.page("/declaratie/claims?id=7")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d, want 302", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc.Path != "/login" || loc.Query().Get("return") != g.URL+"/declaratie/claims?id=7" {
			t.Fatalf("Location = %q", resp.Header.Get("Location"))
		}
	})
	t.Run("API request gets 401 with a JSON body", func(t *testing.T) {
		resp, body := b.do(http.MethodGet, "/declaratie/api/claims", nil, "Accept", "application/json")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Content-Type"), "application/json") ||
			!strings.Contains(body, `"error":"unauthenticated"`) {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
	})
	t.Run("POST is never redirected", func(t *testing.T) {
		resp, _ := b.do(http.MethodPost, "/declaratie/claims", url.Values{"x": {"1"}}, "Accept", "text/html")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	for _, tc := range []struct{ name, value string }{
		{"garbage cookie", "garbage"},
		{"oversized cookie", strings.Repeat("A", 8000)},
		{"empty cookie", ""},
		{"cookie with odd bytes", "%00%ff\"';--"},
	} {
		t.Run(tc.name+" is no session", func(t *testing.T) {
			resp, _ := b.do(http.MethodGet, "/declaratie/", nil, "Cookie", cookieName+"="+tc.value)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
	}
	t.Run("forged identity headers never reach the upstream", func(t *testing.T) {
		before := g.Upstream.count()
		b.do(http.MethodGet, "/declaratie/", nil, "X-Wij-User-Email", "boss@evil.example", "X_Wij_User_Email", "boss@evil.example")
		if g.Upstream.count() != before {
			t.Fatal("a request without session reached the upstream")
		}
	})
}

func TestGuardHandsUpstreamExactlyOurHeaders(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	resp, body := b.page("/declaratie/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream reached") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	h := g.Upstream.last(t)
	want := map[string]string{
		"X-Wij-User-Id":    acct.ID,
		"X-Wij-User-Email": testEmail,
		"X-Wij-User-Name":  "Jan J%C3%A4nssen",
	}
	got := map[string]string{}
	for name, values := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-wij-") && name != "X-Wij-Assertion" {
			if len(values) != 1 {
				t.Errorf("%s has %d values", name, len(values))
			}
			got[name] = values[0]
		}
	}
	if len(got) != len(want) {
		t.Errorf("upstream saw identity headers %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if dec, _ := url.PathUnescape(got["X-Wij-User-Name"]); dec != testName {
		t.Errorf("name decodes to %q", dec)
	}
	// The route maps placeholders to a header of its own; an account
	// without an organisation leaves the org placeholder empty.
	if p, want := h.Get("X-Placeholders"), acct.ID+"|"+testEmail+"|declaratie|"+acct.ID+"|"; p != want {
		t.Errorf("placeholders upstream = %q, want %q", p, want)
	}
}

func TestForgedHeadersAreStripped(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	const forged = "boss@evil.example"
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"canonical", []string{"X-Wij-User-Email", forged}},
		{"lower case", []string{"x-wij-user-email", forged}},
		{"two copies", []string{"X-Wij-User-Email", forged, "X-Wij-User-Email", forged}},
		{"underscores", []string{"X_Wij_User_Email", forged}},
		{"mixed underscores", []string{"x_wij-User_email", forged}},
		{"a header we do not set", []string{"X-Wij-Org-Role", "admin"}},
		{"configured alias", []string{"Remote-User", forged}},
		{"configured alias with underscore", []string{"X_Forwarded_User", forged}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := b.page("/declaratie/", tc.headers...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for name, values := range g.Upstream.last(t) {
				for _, v := range values {
					if v == forged || v == "admin" {
						t.Errorf("upstream saw forged %s: %s", name, v)
					}
				}
			}
			if got := g.Upstream.last(t).Get("X-Wij-User-Email"); got != testEmail {
				t.Errorf("X-Wij-User-Email = %q", got)
			}
		})
	}
}

func TestSessionCookieNeverReachesUpstream(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	b.page("/declaratie/", "Cookie", "app_pref=dark")
	h := g.Upstream.last(t)
	cookies := strings.Join(h.Values("Cookie"), "; ")
	if strings.Contains(cookies, cookieName+"=") || strings.Contains(cookies, "wijgate_csrf") {
		t.Fatalf("upstream saw our cookies: %q", cookies)
	}
	if !strings.Contains(cookies, "app_pref=dark") {
		t.Fatalf("the app's own cookie was lost: %q", cookies)
	}
}

// TestNoneOfOurCookiesReachUpstream sends every cookie wijgate sets, the
// session cookie from the login among them, next to one of the app's own:
// the app receives only its own.
func TestNoneOfOurCookiesReachUpstream(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	if b.cookie(cookieName) == "" {
		t.Fatal("no session cookie after login")
	}
	sent := []string{"app_pref=dark"}
	// The first is the session cookie, which the browser sends already.
	for _, name := range contract.Cookies(cookieName)[1:] {
		sent = append(sent, name+"=v")
	}
	resp, _ := b.page("/declaratie/", "Cookie", strings.Join(sent, "; "))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got []string
	for _, line := range g.Upstream.last(t).Values("Cookie") {
		for part := range strings.SplitSeq(line, ";") {
			got = append(got, strings.TrimSpace(part))
		}
	}
	if len(got) != 1 || got[0] != "app_pref=dark" {
		t.Fatalf("upstream received cookies %q, want only app_pref=dark", got)
	}
}

func TestLoginSetsAFreshHardenedCookie(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	first := b.login(testEmail, testPassword)
	second, _ := b.post("/login", url.Values{"email": {testEmail}, "password": {testPassword}})
	var values []string
	for _, resp := range []*http.Response{first, second} {
		var c *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == cookieName {
				c = ck
			}
		}
		if c == nil {
			t.Fatal("no session cookie set")
		}
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Fatalf("cookie attributes: %+v", c)
		}
		values = append(values, c.Value)
	}
	if values[0] == values[1] {
		t.Fatal("a second login reused the session")
	}
}

func TestLogoutMakesTheOldCookieUseless(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	stolen := b.cookie(cookieName)
	resp, _ := b.submit("/dashboard", "/logout", url.Values{})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Clear-Site-Data"), "cookies") {
		t.Fatalf("logout: %d, Clear-Site-Data %q", resp.StatusCode, resp.Header.Get("Clear-Site-Data"))
	}
	other := g.newBrowser()
	resp, _ = other.do(http.MethodGet, "/declaratie/", nil, "Cookie", cookieName+"="+stolen)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old cookie after logout: status %d", resp.StatusCode)
	}
}

func TestLogoutNeedsAValidForm(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAA"}}, nil},
		{"cross-site post", url.Values{}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := b.do(http.MethodPost, "/logout", tc.form, tc.headers...)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
				t.Fatal("a forged logout ended the session")
			}
		})
	}
	t.Run("GET does not log out", func(t *testing.T) {
		b.page("/logout")
		if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
			t.Fatal("GET /logout ended the session")
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	clk := useClock(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)

	t.Run("idle", func(t *testing.T) {
		b := g.newBrowser()
		b.login(testEmail, testPassword)
		clk.Add(29 * time.Minute)
		if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
			t.Fatalf("after 29 min: %d", r.StatusCode)
		}
		clk.Add(30*time.Minute + time.Second)
		if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusFound {
			t.Fatalf("after 30 min idle: %d, want redirect to login", r.StatusCode)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		b := g.newBrowser()
		b.login(testEmail, testPassword)
		for range 35 { // 35 × 20 min = 11 h 40 min of steady use
			clk.Add(20 * time.Minute)
			if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
				t.Fatalf("active session refused: %d", r.StatusCode)
			}
		}
		clk.Add(21 * time.Minute)
		if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusFound {
			t.Fatalf("after 12 h: %d, want redirect to login", r.StatusCode)
		}
	})
}

func TestLoginReturnAddress(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{Extra: "return_hosts apps.example.nl *.wij-techniek.nl"})
	g.addAccount(testEmail, testName, testPassword)
	for _, tc := range []struct{ name, ret, want string }{
		{"own path", "/declaratie/x?y=1", "/declaratie/x?y=1"},
		{"own site, absolute", g.URL + "/declaratie/", g.URL + "/declaratie/"},
		{"listed host", "https://apps.example.nl/a", "https://apps.example.nl/a"},
		{"listed wildcard", "https://rie.wij-techniek.nl/", "https://rie.wij-techniek.nl/"},
		{"protocol-relative", "//evil.example/", "/dashboard"},
		{"foreign absolute", "https://evil.example/", "/dashboard"},
		{"look-alike host", "https://wij-techniek.nl.evil.example/", "/dashboard"},
		{"javascript", "javascript:alert(1)", "/dashboard"},
		{"backslashes", `/\evil.example`, "/dashboard"},
		{"encoded slashes", "/%2F%2Fevil.example", "/dashboard"},
		{"encoded backslash", "/%5Cevil.example", "/dashboard"},
		{"user info", "https://apps.example.nl@evil.example/", "/dashboard"},
		{"tab inside", "/\t/evil.example", "/dashboard"},
		{"data URL", "data:text/html,hi", "/dashboard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := g.newBrowser()
			resp, body := b.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}, "return": {tc.ret}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Location"); got != tc.want {
				t.Fatalf("Location = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSessionSurvivesReloadAndRestart(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	for i := range 3 {
		g.reload()
		if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
			t.Fatalf("after reload %d: status %d", i+1, r.StatusCode)
		}
	}
	g.restart()
	if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
		t.Fatalf("after restart: status %d", r.StatusCode)
	}
}

func TestDisabledAccountLosesAccessAtOnce(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	resp, err := http.Post(g.Admin+"/wijgate/accounts/disable", "application/json", strings.NewReader(`{"email":"`+testEmail+`"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("disable: %v %v", err, resp)
	}
	resp.Body.Close()
	if r, _ := b.do(http.MethodGet, "/declaratie/", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("disabled account still in: %d", r.StatusCode)
	}
	b2 := g.newBrowser()
	if r, _ := b2.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("disabled account logged in: %d", r.StatusCode)
	}
}
