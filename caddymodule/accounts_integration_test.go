package caddymodule

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var sixDigits = regexp.MustCompile(`\b(\d{6})\b`)

// codeFrom reads the verification code from the next mail to addr.
func codeFrom(t *testing.T, g *gateway, addr string) string {
	t.Helper()
	m := g.SMTP.WaitFor(t, addr, 10*time.Second)
	c := sixDigits.FindStringSubmatch(m.Text)
	if c == nil {
		t.Fatalf("no code in mail %q:\n%s", m.Subject, m.Text)
	}
	return c[1]
}

// registerAction posts one step of the registration form.
func (b *browser) registerAction(action string, fields ...string) (*http.Response, string) {
	b.t.Helper()
	form := url.Values{"action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	if b.cookie("__Host-wijgate_csrf") == "" {
		b.page("/register")
	}
	return b.post("/register", form)
}

func (b *browser) resetAction(action string, fields ...string) (*http.Response, string) {
	b.t.Helper()
	form := url.Values{"action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	if b.cookie("__Host-wijgate_csrf") == "" {
		b.page("/password/forgot")
	}
	return b.post("/password/forgot", form)
}

func expectStatus(t *testing.T, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d\n%s", resp.StatusCode, want, body)
	}
}

func accountEmails(t *testing.T, g *gateway) []string {
	t.Helper()
	resp, err := http.Get(g.Admin + "/wijgate/accounts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []AccountSummary
	if err := jsonDecode(resp, &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		out = append(out, a.Email)
	}
	sort.Strings(out)
	return out
}

func TestRegistrationFollowsTheManual(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	b := g.newBrowser()
	const email = "Test@Wij-Techniek.nl"

	resp, body := b.page("/register?return=/declaratie/")
	expectStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"Verificatiecode verzenden", `autocomplete="email"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("registration page lacks %q", want)
		}
	}
	resp, body = b.registerAction("send", "email", email, "return", "/declaratie/")
	expectStatus(t, resp, body, http.StatusSeeOther)
	_, body = b.page("/register?sent=1")
	for _, want := range []string{"Code verifiëren", "Nieuwe code verzenden", "E-mailadres wijzigen", `autocomplete="one-time-code"`, "test@wij-techniek.nl"} {
		if !strings.Contains(body, want) {
			t.Fatalf("code step lacks %q", want)
		}
	}
	code := codeFrom(t, g, "test@wij-techniek.nl")
	resp, body = b.registerAction("verify", "code", code)
	expectStatus(t, resp, body, http.StatusSeeOther)
	if got := accountEmails(t, g); len(got) != 0 {
		t.Fatalf("an account exists before Maken: %v", got)
	}
	_, body = b.page("/register?verified=1")
	for _, want := range []string{"Maken", "Annuleren", `autocomplete="new-password"`, "Voornaam en achternaam"} {
		if !strings.Contains(body, want) {
			t.Fatalf("details step lacks %q", want)
		}
	}
	resp, body = b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "  Jan   Janssen ")
	expectStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/declaratie/" {
		t.Fatalf("after Maken went to %q, want the return address", loc)
	}
	if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusOK {
		t.Fatalf("not logged in after registration: %d", r.StatusCode)
	}
	if got := g.Upstream.last(t).Get("X-Wij-User-Name"); got != "Jan Janssen" {
		t.Fatalf("name = %q", got)
	}
	if got := accountEmails(t, g); !slices.Equal(got, []string{"test@wij-techniek.nl"}) {
		t.Fatalf("accounts = %v", got)
	}
}

func TestHalfFinishedRegistrationLeavesNoAccount(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	for _, tc := range []struct {
		name  string
		steps func(b *browser)
	}{
		{"stopped after sending", func(b *browser) { b.registerAction("send", "email", "a@example.nl"); codeFrom(t, g, "a@example.nl") }},
		{"stopped after verifying", func(b *browser) {
			b.registerAction("send", "email", "b@example.nl")
			b.registerAction("verify", "code", codeFrom(t, g, "b@example.nl"))
		}},
		{"bad password at Maken", func(b *browser) {
			b.registerAction("send", "email", "c@example.nl")
			b.registerAction("verify", "code", codeFrom(t, g, "c@example.nl"))
			resp, body := b.registerAction("create", "password", "short", "password2", "short", "name", "C")
			expectStatus(t, resp, body, http.StatusBadRequest)
		}},
		{"cancelled", func(b *browser) {
			b.registerAction("send", "email", "d@example.nl")
			b.registerAction("verify", "code", codeFrom(t, g, "d@example.nl"))
			resp, body := b.registerAction("cancel")
			expectStatus(t, resp, body, http.StatusSeeOther)
			if _, body := b.page("/register"); !strings.Contains(body, "Verificatiecode verzenden") {
				t.Fatal("cancel did not start over")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.steps(g.newBrowser())
			if got := accountEmails(t, g); len(got) != 0 {
				t.Fatalf("accounts = %v", got)
			}
		})
	}
}

func TestRegistrationRejectsBadInput(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	b := g.newBrowser()
	const email = "jan@example.nl"
	b.registerAction("send", "email", email)
	b.registerAction("verify", "code", codeFrom(t, g, email))
	for _, tc := range []struct {
		name, password, again, fullName, field, message string
	}{
		{"too short", "elevenchars", "elevenchars", "Jan", "password", "te kort"},
		{"too long", strings.Repeat("a", 129), strings.Repeat("a", 129), "Jan", "password", "te lang"},
		{"common", "qazwsxedcrfv", "qazwsxedcrfv", "Jan", "password", "veel gebruikt"},
		{"contains email", "my name is jan forever", "my name is jan forever", "Jan", "password", "e-mailadres"},
		{"contains the service", "ik werk bij wij techniek", "ik werk bij wij techniek", "Jan", "password", "Wij Techniek"},
		{"mismatch", testPassword, testPassword + "!", "Jan", "password2", "niet gelijk"},
		{"empty name", testPassword, testPassword, "   ", "name", "voor- en achternaam"},
		{"name too long", testPassword, testPassword, strings.Repeat("x", 500), "name", "te lang"},
		{"name with control characters", testPassword, testPassword, "Jan\x07", "name", "voor- en achternaam"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.registerAction("create", "password", tc.password, "password2", tc.again, "name", tc.fullName)
			expectStatus(t, resp, body, http.StatusBadRequest)
			if !strings.Contains(body, `id="f-`+tc.field+`-error"`) || !strings.Contains(body, tc.message) {
				t.Fatalf("no message %q at field %s:\n%s", tc.message, tc.field, body)
			}
			if strings.Contains(body, tc.password) && tc.password != "" && len(tc.password) > 3 {
				t.Fatal("the page echoes the password")
			}
			if got := accountEmails(t, g); len(got) != 0 {
				t.Fatalf("accounts = %v", got)
			}
		})
	}
	t.Run("unknown form field", func(t *testing.T) {
		resp, body := b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Jan", "role", "admin")
		expectStatus(t, resp, body, http.StatusBadRequest)
		if got := accountEmails(t, g); len(got) != 0 {
			t.Fatalf("accounts = %v", got)
		}
	})
	t.Run("invalid email", func(t *testing.T) {
		fresh := g.newBrowser()
		for _, bad := range []string{"", "not-an-email", "a@b", "Jan <jan@example.nl>", strings.Repeat("a", 300) + "@example.nl"} {
			resp, body := fresh.registerAction("send", "email", bad)
			expectStatus(t, resp, body, http.StatusBadRequest)
			if !strings.Contains(body, `id="f-email-error"`) {
				t.Fatalf("%q: no message at the email field", bad)
			}
		}
	})
}

func TestVerificationCodeRules(t *testing.T) {
	clk := useClock(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})

	t.Run("valid for 10 minutes", func(t *testing.T) {
		b := g.newBrowser()
		b.registerAction("send", "email", "early@example.nl")
		code := codeFrom(t, g, "early@example.nl")
		clk.Add(9*time.Minute + 59*time.Second)
		resp, body := b.registerAction("verify", "code", code)
		expectStatus(t, resp, body, http.StatusSeeOther)

		late := g.newBrowser()
		late.registerAction("send", "email", "late@example.nl")
		code = codeFrom(t, g, "late@example.nl")
		clk.Add(10*time.Minute + time.Second)
		resp, body = late.registerAction("verify", "code", code)
		expectStatus(t, resp, body, http.StatusBadRequest)
		if !strings.Contains(body, "verlopen") {
			t.Fatal("no expiry message")
		}
	})
	t.Run("five wrong tries kill the code", func(t *testing.T) {
		clk.Add(11 * time.Minute) // a fresh send-limit window for this client
		b := g.newBrowser()
		b.registerAction("send", "email", "tries@example.nl")
		code := codeFrom(t, g, "tries@example.nl")
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for range 5 {
			resp, body := b.registerAction("verify", "code", wrong)
			expectStatus(t, resp, body, http.StatusBadRequest)
		}
		resp, body := b.registerAction("verify", "code", code)
		expectStatus(t, resp, body, http.StatusBadRequest)
	})
	t.Run("single use", func(t *testing.T) {
		clk.Add(11 * time.Minute) // a fresh send-limit window for this client
		b := g.newBrowser()
		b.registerAction("send", "email", "once@example.nl")
		code := codeFrom(t, g, "once@example.nl")
		b.registerAction("verify", "code", code)
		b.registerAction("change")
		other := g.newBrowser()
		other.registerAction("send", "email", "someone@example.nl")
		codeFrom(t, g, "someone@example.nl")
		// The same code cannot verify the address again in this browser.
		b.registerAction("send", "email", "once@example.nl")
		codeFrom(t, g, "once@example.nl")
		resp, body := b.registerAction("verify", "code", code)
		if resp.StatusCode == http.StatusSeeOther && code != "" {
			// a fresh code replaced the old one; the old one must not work
			t.Fatalf("a used code verified again\n%s", body)
		}
	})
	t.Run("bound to purpose", func(t *testing.T) {
		clk.Add(11 * time.Minute) // a fresh send-limit window for this client
		g.addAccount("purpose@example.nl", "P", testPassword)
		b := g.newBrowser()
		b.resetAction("send", "email", "purpose@example.nl")
		resetCode := codeFrom(t, g, "purpose@example.nl")
		r := g.newBrowser()
		r.registerAction("send", "email", "purpose@example.nl")
		g.SMTP.WaitFor(t, "purpose@example.nl", 10*time.Second) // the "already registered" mail
		resp, body := r.registerAction("verify", "code", resetCode)
		expectStatus(t, resp, body, http.StatusBadRequest)
	})
	t.Run("send limit", func(t *testing.T) {
		clk.Add(11 * time.Minute) // a fresh send-limit window for this client
		b := g.newBrowser()
		b.registerAction("send", "email", "limit@example.nl")
		codeFrom(t, g, "limit@example.nl")
		for range 4 {
			resp, body := b.registerAction("resend")
			expectStatus(t, resp, body, http.StatusSeeOther)
			codeFrom(t, g, "limit@example.nl")
		}
		resp, body := b.registerAction("resend")
		expectStatus(t, resp, body, http.StatusTooManyRequests)
		if resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "te vaak") {
			t.Fatal("no clear limit message")
		}
	})
}

func TestRegistrationOfAnExistingEmail(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount("known@example.nl", "Known", testPassword)

	known, unknown := g.newBrowser(), g.newBrowser()
	kr, kb := known.registerAction("send", "email", "known@example.nl")
	ur, ub := unknown.registerAction("send", "email", "new@example.nl")
	if kr.StatusCode != ur.StatusCode || kb != ub || kr.Header.Get("Location") != ur.Header.Get("Location") {
		t.Fatalf("answers differ: %d %q vs %d %q", kr.StatusCode, kr.Header.Get("Location"), ur.StatusCode, ur.Header.Get("Location"))
	}
	m := g.SMTP.WaitFor(t, "known@example.nl", 10*time.Second)
	if sixDigits.MatchString(m.Text) || !strings.Contains(m.Subject, "al een account") {
		t.Fatalf("known address got %q:\n%s", m.Subject, m.Text)
	}
	if m := g.SMTP.WaitFor(t, "new@example.nl", 10*time.Second); !sixDigits.MatchString(m.Text) {
		t.Fatal("new address got no code")
	}
}

func TestPasswordReset(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	elsewhere := g.newBrowser()
	elsewhere.login(testEmail, testPassword)

	b := g.newBrowser()
	resp, body := b.resetAction("send", "email", testEmail)
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.resetAction("verify", "code", codeFrom(t, g, testEmail))
	expectStatus(t, resp, body, http.StatusSeeOther)
	const newPassword = "a brand new sentence for me"
	resp, body = b.resetAction("save", "password", newPassword, "password2", newPassword)
	expectStatus(t, resp, body, http.StatusSeeOther)
	if _, body = b.page(resp.Header.Get("Location")); !strings.Contains(body, "Wachtwoord gewijzigd") {
		t.Fatal("no confirmation")
	}
	if m := g.SMTP.WaitFor(t, testEmail, 10*time.Second); !strings.Contains(m.Subject, "gewijzigd") {
		t.Fatalf("no password-changed mail, got %q", m.Subject)
	}
	if r, _ := elsewhere.do(http.MethodGet, "/declaratie/", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another session survived the reset: %d", r.StatusCode)
	}
	if r, _ := b.page("/declaratie/"); r.StatusCode != http.StatusFound {
		t.Fatal("the reset logged the person in")
	}
	old := g.newBrowser()
	if r, _ := old.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old password still works: %d", r.StatusCode)
	}
	g.newBrowser().login(testEmail, newPassword)
}

func TestResetAnswersAlikeForUnknownEmails(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	known, unknown := g.newBrowser(), g.newBrowser()
	kr, kb := known.resetAction("send", "email", testEmail)
	ur, ub := unknown.resetAction("send", "email", "nobody@example.nl")
	if kr.StatusCode != ur.StatusCode || kb != ub || kr.Header.Get("Location") != ur.Header.Get("Location") {
		t.Fatalf("answers differ: %d vs %d", kr.StatusCode, ur.StatusCode)
	}
	if m := g.SMTP.WaitFor(t, "nobody@example.nl", 10*time.Second); sixDigits.MatchString(m.Text) {
		t.Fatal("an address without account got a code")
	}
	// Whatever is typed, the unknown address never reaches a new password.
	resp, body := unknown.resetAction("verify", "code", "123456")
	expectStatus(t, resp, body, http.StatusBadRequest)
}

func TestLoginRegulation(t *testing.T) {
	clk := useClock(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	for i := range 4 {
		if r, _ := b.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {"wrong password " + string(rune('a'+i))}}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.StatusCode)
		}
	}
	r, body := b.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {"wrong again"}})
	expectStatus(t, r, body, http.StatusTooManyRequests)
	r, body = b.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}})
	expectStatus(t, r, body, http.StatusTooManyRequests)
	if !strings.Contains(body, "Te veel mislukte pogingen") || r.Header.Get("Retry-After") == "" {
		t.Fatal("no clear lockout message")
	}
	clk.Add(61 * time.Second)
	b.login(testEmail, testPassword)

}

func TestLoginAnswersAlikeForUnknownEmails(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	timed := func(email string) (int, string, time.Duration) {
		b.page("/login")
		start := time.Now()
		r, body := b.post("/login", url.Values{"email": {email}, "password": {"not the password"}})
		return r.StatusCode, strings.ReplaceAll(body, email, "EMAIL"), time.Since(start)
	}
	var known, unknown []time.Duration
	for i := range 4 { // 8 failures from one client stay under the lockout by spreading addresses
		ks, kb, kd := timed(testEmail)
		us, ub, ud := timed("nobody" + string(rune('a'+i)) + "@example.nl")
		if ks != us || kb != ub {
			t.Fatalf("answers differ: %d vs %d", ks, us)
		}
		known, unknown = append(known, kd), append(unknown, ud)
		if i == 1 {
			// Stay under the per-client limit.
			break
		}
	}
	slices.Sort(known)
	slices.Sort(unknown)
	// Unknown emails pay the same password-hashing cost; without it they
	// would answer an order of magnitude faster.
	if unknown[len(unknown)-1]*3 < known[0] {
		t.Fatalf("unknown emails answer much faster: %v vs %v", unknown, known)
	}
}

func TestMailServerDown(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	b := g.newBrowser()
	g.SMTP.Stop()
	start := time.Now()
	resp, body := b.registerAction("send", "email", "down@example.nl")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
	expectStatus(t, resp, body, http.StatusServiceUnavailable)
	if !strings.Contains(body, "niet versturen") || !strings.Contains(body, `value="down@example.nl"`) {
		t.Fatalf("no clear message or the email was lost:\n%s", body)
	}
	g.SMTP.Start()
	resp, body = b.registerAction("send", "email", "down@example.nl")
	expectStatus(t, resp, body, http.StatusSeeOther)
	codeFrom(t, g, "down@example.nl")

	t.Run("refusing server", func(t *testing.T) {
		g.SMTP.SetRefuse(true)
		defer g.SMTP.SetRefuse(false)
		resp, body := b.registerAction("resend")
		expectStatus(t, resp, body, http.StatusServiceUnavailable)
		g.SMTP.SetRefuse(false)
		resp, body = b.registerAction("resend")
		expectStatus(t, resp, body, http.StatusSeeOther)
	})
}

func TestFormsNeedTheirToken(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	for _, path := range []string{"/login", "/register", "/password/forgot", "/logout"} {
		t.Run(path, func(t *testing.T) {
			b := g.newBrowser()
			b.page("/login")
			resp, _ := b.do(http.MethodPost, path, url.Values{"action": {"send"}, "email": {"x@example.nl"}})
			expectStatus(t, resp, "", http.StatusForbidden)
			form := url.Values{"action": {"send"}, "email": {"x@example.nl"}, "csrf": {b.cookie("__Host-wijgate_csrf")}}
			resp, _ = b.do(http.MethodPost, path, form, "Sec-Fetch-Site", "cross-site")
			expectStatus(t, resp, "", http.StatusForbidden)
			resp, _ = b.do(http.MethodPost, path, form, "Origin", "https://evil.example")
			expectStatus(t, resp, "", http.StatusForbidden)
		})
	}
	if n := len(g.SMTP.Messages()); n != 0 {
		t.Fatalf("a forged form sent %d mails", n)
	}
}

// scriptTag is an opening script tag.
var scriptTag = regexp.MustCompile(`<script\b[^>]*>`)

func TestAuthPagesSendSecurityHeaders(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	b := g.newBrowser()
	for _, path := range []string{"/account", "/eherkenning", "/login", "/register", "/password/forgot"} {
		t.Run(path, func(t *testing.T) {
			resp, body := b.page(path)
			expectStatus(t, resp, body, http.StatusOK)
			h := resp.Header
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			for name, want := range map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
			} {
				if h.Get(name) != want {
					t.Errorf("%s = %q, want %q", name, h.Get(name), want)
				}
			}
			// Scripts come from files (src=); an inline one would be blocked.
			for _, tag := range scriptTag.FindAllString(body, -1) {
				if !strings.Contains(tag, " src=") {
					t.Errorf("inline script %s would be blocked by the CSP", tag)
				}
			}
			if strings.Contains(body, " style=") {
				t.Error("inline style would be blocked by the CSP")
			}
		})
	}
}

func TestLanguageSwitch(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	b := g.newBrowser()
	_, body := b.page("/login")
	if !strings.Contains(body, "Aanmelden met uw bestaande account") || !strings.Contains(body, `lang="nl"`) {
		t.Fatal("not Dutch by default")
	}
	_, body = b.page("/login?lang=en")
	if !strings.Contains(body, "Sign in with your existing account") || !strings.Contains(body, `lang="en"`) {
		t.Fatal("no English on request")
	}
	_, body = b.page("/register")
	if !strings.Contains(body, "Send verification code") {
		t.Fatal("the language choice did not stick")
	}
}

func TestDevOutboxPageOnlyWhenConfigured(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	if r, _ := g.newBrowser().page("/dev/mail"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("/dev/mail with SMTP configured: %d", r.StatusCode)
	}
}
