package caddymodule

import (
	"net/http"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
)

// TestAssertionOnlyWhereTheRouteAsksForIt checks the default header set:
// a route without the assertion option hands its upstream no signed
// token, and no forged one either; the route with it gets one (which
// TestAssertionVerifiesWithTheExampleVerifier verifies).
func TestAssertionOnlyWhereTheRouteAsksForIt(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf B.V.", "loa3")
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	resp, body := b.page("/declaratie/", contract.Assertion.Header(), "forged.token.value")
	expectStatus(t, resp, body, http.StatusOK)
	got := g.Upstream.last(t)
	if tok := got.Values(contract.Assertion.Header()); len(tok) != 0 {
		t.Errorf("a route without the assertion option sent %s %q", contract.Assertion.Header(), tok)
	}
	if id := got.Get(contract.UserID.Header()); id != acct.ID {
		t.Errorf("%s = %q, want the default headers", contract.UserID.Header(), id)
	}

	resp, body = b.page("/website/", contract.Assertion.Header(), "forged.token.value")
	expectStatus(t, resp, body, http.StatusOK)
	if tok := g.Upstream.last(t).Values(contract.Assertion.Header()); len(tok) != 1 || tok[0] == "forged.token.value" {
		t.Errorf("the route with the assertion option sent %s %q", contract.Assertion.Header(), tok)
	}
}
