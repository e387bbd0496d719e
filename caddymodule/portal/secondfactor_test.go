package portal

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// newFactorHarness is a portal offering second factors under policy.
func newFactorHarness(t *testing.T, policy account.Policy) *portalHarness {
	t.Helper()
	return newPortalHarness(t, func(c *Config) {
		c.Factors = &account.Factors{Store: c.Accounts.Store, Key: bytes.Repeat([]byte("f"), 32), Issuer: "Wij Techniek", Now: c.Now}
		c.SecondFactor = policy
	})
}

// totpCode is the authenticator code of secret at t.
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := hotp.GenerateCodeCustom(secret, uint64(at.Unix()/account.TOTPPeriod), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	secretPattern = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)</code>`)
	hiddenPattern = regexp.MustCompile(`name="(sealed|expires)" value="([^"]+)"`)
	codesPattern  = regexp.MustCompile(`<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>`)
)

// setUpTOTP sets up an authenticator app on the Beveiliging page of a
// logged-in browser, returning its secret and the recovery codes shown.
func setUpTOTP(t *testing.T, h *portalHarness, b *browser) (string, []string) {
	t.Helper()
	rec := b.post(securityPath, url.Values{"action": {"totp-begin"}})
	wantPage(t, rec, http.StatusOK, Dutch, "mfa.totp.scan", "mfa.totp.manual")
	body := rec.Body.String()
	m := secretPattern.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "<svg class=\"qr\"") {
		t.Fatalf("no QR code or secret on the setup page:\n%s", body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	form := url.Values{"action": {"totp-confirm"}}
	for _, hm := range hiddenPattern.FindAllStringSubmatch(body, -1) {
		form.Set(hm[1], hm[2])
	}
	form.Set("code", totpCode(t, secret, h.now()))
	rec = b.post(securityPath, form)
	wantPage(t, rec, http.StatusOK, Dutch, "mfa.totp.added", "mfa.recovery.once")
	var codes []string
	for _, cm := range codesPattern.FindAllStringSubmatch(rec.Body.String(), -1) {
		codes = append(codes, cm[1])
	}
	if len(codes) != account.RecoveryCodeCount {
		t.Fatalf("%d recovery codes shown, want %d:\n%s", len(codes), account.RecoveryCodeCount, rec.Body)
	}
	return secret, codes
}

// passwordStep logs in with the password and expects the second-factor
// step.
func passwordStep(t *testing.T, b *browser, email string) {
	t.Helper()
	wantRedirect(t, b.post("/login", url.Values{"email": {email}, "password": {testPassword}}), factorStepPath)
	if b.session() != "" {
		t.Fatal("a right password alone gave a session")
	}
}

// sessionAMR is what the browser's session records it passed.
func sessionAMR(t *testing.T, h *portalHarness, b *browser) []string {
	t.Helper()
	s, err := h.sessions.Lookup(b.session())
	if err != nil {
		t.Fatalf("the browser has no live session: %v", err)
	}
	return s.AMR
}

func TestTOTPLoginAsksTheCodeAfterThePassword(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	secret, _ := setUpTOTP(t, h, h.loggedIn("anna@example.nl"))

	// The code that set the app up is spent; the next step's code works.
	h.advance(account.TOTPPeriod * time.Second)
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	rec := b.get(factorStepPath)
	wantPage(t, rec, http.StatusOK, Dutch, "mfa.step.title", "mfa.step.code", "mfa.step.userecovery")
	if !strings.Contains(rec.Body.String(), `autocomplete="one-time-code"`) {
		t.Fatalf("the code field is not a one-time-code field:\n%s", rec.Body)
	}
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {"000000"}}), http.StatusUnauthorized, Dutch, "mfa.code.wrong")
	code := totpCode(t, secret, h.now())
	wantRedirect(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {code}}), "/dashboard")
	if amr := sessionAMR(t, h, b); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("session amr %v, want [pwd otp mfa]", amr)
	}
	// The step is over: it cannot be used again, and the code neither.
	wantRedirect(t, b.get(factorStepPath), "/login?factor=expired&lang=nl")
	other := h.browser()
	passwordStep(t, other, "anna@example.nl")
	wantPage(t, other.post(factorStepPath, url.Values{"action": {"totp"}, "code": {code}}), http.StatusUnauthorized, Dutch, "mfa.code.wrong")
}

func TestSecondFactorStepExpiresAfterFiveMinutes(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	secret, _ := setUpTOTP(t, h, h.loggedIn("anna@example.nl"))
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	h.advance(factorStepLifetime)
	rec := b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}})
	wantRedirect(t, rec, "/login?factor=expired&lang=nl")
	if b.session() != "" {
		t.Fatal("an expired step gave a session")
	}
	wantPage(t, b.get("/login?factor=expired&lang=nl"), http.StatusOK, Dutch, "mfa.step.expired")
}

