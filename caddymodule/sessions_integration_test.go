package caddymodule

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// sessionCookieName is the session cookie of gateway.caddyfile.
const sessionCookieName = "__Host-wijgate"

// loginOnce logs in from a fresh browser, for use off the test's
// goroutine: it reports failures as errors instead of failing the test.
// cookie is the session cookie it got, if the login worked.
func loginOnce(g *gateway, email, password string) (status int, cookie string, err error) {
	jar := newSecureJar()
	client := &http.Client{Jar: jar, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(g.URL + "/login")
	if err != nil {
		return 0, "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindStringSubmatch(string(body))
	if m == nil {
		return 0, "", errors.New("no csrf token on /login")
	}
	form := url.Values{"email": {email}, "password": {password}, "csrf": {m[1]}}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", g.URL)
	if resp, err = client.Do(req); err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	for _, c := range jar.Cookies(mustParse(g.URL)) {
		if c.Name == sessionCookieName {
			cookie = c.Value
		}
	}
	return resp.StatusCode, cookie, nil
}

// withCookie asks for path with nothing but this session cookie.
func (g *gateway) withCookie(t *testing.T, path, cookie string) *http.Response {
	t.Helper()
	return g.newBrowser().get(path, "Cookie", sessionCookieName+"="+cookie)
}

// get requests path as an API client would and returns the response.
func (b *browser) get(path string, headers ...string) *http.Response {
	b.t.Helper()
	resp, _ := b.do(http.MethodGet, path, nil, headers...)
	return resp
}

// Logins with the old password run while the owner resets it, or the
// operator disables the account. Logins wait for the password hasher
// (one hash at a time here) after reading the account, so some have read
// the old credentials when the change commits and create their session
// afterwards. None of the sessions they got may work afterwards.
func TestLoginsRacingACredentialChangeKeepNoSession(t *testing.T) {
	const newPassword = "a brand new sentence for me"
	changes := []struct {
		name string
		// prepare runs before the logins start; change while they run.
		prepare func(g *gateway, owner *browser)
		change  func(t *testing.T, g *gateway, owner *browser)
	}{
		{"password reset", func(g *gateway, owner *browser) {
			resp, body := owner.resetAction("send", "email", testEmail)
			expectStatus(owner.t, resp, body, http.StatusSeeOther)
			resp, body = owner.resetAction("verify", "code", codeFrom(owner.t, g, testEmail))
			expectStatus(owner.t, resp, body, http.StatusSeeOther)
		}, func(t *testing.T, g *gateway, owner *browser) {
			resp, body := owner.resetAction("save", "password", newPassword, "password2", newPassword)
			expectStatus(t, resp, body, http.StatusSeeOther)
		}},
		{"disable", func(*gateway, *browser) {}, func(t *testing.T, g *gateway, _ *browser) {
			resp, err := http.Post(g.Admin+"/wijgate/accounts/disable", "application/json", strings.NewReader(`{"email":"`+testEmail+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("disable: %d", resp.StatusCode)
			}
		}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			g := startGateway(t, "gateway.caddyfile", gatewayParams{})
			g.addAccount(testEmail, testName, testPassword)
			owner := g.newBrowser()
			c.prepare(g, owner)

			const clients = 4
			changed := make(chan struct{})
			var mu sync.Mutex
			var cookies []string
			var wg sync.WaitGroup
			started := make(chan struct{}, clients)
			for range clients {
				wg.Go(func() {
					first := true
					for {
						status, cookie, err := loginOnce(g, testEmail, testPassword)
						if err != nil {
							t.Error(err)
							return
						}
						if status == http.StatusSeeOther {
							mu.Lock()
							cookies = append(cookies, cookie)
							mu.Unlock()
						}
						if first {
							started <- struct{}{}
							first = false
						}
						select {
						case <-changed:
							return
						default:
						}
					}
				})
			}
			// Every client has logged in once and is logging in again.
			for range clients {
				<-started
			}
			c.change(t, g, owner)
			close(changed)
			wg.Wait()

			if len(cookies) < clients {
				t.Fatalf("only %d logins before the change", len(cookies))
			}
			for i, cookie := range cookies {
				if resp := g.withCookie(t, "/declaratie/", cookie); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("session %d of %d made with the old credentials answers %d after the %s", i+1, len(cookies), resp.StatusCode, c.name)
				}
			}
			if status, _, _ := loginOnce(g, testEmail, testPassword); status == http.StatusSeeOther {
				t.Fatal("the old credentials still log in")
			}
		})
	}
}

// A session that somehow outlived its credentials (written by another
// instance, or by a change that forgot to end sessions) is refused by the
// guard and the portal, not trusted because it exists.
func TestSessionOfOldCredentialsIsRefused(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	cookie := b.cookie(sessionCookieName)
	if resp := g.withCookie(t, "/declaratie/", cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh session: %d", resp.StatusCode)
	}
	app := runningApp(t)
	s, err := app.sessions.Lookup(cookie)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.engine.UpdateSession(s.Key, func(s *storage.Session) { s.CredentialVersion++ }); err != nil {
		t.Fatal(err)
	}
	if resp := g.withCookie(t, "/declaratie/", cookie); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("guard: a session of other credentials answers %d, want 401", resp.StatusCode)
	}
	if resp, _ := b.page("/dashboard"); resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Errorf("portal: a session of other credentials opens the dashboard: %d", resp.StatusCode)
	}
}

// Logging in again, as the same or another account, ends the session the
// browser presented: only the newest cookie works.
func TestLoginAgainEndsThePresentedSession(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	g.addAccount("piet@example.nl", "Piet", testPassword)
	works := func(cookie string) bool {
		return g.withCookie(t, "/declaratie/", cookie).StatusCode == http.StatusOK
	}

	// loginAgain posts the login form of a browser already logged in
	// (the login page itself would send it to the dashboard).
	loginAgain := func(b *browser, email string) string {
		b.t.Helper()
		resp, body := b.post("/login", url.Values{"email": {email}, "password": {testPassword}})
		expectStatus(b.t, resp, body, http.StatusSeeOther)
		return b.cookie(sessionCookieName)
	}

	t.Run("login", func(t *testing.T) {
		b := g.newBrowser()
		b.t = t
		b.login(testEmail, testPassword)
		first := b.cookie(sessionCookieName)
		second := loginAgain(b, "piet@example.nl")
		third := loginAgain(b, testEmail)
		for i, c := range []string{first, second} {
			if works(c) {
				t.Errorf("the session of login %d still works after logging in again", i+1)
			}
		}
		if !works(third) {
			t.Fatal("the newest session does not work")
		}
	})
	t.Run("registration", func(t *testing.T) {
		b := g.newBrowser()
		b.t = t
		b.login(testEmail, testPassword)
		before := b.cookie(sessionCookieName)
		const email = "nieuw@example.nl"
		resp, body := b.registerAction("send", "email", email)
		expectStatus(t, resp, body, http.StatusSeeOther)
		resp, body = b.registerAction("verify", "code", codeFrom(t, g, email))
		expectStatus(t, resp, body, http.StatusSeeOther)
		resp, body = b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Nieuw")
		expectStatus(t, resp, body, http.StatusSeeOther)
		if works(before) {
			t.Error("the session from before the registration still works")
		}
		if after := b.cookie(sessionCookieName); after == before || !works(after) {
			t.Error("the new account's session does not work")
		}
	})
}
