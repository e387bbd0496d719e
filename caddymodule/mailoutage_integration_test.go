package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/account"
)

// Presses of "Verificatiecode verzenden" while the mail server is down do
// not use up the address's sends: once the server is back, the next press
// sends a code. Meanwhile the person stays at their step, with what they
// typed, and is offered "Nieuwe code verzenden" there.
func TestFailedSendsDoNotUseUpTheSendLimit(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	const email = "storing@example.nl"
	b := g.newBrowser()

	g.SMTP.Stop()
	for i := range account.CodeSendLimit {
		if i == 2 {
			// A server that answers but refuses is down as well.
			g.SMTP.Start()
			g.SMTP.SetRefuse(true)
		}
		resp, body := b.registerAction("send", "email", email)
		expectStatus(t, resp, body, http.StatusServiceUnavailable)
		if !strings.Contains(body, "niet versturen") || !strings.Contains(body, `value="`+email+`"`) ||
			!strings.Contains(body, "Nieuwe code verzenden") {
			t.Fatalf("press %d: no clear message, the address was lost or no new code offered:\n%s", i+1, body)
		}
	}
	g.SMTP.SetRefuse(false)
	resp, body := b.registerAction("send", "email", email)
	expectStatus(t, resp, body, http.StatusSeeOther)
	codeFrom(t, g, email)

	// At the code step a failed resend keeps the person there.
	g.SMTP.SetRefuse(true)
	resp, body = b.registerAction("resend")
	expectStatus(t, resp, body, http.StatusServiceUnavailable)
	if !strings.Contains(body, "niet versturen") || !strings.Contains(body, `name="code"`) ||
		!strings.Contains(body, "Nieuwe code verzenden") {
		t.Fatalf("a failed resend left the code step:\n%s", body)
	}
	g.SMTP.SetRefuse(false)
	// Four more codes may go out: of the seven presses only the one that
	// reached the server counted.
	for range account.CodeSendLimit - 1 {
		resp, body = b.registerAction("resend")
		expectStatus(t, resp, body, http.StatusSeeOther)
	}
	resp, body = b.registerAction("resend")
	expectStatus(t, resp, body, http.StatusTooManyRequests)
}

// Failed sends have a budget of their own: past it, the person is told to
// try later, with Retry-After, also once the server is back, until the
// window has passed.
func TestFailedSendsHaveABudget(t *testing.T) {
	clk := useClock(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	const email = "hamer@example.nl"
	b := g.newBrowser()
	g.SMTP.SetRefuse(true)
	for range account.CodeSendFailureLimit {
		resp, body := b.registerAction("send", "email", email)
		expectStatus(t, resp, body, http.StatusServiceUnavailable)
	}
	resp, body := b.registerAction("send", "email", email)
	expectStatus(t, resp, body, http.StatusTooManyRequests)
	if !strings.Contains(body, "te vaak mislukt") || !strings.Contains(body, "10 minuten") || resp.Header.Get("Retry-After") != "600" {
		t.Fatalf("no clear answer past the budget of failed sends (Retry-After %q):\n%s", resp.Header.Get("Retry-After"), body)
	}
	if n := len(g.SMTP.Messages()); n != 0 {
		t.Fatalf("%d messages reached a refusing server", n)
	}
	g.SMTP.SetRefuse(false)
	resp, body = b.registerAction("send", "email", email)
	expectStatus(t, resp, body, http.StatusTooManyRequests)
	// The client's budget is spent too: another address waits as well.
	resp, body = g.newBrowser().registerAction("send", "email", "ander@example.nl")
	expectStatus(t, resp, body, http.StatusTooManyRequests)

	clk.Add(account.CodeSendWindow)
	resp, body = b.registerAction("send", "email", email)
	expectStatus(t, resp, body, http.StatusSeeOther)
	codeFrom(t, g, email)
}

// The reset form works the same way while the mail server is down.
func TestFailedResetSendsDoNotUseUpTheSendLimit(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	g.addAccount(testEmail, "Jan", testPassword)
	b := g.newBrowser()
	g.SMTP.SetRefuse(true)
	for i := range account.CodeSendLimit {
		resp, body := b.resetAction("send", "email", testEmail)
		expectStatus(t, resp, body, http.StatusServiceUnavailable)
		if !strings.Contains(body, "niet versturen") || !strings.Contains(body, `value="`+testEmail+`"`) ||
			!strings.Contains(body, "Nieuwe code verzenden") {
			t.Fatalf("press %d: no clear message, the address was lost or no new code offered:\n%s", i+1, body)
		}
	}
	g.SMTP.SetRefuse(false)
	resp, body := b.resetAction("send", "email", testEmail)
	expectStatus(t, resp, body, http.StatusSeeOther)
	codeFrom(t, g, testEmail)
	g.SMTP.SetRefuse(true)
	resp, body = b.resetAction("resend")
	expectStatus(t, resp, body, http.StatusServiceUnavailable)
	if !strings.Contains(body, `name="code"`) || !strings.Contains(body, "Nieuwe code verzenden") {
		t.Fatalf("a failed resend left the code step:\n%s", body)
	}
}

// An invitation whose mail the server did not take is withdrawn at once,
// the admin is told and keeps what they typed; once the server is back
// the same invitation goes out.
func TestInvitationWhileTheMailServerIsDown(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	ab, _ := admin(t, g, "admin@b.nl", "22222222")
	ab.page("/org/22222222")
	g.SMTP.SetRefuse(true)
	resp, body := ab.post("/org/22222222/invite", url.Values{"email": {"piet@b.nl"}, "apps": {"website"}})
	expectStatus(t, resp, body, http.StatusServiceUnavailable)
	if !strings.Contains(body, "niet versturen") || !strings.Contains(body, `value="piet@b.nl"`) {
		t.Fatalf("no clear message or the address was lost:\n%s", body)
	}
	if _, page := ab.page("/org/22222222"); strings.Contains(page, "/withdraw/") {
		t.Fatalf("an invitation nobody received is pending:\n%s", page)
	}
	g.SMTP.SetRefuse(false)
	invite(t, g, ab, "22222222", "piet@b.nl", "website")
}
