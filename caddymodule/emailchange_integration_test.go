package caddymodule

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// changeEmail posts one step of the email-change form.
func (b *browser) changeEmail(action string, fields ...string) (*http.Response, string) {
	b.t.Helper()
	form := url.Values{"action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	if b.cookie("__Host-wijgate_csrf") == "" {
		b.page("/account/email")
	}
	return b.post("/account/email", form)
}

var undoPath = regexp.MustCompile(`/account/email/undo/[A-Z0-9]+`)

// TestEmailChangeThroughTheServer: a code over real SMTP to the new
// address, the move, the guard handing the app the new address on the
// next request, the other browser's cached session refused, the notice to
// the old address, and a login with the new address only.
func TestEmailChangeThroughTheServer(t *testing.T) {
	const newEmail = "jan.nieuw@example.nl"
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	desk, laptop := g.newBrowser(), g.newBrowser()
	desk.login(testEmail, testPassword)
	laptop.login(testEmail, testPassword)
	for _, b := range []*browser{desk, laptop} {
		for range 2 {
			if resp, _ := b.page("/declaratie/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("a logged-in browser's guarded request: %d", resp.StatusCode)
			}
		}
	}
	if got := g.Upstream.last(t).Get("X-Wij-User-Email"); got != testEmail {
		t.Fatalf("the app got %q before the change", got)
	}

	resp, body := desk.changeEmail("send", "email", newEmail, "password", testPassword)
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = desk.changeEmail("verify", "code", codeFrom(t, g, newEmail))
	expectStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/account/email?changed=1" {
		t.Fatalf("after the code: to %q", loc)
	}

	if resp, _ := desk.page("/declaratie/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the browser that made the change was logged out: %d", resp.StatusCode)
	}
	if got := g.Upstream.last(t).Get("X-Wij-User-Email"); got != newEmail {
		t.Fatalf("the app got %q on the next request, want %q", got, newEmail)
	}
	if resp, _ := laptop.page("/declaratie/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("the other browser's session after the change: %d, want 302 to the login", resp.StatusCode)
	}
	notice := g.SMTP.WaitFor(t, testEmail, 10*time.Second)
	if !strings.Contains(notice.Subject, "gewijzigd") || !strings.Contains(notice.Text, newEmail) || !undoPath.MatchString(notice.Text) {
		t.Fatalf("the notice to the old address: %q\n%s", notice.Subject, notice.Text)
	}
	if r, _ := g.newBrowser().submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login with the old address: %d", r.StatusCode)
	}
	g.newBrowser().login(newEmail, testPassword)
}

// TestEmailChangeToATakenAddressThroughTheServer: a taken address gets
// the same answer and the same next page as a free one; its owner gets a
// warning without a code, the free address a code.
func TestEmailChangeToATakenAddressThroughTheServer(t *testing.T) {
	const owner, free = "piet@example.nl", "vrij@example.nl"
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	g.addAccount(owner, "Piet Pieters", testPassword)
	answer := func(address string) (status int, location, page string) {
		b := g.newBrowser()
		b.login(testEmail, testPassword)
		resp, _ := b.changeEmail("send", "email", address, "password", testPassword)
		_, page = b.page(resp.Header.Get("Location"))
		page = strings.ReplaceAll(csrfField.ReplaceAllString(page, ""), address, "ADDRESS")
		return resp.StatusCode, resp.Header.Get("Location"), page
	}
	takenStatus, takenLocation, takenPage := answer(owner)
	freeStatus, freeLocation, freePage := answer(free)
	if takenStatus != freeStatus || takenLocation != freeLocation || takenPage != freePage {
		t.Fatalf("taken: %d to %q; free: %d to %q; pages equal: %v", takenStatus, takenLocation, freeStatus, freeLocation, takenPage == freePage)
	}
	warning := g.SMTP.WaitFor(t, owner, 10*time.Second)
	if !strings.Contains(warning.Subject, "jouw e-mailadres gebruiken") || sixDigits.MatchString(warning.Text) {
		t.Fatalf("the owner got %q:\n%s", warning.Subject, warning.Text)
	}
	codeFrom(t, g, free)
}

// TestAccountPagesEnterKey checks, as TestEveryFormsEnterKeyDoesItsPrimaryAction
// does for the other pages, what Enter presses on Mijn sessies and at
// each step of E-mailadres wijzigen, and that every form carries its
// token.
func TestAccountPagesEnterKey(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	g.newBrowser().login(testEmail, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	for _, page := range []string{"/account/sessions", "/account/email"} {
		resp, body := b.page(page)
		expectStatus(t, resp, body, http.StatusOK)
		checkEnterKey(t, page, body)
	}
	resp, body := b.changeEmail("send", "email", "nieuw@example.nl", "password", testPassword)
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.page("/account/email?sent=1")
	expectStatus(t, resp, body, http.StatusOK)
	checkEnterKey(t, "/account/email (code step)", body)
}

// TestAccountPagesBadInputNeverAnswers500: bad bytes, overlong values and
// made-up links on Mijn sessies and E-mailadres wijzigen get a 4xx, and
// leave the account and its sessions as they were.
func TestAccountPagesBadInputNeverAnswers500(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	other := g.newBrowser()
	other.login(testEmail, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	const badUTF8 = "\xff\xfe\xfd"
	long := strings.Repeat("a", 5<<10)
	for _, form := range []url.Values{
		{"action": {"end"}, "session": {badUTF8}},
		{"action": {"end"}, "session": {long}},
		{"action": {badUTF8}},
		{"action": {"endothers"}, "session": {"x"}, "extra": {"1"}},
	} {
		if resp, body := b.post("/account/sessions", form); resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("/account/sessions %v: %d\n%s", form, resp.StatusCode, body)
		}
	}
	for _, fields := range [][]string{
		{"send", "email", badUTF8, "password", testPassword},
		{"send", "email", long, "password", testPassword},
		{"send", "email", "nieuw@example.nl", "password", badUTF8},
		{"send", "email", "nieuw@example.nl", "password", long},
		{"verify", "code", badUTF8},
		{badUTF8},
	} {
		if resp, body := b.changeEmail(fields[0], fields[1:]...); resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("/account/email %q: %d\n%s", fields, resp.StatusCode, body)
		}
	}
	for _, path := range []string{"/account/email/undo/" + strings.Repeat("A", 26), "/account/email/undo/%FF%FE", "/account/email/undo/" + long} {
		if resp, body := b.page(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
		if resp, body := b.post(path, url.Values{}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d\n%s", path, resp.StatusCode, body)
		}
	}
	for _, br := range []*browser{b, other} {
		if resp, _ := br.page("/declaratie/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("bad input ended a session: %d", resp.StatusCode)
		}
	}
	if got := accountEmails(t, g); len(got) != 1 || got[0] != testEmail {
		t.Fatalf("accounts after bad input: %v", got)
	}
}
