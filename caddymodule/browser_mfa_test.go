package caddymodule

// Browser test of the authenticator-app path in Chromium, on an injected
// clock: an admin without a second factor is sent to the Beveiliging
// page at login, sets up an authenticator app from the QR page (the
// secret read as a person would type it), is shown ten recovery codes,
// signs out, and signs in again with the password and then the code,
// pressing Enter; then the admin page opens. The screenshots are
// numbered from 80.

import (
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
)

func TestBrowserAuthenticatorAppPath(t *testing.T) {
	exe := chromiumPath(t)
	clock := useClock(t)
	g := startGateway(t, "mfa.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf B.V.", "loa3")
	c := newChrome(t, g, exe)
	c.next = 80

	c.open("/login")
	c.fill("E-mailadres", testEmail)
	c.fill("Wachtwoord", testPassword)
	c.click("Aanmelden")
	v := c.see("mfa-required")
	c.expectPage("login without a factor", v, "/account/security", "Beveiliging")
	c.expect("login without a factor", strings.Contains(v.Notice, "Stel eerst een tweede stap in"), "notice %q", v.Notice)

	c.click("Authenticator-app instellen")
	v = c.see("mfa-qr")
	c.expect("setup page", eval[bool](c, `(() => { const q = document.querySelector("svg.qr"); return !!q && q.getBoundingClientRect().width >= 200; })()`),
		"no visible QR code")
	secret := strings.ReplaceAll(eval[string](c, `document.getElementById("totp-secret").innerText`), " ", "")
	c.expect("setup page", len(secret) == 32, "secret %q is not 32 base32 characters", secret)
	code := c.field("Code uit uw authenticator-app")
	c.expect("setup page", code.Autocomplete == "one-time-code", "code field autocomplete %q", code.Autocomplete)
	c.fill("Code uit uw authenticator-app", authenticatorCode(t, secret, clock.Now()))
	c.pressEnter("Code uit uw authenticator-app")
	v = c.see("mfa-recovery-codes")
	c.expect("confirmed", strings.Contains(v.Notice, "Uw authenticator-app is ingesteld"), "notice %q", v.Notice)
	c.expect("confirmed", eval[int](c, `document.querySelectorAll("#recovery-codes li code").length`) == account.RecoveryCodeCount,
		"not %d recovery codes shown", account.RecoveryCodeCount)

	c.open("/dashboard")
	c.click("Afmelden")
	clock.Add(account.TOTPPeriod * time.Second)
	c.open("/login")
	c.fill("E-mailadres", testEmail)
	c.fill("Wachtwoord", testPassword)
	c.click("Aanmelden")
	v = c.see("mfa-step")
	c.expectPage("second step", v, "/login/factor", "Tweede stap: bevestig dat u het bent")
	c.fill("Code uit uw authenticator-app", "000000")
	c.pressEnter("Code uit uw authenticator-app")
	v = c.see("mfa-step-wrong")
	c.expect("wrong code", c.field("Code uit uw authenticator-app").Error != "", "no error at the code field")
	c.fill("Code uit uw authenticator-app", authenticatorCode(t, secret, clock.Now()))
	c.pressEnter("Code uit uw authenticator-app")
	v = c.see("mfa-dashboard")
	c.expectPage("after the code", v, "/dashboard", "Mijn dashboard")
	c.open("/org/12345678")
	v = c.see("mfa-admin")
	c.expect("admin page", strings.HasPrefix(v.H1, "Beheer"), "heading %q, want the admin page", v.H1)
	c.finish()
}
