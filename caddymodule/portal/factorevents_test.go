package portal

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
)

// eventLog keeps the events the portal reports, in order.
type eventLog struct {
	mu     sync.Mutex
	events []observe.Event
}

func (l *eventLog) Record(ev observe.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// take returns the events as "kind outcome reason" and forgets them.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		out = append(out, string(ev.Kind)+" "+ev.Outcome+" "+ev.Reason)
	}
	l.events = nil
	return out
}

// TestSecondFactorEventsAreReported: setting up a factor, the password
// step, a wrong and a right code, and removing the factor each reach the
// event sink (the metrics and the audit stream) once, naming the factor.
func TestSecondFactorEventsAreReported(t *testing.T) {
	t.Parallel()
	events := &eventLog{}
	h := newPortalHarness(t, func(c *Config) {
		c.Factors = &account.Factors{Store: c.Accounts.Store, Key: bytes.Repeat([]byte("f"), 32), Issuer: "Wij Techniek", Now: c.Now}
		c.SecondFactor = account.PolicyOff
		c.Events = events
	})
	h.account("anna@example.nl", "Anna de Vries")
	secret, _ := setUpTOTP(t, h, h.loggedIn("anna@example.nl"))
	if got, want := events.take(), []string{"login ok ", "factor_changed added totp", "factor_changed added recovery_codes"}; !slices.Equal(got, want) {
		t.Fatalf("events of a login and a setup: %q, want %q", got, want)
	}

	h.advance(account.TOTPPeriod * time.Second)
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {"000000"}}), http.StatusUnauthorized, Dutch, "mfa.code.wrong")
	wantRedirect(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}}), "/dashboard")
	if got, want := events.take(), []string{"login second_factor ", "login wrong totp", "login ok totp"}; !slices.Equal(got, want) {
		t.Fatalf("events of a login with a second step: %q, want %q", got, want)
	}

	wantRedirect(t, b.post(securityPath, url.Values{"action": {"remove"}, "factor": {"totp"}, "password": {testPassword}}), securityPath+"?done=removed")
	if got, want := events.take(), []string{"factor_changed removed totp"}; !slices.Equal(got, want) {
		t.Fatalf("events of a removal: %q, want %q", got, want)
	}
}