func TestSecondFactorStepBelongsToTheLatestLogin(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	secret, _ := setUpTOTP(t, h, h.loggedIn("anna@example.nl"))
	h.advance(account.TOTPPeriod * time.Second)
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	first := *b.cookies[flowCookie]
	passwordStep(t, b, "anna@example.nl")

	// The first login's step is gone, in this browser and in any other
	// that copied its cookie.
	stale := h.browser()
	stale.cookies[flowCookie] = &first
	wantRedirect(t, stale.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}}), "/login?factor=expired&lang=nl")
	// A browser without the step's cookie has no step.
	wantRedirect(t, h.browser().get(factorStepPath), "/login?factor=expired&lang=nl")
	wantRedirect(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}}), "/dashboard")
}

func TestWrongSecondFactorsCountInLoginRegulation(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	secret, _ := setUpTOTP(t, h, h.loggedIn("anna@example.nl"))
	h.advance(account.TOTPPeriod * time.Second)
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	for range account.LoginFailureLimit - 1 {
		wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {"000000"}}), http.StatusUnauthorized, Dutch, "mfa.code.wrong")
	}
	// The right password again, from another address, does not clear
	// the account's count of wrong codes.
	elsewhere := func(path string, form url.Values) *httptest.ResponseRecorder {
		r := b.formRequest(path, form)
		r.RemoteAddr = "198.51.100.7:40000"
		return b.do(r)
	}
	wantRedirect(t, elsewhere("/login", url.Values{"email": {"anna@example.nl"}, "password": {testPassword}}), factorStepPath)
	wantPage(t, elsewhere(factorStepPath, url.Values{"action": {"recovery"}, "recovery": {"aaaa-bbbb-cccc"}}), http.StatusTooManyRequests, Dutch, "login.locked")
	// Locked: the right code and the password login wait too.
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}}), http.StatusTooManyRequests, Dutch, "login.locked")
	wantPage(t, h.browser().post("/login", url.Values{"email": {"anna@example.nl"}, "password": {testPassword}}), http.StatusTooManyRequests, Dutch, "login.locked")
	if b.session() != "" {
		t.Fatal("a locked step gave a session")
	}
}

func TestRecoveryCodeLogsInOnce(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	_, codes := setUpTOTP(t, h, h.loggedIn("anna@example.nl"))
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	wantRedirect(t, b.post(factorStepPath, url.Values{"action": {"recovery"}, "recovery": {strings.ToUpper(codes[0])}}), "/dashboard")
	if amr := sessionAMR(t, h, b); !slices.Equal(amr, amrTOTP) {
		t.Fatalf("session amr %v after a recovery code, want %v", amr, amrTOTP)
	}
	wantPage(t, b.get(securityPath), http.StatusOK, Dutch, "mfa.recovery.title")
	if !strings.Contains(b.get(securityPath).Body.String(), "Nog 9 ongebruikte herstelcodes") {
		t.Fatal("the page does not say nine codes are left")
	}
	again := h.browser()
	passwordStep(t, again, "anna@example.nl")
	rec := again.post(factorStepPath, url.Values{"action": {"recovery"}, "recovery": {codes[0]}})
	wantPage(t, rec, http.StatusUnauthorized, Dutch, "mfa.code.wrong")
	if !strings.Contains(rec.Body.String(), "<details open>") {
		t.Fatal("after a wrong recovery code its form is folded away")
	}
}

func TestPasswordResetKeepsFactorsAndDoesNotLogIn(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	anna := h.account("anna@example.nl", "Anna de Vries")
	setUpTOTP(t, h, h.loggedIn("anna@example.nl"))

	b := h.browser()
	b.resetAction("send", "email", "anna@example.nl")
	wantRedirect(t, b.resetAction("verify", "code", h.mail.lastCode(t, "anna@example.nl")), "/password/forgot")
	wantRedirect(t, b.resetAction("save", "password", newTestPassword, "password2", newTestPassword), "/password/done")
	if b.session() != "" {
		t.Fatal("a password reset logged the person in")
	}
	a, err := h.accounts.Account(anna.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.TOTP == nil || len(a.RecoveryCodes) != account.RecoveryCodeCount {
		t.Fatalf("the reset removed factors: totp %v, %d recovery codes", a.TOTP, len(a.RecoveryCodes))
	}
	wantRedirect(t, b.post("/login", url.Values{"email": {"anna@example.nl"}, "password": {newTestPassword}}), factorStepPath)
}

// makeAdmin makes the account an eHerkenning-verified admin and returns
// the organisation's KvK number.
func makeAdmin(h *portalHarness, a storage.Account) string {
	h.linkOrg(a.ID, "12345678", "Bouwbedrijf De Vries")
	return "12345678"
}

func TestAdminWithoutFactorIsSentToSetOneUpAndRefusedAdminActions(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	anna := h.account("anna@example.nl", "Anna de Vries")
	kvk := makeAdmin(h, anna)
	b := h.browser()
	wantRedirect(t, b.post("/login", url.Values{"email": {"anna@example.nl"}, "password": {testPassword}}), securityPath+"?required=1")
	wantPage(t, b.get(securityPath+"?required=1"), http.StatusOK, Dutch, "mfa.security.required", "mfa.totp.begin")
	wantPage(t, b.get("/org/"+kvk), http.StatusForbidden, Dutch, "mfa.admin.setup")
	wantPage(t, b.post("/org/"+kvk+"/invite", url.Values{"email": {"bob@example.nl"}}), http.StatusForbidden, Dutch, "mfa.admin.setup")

	// Set up in this session, which passed only the password: still no
	// admin actions until a login with the factor.
	secret, _ := setUpTOTP(t, h, b)
	wantPage(t, b.post("/org/"+kvk+"/invite", url.Values{"email": {"bob@example.nl"}}), http.StatusForbidden, Dutch, "mfa.admin.relogin")
	h.advance(account.TOTPPeriod * time.Second)
	again := h.browser()
	passwordStep(t, again, "anna@example.nl")
	wantRedirect(t, again.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}}), "/dashboard")
	wantPage(t, again.get("/org/"+kvk), http.StatusOK, Dutch, "orgadmin.title")
}

