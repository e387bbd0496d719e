package caddymodule

// Browser test of passkeys in Chromium with a virtual authenticator (CTAP2,
// built in, resident keys, user verification): an admin registers a
// passkey on the Beveiliging page, signs out, signs in with it and no
// password, signs out, and passes it as the second factor after the
// password. WebAuthn does not take an IP address as relying party, so
// the browser talks to the gateway as localhost. The screenshots are
// numbered from 90.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// addVirtualAuthenticator gives the browser a platform authenticator that
// keeps discoverable credentials and confirms presence at once; it
// verifies its user (PIN, fingerprint) when verifiesUser.
func (c *chrome) addVirtualAuthenticator(verifiesUser bool) webauthn.AuthenticatorID {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	off := false
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{EnableUI: &off}); err != nil {
		c.t.Fatalf("enabling WebAuthn emulation: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
		Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: verifiesUser,
		IsUserVerified: verifiesUser, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		c.t.Fatalf("adding a virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

// credentials counts the passkeys the virtual authenticator holds.
func (c *chrome) credentials(id webauthn.AuthenticatorID) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		c.t.Fatal(err)
	}
	return len(res.Credentials)
}

// presence says whether the virtual authenticator confirms the user's
// presence by itself; without it, a request waits.
func (c *chrome) presence(id webauthn.AuthenticatorID, on bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, webauthn.SetAutomaticPresenceSimulation, webauthn.SetAutomaticPresenceSimulationParams{AuthenticatorID: id, Enabled: on}); err != nil {
		c.t.Fatal(err)
	}
}

// expectAMR checks what the browser's session records it passed.
func (c *chrome) expectAMR(step string, want ...string) {
	c.t.Helper()
	ck := c.sessionCookie()
	c.expect(step, ck != nil, "no session cookie")
	s, err := runningApp(c.t).sessions.Lookup(ck.Value)
	c.expect(step, err == nil && slices.Equal(s.AMR, want), "session amr %v (%v), want %v", s.AMR, err, want)
}

func TestBrowserPasskeyPath(t *testing.T) {
	exe := chromiumPath(t)
	g := startGateway(t, "mfa.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf B.V.", "loa3")
	g.URL = strings.Replace(g.URL, "127.0.0.1", "localhost", 1)
	c := newChrome(t, g, exe)
	c.next = 90
	authenticator := c.addVirtualAuthenticator(true)

	c.open("/login")
	c.expect("login page", c.field("E-mailadres").Autocomplete == "username webauthn", "email autocomplete %q", c.field("E-mailadres").Autocomplete)
	c.fill("E-mailadres", testEmail)
	c.fill("Wachtwoord", testPassword)
	c.click("Aanmelden")
	v := c.see("passkey-required")
	c.expectPage("login without a factor", v, "/account/security", "Beveiliging")

	c.fill("Naam van de nieuwe passkey", "Laptop")
	c.click("Passkey toevoegen")
	c.settleOn("/account/security")
	v = c.see("passkey-added")
	c.expect("registered", strings.Contains(v.Notice, "Uw passkey is toegevoegd"), "notice %q, alert %q", v.Notice, v.Alert)
	c.expect("registered", strings.Contains(v.Text, "Laptop"), "the passkey is not listed")
	c.expect("registered", c.credentials(authenticator) == 1, "the authenticator holds %d credentials", c.credentials(authenticator))

	// Passwordless, through the email field's autofill: the virtual
	// authenticator answers the login page's conditional request at once,
	// as a person picking the passkey there does.
	c.open("/dashboard")
	c.click("Afmelden")
	c.settleOn("/dashboard")
	v = c.see("passkey-signed-in")
	c.expectPage("passwordless login", v, "/dashboard", "Mijn dashboard")
	c.expectAMR("passwordless login", "hwk", "user", "mfa")
	c.open("/org/12345678")
	v = c.see("passkey-admin")
	c.expect("admin after a passkey", strings.HasPrefix(v.H1, "Beheer"), "heading %q", v.H1)

	// As the second factor after the password: with presence held back,
	// the login page's autofill offer waits while the password is typed.
	c.presence(authenticator, false)
	c.open("/dashboard")
	c.click("Afmelden")
	c.fill("E-mailadres", testEmail)
	c.fill("Wachtwoord", testPassword)
	c.click("Aanmelden")
	v = c.see("passkey-step")
	c.expectPage("second step", v, "/login/factor", "Tweede stap: bevestig dat u het bent")
	c.presence(authenticator, true)
	c.click("Bevestigen met passkey")
	c.settleOn("/dashboard")
	v = c.see("passkey-second-factor")
	c.expectPage("after the passkey step", v, "/dashboard", "Mijn dashboard")
	c.expectAMR("password and passkey", "pwd", "hwk", "mfa")
	c.open("/org/12345678")
	v = c.see("passkey-step-admin")
	c.expect("admin after password and passkey", strings.HasPrefix(v.H1, "Beheer"), "heading %q", v.H1)
	c.finish()
}

// TestBrowserPasskeyWithoutUserVerificationIsRefused: a passkey whose
// device did not verify its user (no PIN or fingerprint) is not added.
func TestBrowserPasskeyWithoutUserVerificationIsRefused(t *testing.T) {
	exe := chromiumPath(t)
	g := startGateway(t, "mfa.caddyfile", gatewayParams{})
	g.addAccount(testEmail, testName, testPassword)
	g.URL = strings.Replace(g.URL, "127.0.0.1", "localhost", 1)
	c := newChrome(t, g, exe)
	c.next = 98
	c.addVirtualAuthenticator(false)
	c.open("/login")
	c.fill("E-mailadres", testEmail)
	c.fill("Wachtwoord", testPassword)
	c.click("Aanmelden")
	c.open("/account/security")
	c.fill("Naam van de nieuwe passkey", "Sleutel zonder pincode")
	c.do("adding the passkey", chromedp.Click(`//button[normalize-space()="Passkey toevoegen"]`, chromedp.NodeVisible))
	refused := `(() => { const e = document.querySelector("[data-passkey-error]");
		return location.search.includes("done=passkey") || document.querySelector(".alert") !== null || (!!e && !e.hidden); })()`
	for deadline := time.Now().Add(stepTimeout); !eval[bool](c, refused); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("no refusal shown on %s", c.location())
		}
	}
	v := c.see("passkey-unverified")
	c.expect("unverified passkey", v.query("done") == "" && !strings.Contains(v.Text, "Sleutel zonder pincode ·"), "the passkey was added (%s)", v.URL)
	acct, err := runningApp(t).accounts.AccountByEmail(testEmail)
	c.expect("unverified passkey", err == nil && len(acct.Passkeys) == 0, "passkeys stored: %d (%v)", len(acct.Passkeys), err)
	c.finish()
}
