package portal

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// TestDeleteAsksTheSecondFactor: an account with a second factor is
// removed only from a session that passed it; a password-only session is
// told to log in again with it, and nothing is removed.
func TestDeleteAsksTheSecondFactor(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyOff)
	anna := h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	secret, _ := setUpTOTP(t, h, b)

	// The session that set the factor up logged in with the password alone.
	form := func() url.Values { return url.Values{"password": {testPassword}, "confirm": {"yes"}} }
	wantPage(t, b.post("/account/delete", form()), http.StatusForbidden, Dutch, "privacy.delete.secondfactor", "mfa.admin.loginagain")
	if _, err := h.accounts.Account(anna.ID); err != nil {
		t.Fatalf("a refused removal removed the account: %v", err)
	}

	h.advance(account.TOTPPeriod * time.Second)
	c := h.browser()
	passwordStep(t, c, "anna@example.nl")
	wantRedirect(t, c.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}}), "/dashboard")
	wantRedirect(t, c.post("/account/delete", form()), "/account/deleted?lang=nl")
	if _, err := h.accounts.Account(anna.ID); err != storage.ErrNotFound {
		t.Fatalf("after a removal with the second factor: %v, want ErrNotFound", err)
	}
}

// TestExportNamesTheFactorsWithoutTheirSecrets: the export lists the
// authenticator app and the recovery codes by kind and date, and holds
// neither the secret, its sealed form, nor a recovery code or its hash.
func TestExportNamesTheFactorsWithoutTheirSecrets(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyOff)
	anna := h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	secret, codes := setUpTOTP(t, h, b)

	rec := b.post("/account/data/export", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("export: %d\n%s", rec.Code, rec.Body)
	}
	var x privacy.Export
	if err := json.Unmarshal(rec.Body.Bytes(), &x); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]privacy.FactorSummary{}
	for _, f := range x.Factors {
		kinds[f.Kind] = f
	}
	if totp, ok := kinds["totp"]; !ok || totp.CreatedAt.IsZero() || totp.LastUsedAt.IsZero() {
		t.Errorf("the export's authenticator app: %+v (factors %+v)", totp, x.Factors)
	}
	if rc, ok := kinds["recovery-codes"]; !ok || !strings.HasPrefix(rc.Name, "10 ") {
		t.Errorf("the export's recovery codes: %+v", rc)
	}

	stored, err := h.accounts.Account(anna.ID)
	if err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	secrets := []string{secret, base64.StdEncoding.EncodeToString(stored.TOTP.SealedSecret)}
	for _, c := range codes {
		secrets = append(secrets, c, strings.ReplaceAll(c, "-", ""))
	}
	for _, h := range stored.RecoveryCodes {
		secrets = append(secrets, base64.StdEncoding.EncodeToString(h))
	}
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(body), strings.ToLower(s)) {
			t.Errorf("the export holds a secret %q", s)
		}
	}
}

// TestTheReverifyNoticeFollowsASecondFactorLogin: the notice that a
// company's verification is due comes after every kind of login, here
// the password and the authenticator code, not only after a password.
func TestTheReverifyNoticeFollowsASecondFactorLogin(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	jan := h.account("jan@example.nl", "Jan Jansen")
	secret, _ := setUpTOTP(t, h, h.loggedIn("jan@example.nl"))
	h.linkOrg(jan.ID, "12345678", "Bouwbedrijf Jansen")
	h.advance(org.DefaultReverifyAfter + time.Hour)

	b := h.browser()
	passwordStep(t, b, "jan@example.nl")
	rec := b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}})
	wantTexts(t, rec, http.StatusOK, Dutch.T("reverify.title"), Dutch.T("reverify.button"))
}