func TestMemberIsNotAskedForAFactorUnderAdmins(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("bob@example.nl", "Bob Bakker")
	wantRedirect(t, h.browser().post("/login", url.Values{"email": {"bob@example.nl"}, "password": {testPassword}}), "/dashboard")

	everyone := newFactorHarness(t, account.PolicyEveryone)
	everyone.account("bob@example.nl", "Bob Bakker")
	wantRedirect(t, everyone.browser().post("/login", url.Values{"email": {"bob@example.nl"}, "password": {testPassword}}), securityPath+"?required=1")
}

func TestPolicyOffLetsAdminsActWithThePasswordAlone(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyOff)
	anna := h.account("anna@example.nl", "Anna de Vries")
	kvk := makeAdmin(h, anna)
	b := h.browser()
	wantRedirect(t, b.post("/login", url.Values{"email": {"anna@example.nl"}, "password": {testPassword}}), "/dashboard")
	wantPage(t, b.get("/org/"+kvk), http.StatusOK, Dutch, "orgadmin.title")
}

func TestRemovingTheLastFactorIsRefusedWhileRequired(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	anna := h.account("anna@example.nl", "Anna de Vries")
	makeAdmin(h, anna)
	b := h.browser()
	b.post("/login", url.Values{"email": {"anna@example.nl"}, "password": {testPassword}})
	setUpTOTP(t, h, b)
	remove := url.Values{"action": {"remove"}, "factor": {"totp"}, "password": {testPassword}}
	wantPage(t, b.post(securityPath, remove), http.StatusConflict, Dutch, "mfa.remove.last")
	a, err := h.accounts.Account(anna.ID)
	if err != nil || a.TOTP == nil {
		t.Fatalf("the last factor went: %v %v", a.TOTP, err)
	}
}

func TestRemovingAFactorAsksThePasswordAndEndsOtherSessions(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	anna := h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	secret, _ := setUpTOTP(t, h, b)
	h.advance(account.TOTPPeriod * time.Second)
	phone := h.browser()
	passwordStep(t, phone, "anna@example.nl")
	wantRedirect(t, phone.post(factorStepPath, url.Values{"action": {"totp"}, "code": {totpCode(t, secret, h.now())}}), "/dashboard")

	wrong := url.Values{"action": {"remove"}, "factor": {"totp"}, "password": {"not-the-password-1"}}
	wantPage(t, b.post(securityPath, wrong), http.StatusUnauthorized, Dutch, "mfa.password.wrong")
	rec := b.post(securityPath, url.Values{"action": {"remove"}, "factor": {"totp"}, "password": {testPassword}})
	wantRedirect(t, rec, securityPath+"?done=removed")
	wantPage(t, b.get(securityPath+"?done=removed"), http.StatusOK, Dutch, "mfa.security.removed", "mfa.totp.begin")
	if _, err := h.sessions.Lookup(phone.session()); err == nil {
		t.Fatal("the other session outlived the removal of a factor")
	}
	a, err := h.accounts.Account(anna.ID)
	if err != nil || a.TOTP != nil || len(a.RecoveryCodes) != 0 {
		t.Fatalf("after removal: totp %v, %d recovery codes, %v", a.TOTP, len(a.RecoveryCodes), err)
	}
	// Without a factor the password logs in again.
	wantRedirect(t, h.browser().post("/login", url.Values{"email": {"anna@example.nl"}, "password": {testPassword}}), "/dashboard")
}

