package caddymodule

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// pressEnter presses Enter in the field with this label and waits for the
// page the form's submission leads to.
func (c *chrome) pressEnter(label string) {
	c.t.Helper()
	sel := inputFor(label)
	c.do(fmt.Sprintf("pressing Enter in %q", label), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.SendKeys(sel, kb.Enter, chromedp.NodeVisible))(ctx, t)
		return err
	}))
}

// TestBrowserEnterKey presses Enter in every field of the forms with more
// than one button (registration and reset, at each step) and of the other
// forms people type in, in Chromium: each time the form's primary action
// must happen, never "E-mailadres wijzigen", "Nieuwe code verzenden" or
// "Annuleren". A press with a field left wrong shows that action's own
// message. Those other buttons, clicked, still do theirs. Four codes are
// sent, within the limit per client address.
func TestBrowserEnterKey(t *testing.T) {
	exe := chromiumPath(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	admin := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, admin.ID, "12345678", "Bouwbedrijf Test B.V.", "loa3")
	c := newChrome(t, g, exe)
	c.next = 100 // after the other browser tests' screenshots
	defer c.finish()

	const (
		email       = "enter@example.nl"
		password    = "zeven blauwe fietsen op de dijk"
		newPassword = "de kraan in de keuken lekt weer"
	)

	// Registration: the email step, the code step (Code verifiëren, not
	// E-mailadres wijzigen), the details step (Maken, not Annuleren).
	c.open("/register")
	c.fill("E-mailadres", email)
	c.pressEnter("E-mailadres")
	v := c.see("enter-register-code")
	c.expect("register email", v.Notice == "We hebben een verificatiecode gestuurd naar "+email+".", "Enter did not send a code: %s, notice %q", v.URL, v.Notice)
	c.code(email) // replaced by the next
	// The other buttons still do their own actions.
	c.fill("Verificatiecode", "123")
	c.click("Nieuwe code verzenden")
	v = c.see("enter-register-resent")
	c.expect("register resend", v.Notice == "We hebben een verificatiecode gestuurd naar "+email+".", "Nieuwe code verzenden: %s, notice %q", v.URL, v.Notice)
	c.fill("Verificatiecode", c.code(email))
	c.pressEnter("Verificatiecode")
	v = c.see("enter-register-verified")
	c.expect("register code", v.Notice == "Je e-mailadres is geverifieerd. Kies nu een wachtwoord.", "Enter did not verify the code: %s, notice %q\n%s", v.URL, v.Notice, v.Text)
	for _, label := range []string{"Nieuw wachtwoord", "Nieuw wachtwoord bevestigen"} {
		c.fill("Nieuw wachtwoord", password)
		c.fill("Nieuw wachtwoord bevestigen", password)
		c.fill("Voornaam en achternaam", "")
		c.pressEnter(label)
		v = c.see("enter-register-" + strings.ReplaceAll(strings.ToLower(label), " ", "-"))
		name := c.field("Voornaam en achternaam")
		c.expect("register "+label, v.path() == "/register" && name.Found && name.Error != "",
			"Enter did not press Maken: at %s, name field %+v\n%s", v.URL, name, v.Text)
	}
	if got := accountEmails(t, g); slices.Contains(got, email) {
		t.Fatalf("an account was made without a name: %v", got)
	}
	c.fill("Nieuw wachtwoord", password)
	c.fill("Nieuw wachtwoord bevestigen", password)
	c.fill("Voornaam en achternaam", "Eva Enter")
	c.pressEnter("Voornaam en achternaam")
	v = c.see("enter-register-made")
	c.expectPage("register name", v, "/dashboard", "Mijn dashboard")
	if got := accountEmails(t, g); !slices.Contains(got, email) {
		t.Fatalf("Enter in the name field made no account: %v", got)
	}
	c.click("Afmelden")

	// Password reset: the same steps and Wachtwoord opslaan; then the
	// other buttons: E-mailadres wijzigen and Annuleren.
	c.open("/password/forgot")
	c.fill("E-mailadres", testEmail)
	c.pressEnter("E-mailadres")
	v = c.see("enter-reset-code")
	c.expect("reset email", v.Notice == "We hebben een verificatiecode gestuurd naar "+testEmail+".", "Enter did not send a code: %s, notice %q", v.URL, v.Notice)
	c.code(testEmail) // replaced by the next
	c.click("E-mailadres wijzigen")
	v = c.see("enter-reset-change")
	c.expect("reset change", v.path() == "/password/forgot" && c.field("E-mailadres").Found && !c.field("Verificatiecode").Found,
		"E-mailadres wijzigen did not lead back to the email step: %s\n%s", v.URL, v.Text)
	c.fill("E-mailadres", testEmail)
	c.pressEnter("E-mailadres")
	c.fill("Verificatiecode", c.code(testEmail))
	c.pressEnter("Verificatiecode")
	v = c.see("enter-reset-verified")
	c.expect("reset code", v.path() == "/password/forgot" && c.field("Nieuw wachtwoord").Found, "Enter did not verify the code: %s\n%s", v.URL, v.Text)
	for _, label := range []string{"Nieuw wachtwoord", "Nieuw wachtwoord bevestigen"} {
		c.fill("Nieuw wachtwoord", newPassword)
		c.fill("Nieuw wachtwoord bevestigen", "iets heel anders dan dat")
		c.pressEnter(label)
		v = c.see("enter-reset-" + strings.ReplaceAll(strings.ToLower(label), " ", "-"))
		c.expect("reset "+label, v.path() == "/password/forgot" && v.Alert != "" && c.field("Nieuw wachtwoord bevestigen").Found,
			"Enter did not press Wachtwoord opslaan: at %s, alert %q\n%s", v.URL, v.Alert, v.Text)
	}
	c.click("Annuleren")
	v = c.see("enter-reset-cancelled")
	c.expectPage("reset cancel", v, "/login", "Aanmelden met uw bestaande account")

	// Login: Enter in either field is Aanmelden; the password is unchanged.
	c.fill("E-mailadres", testEmail)
	c.pressEnter("E-mailadres")
	v = c.see("enter-login-no-password")
	c.expect("login email", v.path() == "/login" && c.field("Wachtwoord").Error != "", "Enter did not press Aanmelden: %s\n%s", v.URL, v.Text)
	c.fill("Wachtwoord", testPassword)
	c.pressEnter("Wachtwoord")
	v = c.see("enter-login")
	c.expectPage("login password", v, "/dashboard", "Mijn dashboard")

	// The admin page's invitation: Enter in the address sends it.
	c.open("/org/12345678")
	c.fill("E-mailadres van je collega", "collega@example.nl")
	c.pressEnter("E-mailadres van je collega")
	v = c.see("enter-invite")
	c.expect("invite", v.path() == "/org/12345678" && v.Notice == "De uitnodiging is verstuurd.", "Enter did not send the invitation: %s, notice %q", v.URL, v.Notice)
	if m := g.SMTP.WaitFor(t, "collega@example.nl", 10*time.Second); !strings.Contains(m.Subject, "Uitnodiging") {
		t.Fatalf("no invitation mail, got %q", m.Subject)
	}
}
