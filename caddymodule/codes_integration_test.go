package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/account"
)

// A resend gives a fresh code with five fresh tries, but not fresh
// guesses at the address: the eleventh wrong code within the hour is
// refused, with a fresh code too, and so is the right code, until the
// hour is over.
func TestWrongCodesCountPerAddressAcrossResends(t *testing.T) {
	clk := useClock(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	const email = "raden@example.nl"
	b := g.newBrowser()
	wrongFor := func(code string) string {
		if code == "000000" {
			return "111111"
		}
		return "000000"
	}
	guess := func(code string, want int) string {
		t.Helper()
		resp, body := b.registerAction("verify", "code", code)
		expectStatus(t, resp, body, want)
		return body
	}

	resp, body := b.registerAction("send", "email", email)
	expectStatus(t, resp, body, http.StatusSeeOther)
	code := codeFrom(t, g, email)
	for range account.MaxCodeAttempts {
		guess(wrongFor(code), http.StatusBadRequest)
	}
	resp, body = b.registerAction("resend")
	expectStatus(t, resp, body, http.StatusSeeOther)
	code = codeFrom(t, g, email)
	for range account.MaxCodeGuesses - account.MaxCodeAttempts - 1 {
		guess(wrongFor(code), http.StatusBadRequest)
	}
	// The tenth wrong code already says what to do and when.
	body = guess(wrongFor(code), http.StatusTooManyRequests)
	if !strings.Contains(body, "te vaak een verkeerde code") || !strings.Contains(body, "60 minuten") {
		t.Fatalf("no clear message at the tenth wrong code:\n%s", body)
	}

	resp, body = b.registerAction("resend")
	expectStatus(t, resp, body, http.StatusSeeOther)
	code = codeFrom(t, g, email)
	guess(wrongFor(code), http.StatusTooManyRequests)
	resp, body = b.registerAction("verify", "code", code)
	expectStatus(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") != "3600" {
		t.Fatalf("Retry-After %q, want 3600", resp.Header.Get("Retry-After"))
	}
	// Another browser starting afresh for the address waits as well.
	other := g.newBrowser()
	resp, body = other.registerAction("send", "email", email)
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = other.registerAction("verify", "code", codeFrom(t, g, email))
	expectStatus(t, resp, body, http.StatusTooManyRequests)

	// After the hour (and this registration's 30 minutes) the person
	// starts again and gets in.
	clk.Add(account.CodeGuessWindow)
	resp, body = b.registerAction("send", "email", email)
	expectStatus(t, resp, body, http.StatusSeeOther)
	guess(codeFrom(t, g, email), http.StatusSeeOther)
}