func TestTOTPSetupRefusesAWrongFirstCodeAndAnExpiredForm(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	anna := h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	body := b.post(securityPath, url.Values{"action": {"totp-begin"}}).Body.String()
	form := url.Values{"action": {"totp-confirm"}, "code": {"000000"}}
	for _, hm := range hiddenPattern.FindAllStringSubmatch(body, -1) {
		form.Set(hm[1], hm[2])
	}
	rec := b.post(securityPath, form)
	wantPage(t, rec, http.StatusBadRequest, Dutch, "mfa.totp.wrong")
	if secretPattern.FindString(rec.Body.String()) == "" {
		t.Fatal("after a wrong first code the QR code and secret are gone")
	}
	h.advance(account.TOTPSetupValidity)
	wantPage(t, b.post(securityPath, form), http.StatusBadRequest, Dutch, "mfa.totp.setupexpired")
	form.Set("sealed", "bm90LXNlYWxlZA")
	wantPage(t, b.post(securityPath, form), http.StatusBadRequest, Dutch, "mfa.totp.setupexpired")
	if a, _ := h.accounts.Account(anna.ID); a.TOTP != nil {
		t.Fatal("a refused setup stored a factor")
	}
}

func TestSecondFactorStepAnswersBadInputClearly(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	h.account("anna@example.nl", "Anna de Vries")
	setUpTOTP(t, h, h.loggedIn("anna@example.nl"))
	b := h.browser()
	passwordStep(t, b, "anna@example.nl")
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {""}}), http.StatusBadRequest, Dutch, "mfa.code.empty")
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {strings.Repeat("1", 21)}}), http.StatusBadRequest, Dutch, "field.toolong")
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {"123456"}, "amr": {"mfa"}}), http.StatusBadRequest, Dutch, "form.unknown")
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"skip"}}), http.StatusConflict, Dutch, "form.outofstep")
	wantPage(t, b.post(factorStepPath, url.Values{"action": {"totp"}, "code": {"123456"}, "csrf": {"forged"}}), http.StatusForbidden, Dutch, "form.expired")
	wantRedirect(t, b.post(factorStepPath, url.Values{"action": {"cancel"}}), "/login")
	wantRedirect(t, b.get(factorStepPath), "/login?factor=expired&lang=nl")
	if b.session() != "" {
		t.Fatal("bad input gave a session")
	}
	// The Beveiliging page likewise.
	h.account("bob@example.nl", "Bob Bakker")
	bob := h.loggedIn("bob@example.nl")
	wantPage(t, bob.post(securityPath, url.Values{"action": {"totp-begin"}, "role": {"admin"}}), http.StatusBadRequest, Dutch, "form.unknown")
	wantPage(t, bob.post(securityPath, url.Values{"action": {"make-admin"}}), http.StatusConflict, Dutch, "form.outofstep")
	wantPage(t, bob.post(securityPath, url.Values{"action": {"totp-confirm"}, "sealed": {"%%%"}, "expires": {"x"}}), http.StatusBadRequest, Dutch, "mfa.totp.setupexpired")
	wantPage(t, bob.post(securityPath, url.Values{"action": {"recovery-new"}}), http.StatusConflict, Dutch, "mfa.recovery.nofactor")
	wantPage(t, bob.post(securityPath, url.Values{"action": {"remove"}, "factor": {"totp"}, "password": {testPassword}}), http.StatusBadRequest, Dutch, "mfa.remove.unknown")
}

// TestFactorRemovalWrongPasswordLocksLikeALogin: the password typed to
// remove a factor is under login regulation: the wrong one that reaches
// the limit locks (429 with Retry-After), also a right one afterwards, and
// the factor stays.
func TestFactorRemovalWrongPasswordLocksLikeALogin(t *testing.T) {
	t.Parallel()
	h := newFactorHarness(t, account.PolicyAdmins)
	anna := h.account("anna@example.nl", "Anna de Vries")
	b := h.loggedIn("anna@example.nl")
	setUpTOTP(t, h, b)
	wrong := url.Values{"action": {"remove"}, "factor": {"totp"}, "password": {"not-the-password-1"}}
	for range account.LoginFailureLimit - 1 {
		wantPage(t, b.post(securityPath, wrong), http.StatusUnauthorized, Dutch, "mfa.password.wrong")
	}
	rec := b.post(securityPath, wrong)
	wantPage(t, rec, http.StatusTooManyRequests, Dutch, "login.locked")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	right := url.Values{"action": {"remove"}, "factor": {"totp"}, "password": {testPassword}}
	wantPage(t, b.post(securityPath, right), http.StatusTooManyRequests, Dutch, "login.locked")
	if a, err := h.accounts.Account(anna.ID); err != nil || a.TOTP == nil {
		t.Fatalf("the factor went during a lockout: %v %v", a.TOTP, err)
	}
}
