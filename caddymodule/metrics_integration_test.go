package caddymodule

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads the admin endpoint's /metrics into series → value, the
// series written as Prometheus writes them: name{label="value",…}.
func (g *gateway) scrape() map[string]float64 {
	g.t.Helper()
	resp, err := http.Get(g.Admin + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			g.t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// expectMoved checks that each series moved by exactly its amount
// between two scrapes.
func expectMoved(t *testing.T, before, after map[string]float64, want map[string]float64) {
	t.Helper()
	for series, delta := range want {
		if got := after[series] - before[series]; got != delta {
			t.Errorf("%s moved by %v, want %v", series, got, delta)
		}
	}
}

// TestMetricsAndAuditStream performs each reported event against a real
// server and checks the counter it moves on the admin endpoint's /metrics
// and its one entry in the audit file routed with a Caddyfile log block.
func TestMetricsAndAuditStream(t *testing.T) {
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	before := g.scrape()

	acct := g.addAccount(testEmail, testName, testPassword)
	anon := g.newBrowser()
	resp, body := anon.do(http.MethodGet, "/website/report", nil)
	expectStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = anon.page("/website/")
	expectStatus(t, resp, body, http.StatusFound)

	b := g.newBrowser()
	resp, body = b.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {"not the password"}})
	expectStatus(t, resp, body, http.StatusUnauthorized)
	b.login(testEmail, testPassword)
	resp, body = b.page("/declaratie/")
	expectStatus(t, resp, body, http.StatusOK)
	// The session and identity are cached now: two more requests read
	// neither from the store.
	cached := g.scrape()
	for range 2 {
		resp, body = b.page("/declaratie/")
		expectStatus(t, resp, body, http.StatusOK)
	}
	expectMoved(t, cached, g.scrape(), map[string]float64{
		`wijgate_cache_lookups_total{cache="session",result="hit"}`:   2,
		`wijgate_cache_lookups_total{cache="session",result="miss"}`:  0,
		`wijgate_cache_lookups_total{cache="identity",result="hit"}`:  2,
		`wijgate_cache_lookups_total{cache="identity",result="miss"}`: 0,
	})
	resp, body = b.do(http.MethodGet, "/website/report", nil)
	expectStatus(t, resp, body, http.StatusForbidden)
	resp, body = b.page("/website/")
	expectStatus(t, resp, body, http.StatusFound)
	resp, body = b.verifyAt("12345678", "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	resp, body = b.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)

	c := g.newBrowser()
	c.login(testEmail, testPassword)
	resp, body = c.verifyAt("12345678", "cancel")
	expectStatus(t, resp, body, http.StatusOK)

	cookie := b.cookie("__Host-wijgate")
	if cookie == "" {
		t.Fatal("no session cookie")
	}
	resp, body = b.post("/logout", url.Values{})
	expectStatus(t, resp, body, http.StatusSeeOther)

	after := g.scrape()
	expectMoved(t, before, after, map[string]float64{
		`wijgate_admin_api_calls_total{result="ok",route="accounts"}`:                     1,
		`wijgate_guard_decisions_total{app="website",outcome="401",reason=""}`:            1,
		`wijgate_guard_decisions_total{app="website",outcome="redirect",reason=""}`:       1,
		`wijgate_guard_decisions_total{app="website",outcome="403",reason="no_org"}`:      1,
		`wijgate_guard_decisions_total{app="website",outcome="redirect",reason="no_org"}`: 1,
		`wijgate_guard_decisions_total{app="website",outcome="through",reason=""}`:        1,
		`wijgate_guard_decisions_total{app="declaratie",outcome="through",reason=""}`:     3,
		`wijgate_logins_total{result="wrong"}`:                                            1,
		`wijgate_logins_total{result="ok"}`:                                               2,
		`wijgate_eherkenning_answers_total{code="",result="ok"}`:                          1,
		`wijgate_eherkenning_answers_total{code="cancelled",result="error"}`:              1,
		`wijgate_organisations_linked_total{how="linked"}`:                                1,
		`wijgate_sessions_ended_total{how="logout"}`:                                      1,
		// Adding the account hashes its password; three logins check one.
		`wijgate_password_hash_queue_wait_seconds_count`:                    4,
		`wijgate_store_operation_seconds_count{operation="create_session"}`: 2,
	})

	// A reload builds the counters anew in the new configuration's
	// registry: no duplicate registration, and they count on.
	g.reload()
	reloaded := g.scrape()
	resp, body = c.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	expectMoved(t, reloaded, g.scrape(), map[string]float64{
		`wijgate_guard_decisions_total{app="website",outcome="through",reason=""}`: 1,
	})

	// Wrong passwords until the lockout starts (the earlier failure from
	// this address counts too), then one attempt during it.
	reloaded = g.scrape()
	d := g.newBrowser()
	wrong := 0
	for resp.StatusCode != http.StatusTooManyRequests {
		if wrong++; wrong > 5 {
			t.Fatal("no lockout after 5 wrong passwords")
		}
		resp, _ = d.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {"still not it"}})
	}
	resp, body = d.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}})
	expectStatus(t, resp, body, http.StatusTooManyRequests)
	final := g.scrape()
	expectMoved(t, reloaded, final, map[string]float64{
		`wijgate_logins_total{result="wrong"}`:  float64(wrong),
		`wijgate_logins_total{result="locked"}`: 1,
		`wijgate_logins_total{result="ok"}`:     0,
	})
	for series := range final {
		if strings.HasPrefix(series, "wijgate_") && (strings.Contains(series, "@") || strings.Contains(series, "12345678")) {
			t.Errorf("a label carries an address or a KvK number: %s", series)
		}
	}

	// The audit stream: each audited event once, with its fields, and
	// never a password or a cookie.
	entries := waitForAuditEntries(t, auditFile, 2+1+wrong+1+1+2+1+1)
	count := map[string]int{}
	for _, e := range entries {
		count[e["event"]+"/"+e["outcome"]]++
		if e["logger"] != "wijgate.audit" {
			t.Errorf("entry on logger %q: %v", e["logger"], e)
		}
		if e["client"] != "127.0.0.1" || e["event"] != "admin_api" && len(e["request_id"]) != 36 {
			t.Errorf("entry without its client address or request ID: %v", e)
		}
		switch e["event"] + "/" + e["outcome"] {
		case "login/ok", "session_ended/logout":
			if e["actor"] != acct.ID {
				t.Errorf("entry without its actor %s: %v", acct.ID, e)
			}
		case "organisation_linked/linked", "eherkenning_answer/ok":
			if e["actor"] != acct.ID || e["organisation"] != "12345678" {
				t.Errorf("entry without its actor or organisation: %v", e)
			}
		case "eherkenning_answer/error":
			if e["reason"] != "cancelled" {
				t.Errorf("eHerkenning error without its code: %v", e)
			}
		}
	}
	for event, want := range map[string]int{
		"admin_api/ok": 1, "login/ok": 2, "login/wrong": 1 + wrong, "login/locked": 1,
		"eherkenning_answer/ok": 1, "eherkenning_answer/error": 1,
		"organisation_linked/linked": 1, "session_ended/logout": 1,
	} {
		if count[event] != want {
			t.Errorf("%d audit entries for %s, want %d", count[event], event, want)
		}
	}
	if len(count) != 8 {
		t.Errorf("unexpected audit entries: %v", count)
	}
	raw, _ := os.ReadFile(auditFile)
	for _, secret := range []string{testPassword, "not the password", "still not it", cookie} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit stream holds %q", secret)
		}
	}
}

// waitForAuditEntries reads the audit file until it holds n entries; the
// file writer may not have written the last ones yet.
func waitForAuditEntries(t *testing.T, path string, n int) []map[string]string {
	t.Helper()
	var entries []map[string]string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		entries = entries[:0]
		for line := range strings.Lines(string(raw)) {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			fields := map[string]string{}
			for k, v := range e {
				if s, ok := v.(string); ok {
					fields[k] = s
				}
			}
			entries = append(entries, fields)
		}
		if len(entries) >= n {
			return entries
		}
	}
	t.Fatalf("the audit file holds %d entries, want %d", len(entries), n)
	return nil
}

// TestCodeFlowSteps: the registration and reset steps, the codes sent and
// a code whose mail the relay did not take move their counters and write
// their audit entries, which never hold the code or the new password.
func TestCodeFlowSteps(t *testing.T) {
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	g.addAccount(testEmail, testName, testPassword)
	before := g.scrape()

	const newcomer = "nieuw@wij-techniek.nl"
	b := g.newBrowser()
	resp, body := b.registerAction("send", "email", newcomer)
	expectStatus(t, resp, body, http.StatusSeeOther)
	registerCode := codeFrom(t, g, newcomer)
	wrongCode := "000000"
	if registerCode == wrongCode {
		wrongCode = "111111"
	}
	resp, body = b.registerAction("verify", "code", wrongCode)
	expectStatus(t, resp, body, http.StatusBadRequest)
	resp, body = b.registerAction("verify", "code", registerCode)
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Nieuw")
	expectStatus(t, resp, body, http.StatusSeeOther)

	g.SMTP.Stop()
	resp, body = g.newBrowser().resetAction("send", "email", testEmail)
	expectStatus(t, resp, body, http.StatusServiceUnavailable)
	g.SMTP.Start()
	r := g.newBrowser()
	resp, body = r.resetAction("send", "email", testEmail)
	expectStatus(t, resp, body, http.StatusSeeOther)
	resetCode := codeFrom(t, g, testEmail)
	resp, body = r.resetAction("verify", "code", resetCode)
	expectStatus(t, resp, body, http.StatusSeeOther)
	const newPassword = "a brand new sentence for me"
	resp, body = r.resetAction("save", "password", newPassword, "password2", newPassword)
	expectStatus(t, resp, body, http.StatusSeeOther)

	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_codes_total{purpose="register",result="sent"}`:          1,
		`wijgate_codes_total{purpose="reset",result="mail_failed"}`:      1,
		`wijgate_codes_total{purpose="reset",result="sent"}`:             1,
		`wijgate_flow_steps_total{flow="register",step="code_wrong"}`:    1,
		`wijgate_flow_steps_total{flow="register",step="code_verified"}`: 1,
		`wijgate_flow_steps_total{flow="register",step="completed"}`:     1,
		`wijgate_flow_steps_total{flow="reset",step="code_verified"}`:    1,
		`wijgate_flow_steps_total{flow="reset",step="completed"}`:        1,
		`wijgate_mail_messages_total{result="unavailable"}`:              1,
	})

	count := map[string]int{}
	for _, e := range waitForAuditEntries(t, auditFile, 9) {
		if e["event"] == "code_sent" || e["event"] == "flow_step" {
			count[e["event"]+"/"+e["reason"]+"/"+e["outcome"]]++
		}
	}
	for event, want := range map[string]int{
		"code_sent/register/sent": 1, "code_sent/reset/mail_failed": 1, "code_sent/reset/sent": 1,
		"flow_step/register/code_wrong": 1, "flow_step/register/code_verified": 1, "flow_step/register/completed": 1,
		"flow_step/reset/code_verified": 1, "flow_step/reset/completed": 1,
	} {
		if count[event] != want {
			t.Errorf("%d audit entries for %s, want %d", count[event], event, want)
		}
	}
	raw, _ := os.ReadFile(auditFile)
	for _, secret := range []string{registerCode, resetCode, newPassword, testPassword, newcomer, testEmail} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit stream holds %q", secret)
		}
	}
}

// TestOrganisationChangesAreCountedAndAudited: an invitation, a change a
// rule refuses and one by someone who is no admin, each counted and on the
// audit stream with actor, subject and organisation.
func TestOrganisationChangesAreCountedAndAudited(t *testing.T) {
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	admin := g.addAccount(testEmail, testName, testPassword)
	other := g.addAccount("piet@example.nl", "Piet", testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	resp, body := b.verifyAt("12345678", "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	before := g.scrape()

	resp, body = b.post("/org/12345678/invite", url.Values{"email": {"collega@example.nl"}, "apps": {"website"}})
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.post("/org/12345678/role/"+admin.ID, url.Values{"role": {"member"}})
	expectStatus(t, resp, body, http.StatusConflict)
	p := g.newBrowser()
	p.login("piet@example.nl", testPassword)
	resp, body = p.post("/org/12345678/remove/"+admin.ID, url.Values{})
	expectStatus(t, resp, body, http.StatusForbidden)

	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_organisation_changes_total{action="invite",result="ok"}`:        1,
		`wijgate_organisation_changes_total{action="role",result="refused"}`:     1,
		`wijgate_organisation_changes_total{action="remove",result="forbidden"}`: 1,
	})
	var changes []map[string]string
	for _, e := range waitForAuditEntries(t, auditFile, 2+1+2+1+3) {
		if e["event"] == "organisation_change" {
			changes = append(changes, e)
		}
	}
	if len(changes) != 3 {
		t.Fatalf("%d organisation_change entries, want 3: %v", len(changes), changes)
	}
	for i, want := range []struct{ action, outcome, actor, subject string }{
		{"invite", "ok", admin.ID, ""}, {"role", "refused", admin.ID, admin.ID}, {"remove", "forbidden", other.ID, admin.ID},
	} {
		e := changes[i]
		if e["reason"] != want.action || e["outcome"] != want.outcome || e["actor"] != want.actor || e["organisation"] != "12345678" ||
			(want.subject != "" && e["subject"] != want.subject) || e["subject"] == "" {
			t.Errorf("entry %d: %v, want %+v", i, e, want)
		}
	}
	raw, _ := os.ReadFile(auditFile)
	if strings.Contains(string(raw), "collega@example.nl") {
		t.Error("the audit stream holds the invitee's address")
	}

	// Verifying the company again renews the verification.
	before = g.scrape()
	resp, body = b.verifyAt("12345678", "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_organisations_linked_total{how="renewed"}`: 1,
		`wijgate_organisations_linked_total{how="linked"}`:  0,
	})
}

// TestSessionsEndedFromTheListAreCountedAndAudited: ending one's other
// sessions is counted and audited with the actor.
func TestSessionsEndedFromTheListAreCountedAndAudited(t *testing.T) {
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	acct := g.addAccount(testEmail, testName, testPassword)
	phone, desk := g.newBrowser(), g.newBrowser()
	phone.login(testEmail, testPassword)
	desk.login(testEmail, testPassword)
	before := g.scrape()
	resp, body := desk.post("/account/sessions", url.Values{"action": {"endothers"}})
	expectStatus(t, resp, body, http.StatusSeeOther)
	expectMoved(t, before, g.scrape(), map[string]float64{`wijgate_sessions_ended_total{how="others"}`: 1})
	entries := waitForAuditEntries(t, auditFile, 4)
	if e := entries[3]; e["event"] != "session_ended" || e["outcome"] != "others" || e["actor"] != acct.ID {
		t.Errorf("last audit entry %v, want session_ended/others by %s", e, acct.ID)
	}
}

// TestAccountDataRightsAreCountedAndAudited: an owner's export and
// removal of their account, each counted and audited with the actor.
func TestAccountDataRightsAreCountedAndAudited(t *testing.T) {
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	acct := g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	before := g.scrape()
	resp, body := b.submit("/account/data", "/account/data/export", url.Values{})
	expectStatus(t, resp, body, http.StatusOK)
	resp, body = b.submit("/account/delete", "/account/delete", url.Values{"password": {testPassword}, "confirm": {"yes"}})
	expectStatus(t, resp, body, http.StatusSeeOther)
	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_account_data_total{how="exported"}`: 1,
		`wijgate_account_data_total{how="deleted"}`:  1,
	})
	entries := waitForAuditEntries(t, auditFile, 4)
	for i, want := range []string{"exported", "deleted"} {
		if e := entries[2+i]; e["event"] != "account_data" || e["outcome"] != want || e["actor"] != acct.ID {
			t.Errorf("audit entry %d: %v, want account_data/%s by %s", 2+i, e, want, acct.ID)
		}
	}
}

// TestGuardRefusalsAndForwardAuthAreCounted: an ambiguous path and a
// WebSocket upgrade the route does not allow count as guard decisions; a
// forward_auth endpoint's answers count in their own metric and leave the
// guard's alone.
func TestGuardRefusalsAndForwardAuthAreCounted(t *testing.T) {
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: filepath.Join(t.TempDir(), "audit.log")})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	session := b.cookie(cookieName)
	before := g.scrape()

	resp, body := g.rawGet("/website/x%2f..%2fy", session, "Accept: application/json")
	expectStatus(t, resp, body, http.StatusBadRequest)
	resp, body = g.rawGet("/declaratie/socket", session, "Connection: Upgrade", "Upgrade: websocket",
		"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
	expectStatus(t, resp, body, http.StatusForbidden)

	resp, body = g.newBrowser().do(http.MethodGet, "/auth/verify/website", nil, "Accept", "application/json")
	expectStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = b.do(http.MethodGet, "/auth/verify/website", nil, "Accept", "application/json")
	expectStatus(t, resp, body, http.StatusForbidden)
	resp, body = b.verifyAt("12345678", "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	resp, body = b.do(http.MethodGet, "/auth/verify/website", nil, "Accept", "application/json")
	expectStatus(t, resp, body, http.StatusOK)

	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_guard_decisions_total{app="website",outcome="400",reason="ambiguous_path"}`: 1,
		`wijgate_guard_decisions_total{app="declaratie",outcome="403",reason="websocket"}`:   1,
		`wijgate_forward_auth_decisions_total{app="website",outcome="401",reason=""}`:        1,
		`wijgate_forward_auth_decisions_total{app="website",outcome="403",reason="no_org"}`:  1,
		`wijgate_forward_auth_decisions_total{app="website",outcome="ok",reason=""}`:         1,
		`wijgate_guard_decisions_total{app="website",outcome="401",reason=""}`:               0,
		`wijgate_guard_decisions_total{app="website",outcome="403",reason="no_org"}`:         0,
		`wijgate_guard_decisions_total{app="website",outcome="through",reason=""}`:           0,
	})
}

// TestActiveSessionsGauge: the gauge is the store's count of live
// sessions, counted again only once the last count is sessionCountEvery
// old; a scrape in between reports the last count.
func TestActiveSessionsGauge(t *testing.T) {
	clock := useClock(t)
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: filepath.Join(t.TempDir(), "audit.log")})
	g.addAccount(testEmail, testName, testPassword)
	active := func() float64 {
		t.Helper()
		v, ok := g.scrape()["wijgate_sessions_active"]
		if !ok {
			t.Fatal("no wijgate_sessions_active on /metrics")
		}
		return v
	}
	if n := active(); n != 0 {
		t.Fatalf("%v active sessions before any login", n)
	}
	b, c := g.newBrowser(), g.newBrowser()
	b.login(testEmail, testPassword)
	c.login(testEmail, testPassword)
	if n := active(); n != 0 {
		t.Fatalf("the store was counted again within %s: %v", sessionCountEvery, n)
	}
	clock.Add(sessionCountEvery)
	if n := active(); n != 2 {
		t.Fatalf("%v active sessions after two logins, want 2", n)
	}
	resp, body := b.post("/logout", url.Values{})
	expectStatus(t, resp, body, http.StatusSeeOther)
	clock.Add(sessionCountEvery)
	if n := active(); n != 1 {
		t.Fatalf("%v active sessions after a logout, want 1", n)
	}
}

// TestEmailChangeIsCountedAndAudited: the request, a wrong code, the move
// and its undoing by the old address, each counted and on the audit
// stream with the account, never an address, the code or the link.
func TestEmailChangeIsCountedAndAudited(t *testing.T) {
	const newEmail = "jan.nieuw@example.nl"
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	acct := g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	before := g.scrape()

	resp, body := b.changeEmail("send", "email", newEmail, "password", testPassword)
	expectStatus(t, resp, body, http.StatusSeeOther)
	code := codeFrom(t, g, newEmail)
	wrongCode := "000000"
	if code == wrongCode {
		wrongCode = "111111"
	}
	resp, body = b.changeEmail("verify", "code", wrongCode)
	expectStatus(t, resp, body, http.StatusBadRequest)
	resp, body = b.changeEmail("verify", "code", code)
	expectStatus(t, resp, body, http.StatusSeeOther)
	undo := undoPath.FindString(g.SMTP.WaitFor(t, testEmail, 10*time.Second).Text)
	if undo == "" {
		t.Fatal("no undo link in the notice to the old address")
	}
	resp, body = g.newBrowser().submit(undo, undo, url.Values{})
	expectStatus(t, resp, body, http.StatusOK)

	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_email_changes_total{step="requested"}`:                      1,
		`wijgate_email_changes_total{step="confirmed"}`:                      1,
		`wijgate_email_changes_total{step="undone"}`:                         1,
		`wijgate_codes_total{purpose="email-change",result="sent"}`:          1,
		`wijgate_flow_steps_total{flow="email-change",step="code_wrong"}`:    1,
		`wijgate_flow_steps_total{flow="email-change",step="code_verified"}`: 0,
	})

	var changes []map[string]string
	wrongCodes := 0
	for _, e := range waitForAuditEntries(t, auditFile, 7) {
		switch {
		case e["event"] == "email_change":
			changes = append(changes, e)
		case e["event"] == "flow_step" && e["reason"] == "email-change" && e["outcome"] == "code_wrong":
			wrongCodes++
		}
	}
	if wrongCodes != 1 {
		t.Errorf("%d audit entries for the wrong code, want 1", wrongCodes)
	}
	if len(changes) != 3 {
		t.Fatalf("%d email_change entries, want 3: %v", len(changes), changes)
	}
	for i, want := range []struct{ outcome, actor, subject string }{
		{"requested", acct.ID, ""}, {"confirmed", acct.ID, ""}, {"undone", "", acct.ID},
	} {
		e := changes[i]
		if e["outcome"] != want.outcome || e["actor"] != want.actor || e["subject"] != want.subject ||
			e["client"] != "127.0.0.1" || len(e["request_id"]) != 36 {
			t.Errorf("entry %d: %v, want %+v", i, e, want)
		}
	}
	raw, _ := os.ReadFile(auditFile)
	for _, secret := range []string{testEmail, newEmail, code, wrongCode, testPassword, strings.TrimPrefix(undo, "/account/email/undo/")} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit stream holds %q", secret)
		}
	}
}

// TestInvitationAcceptIsCountedAndAudited: an invitation taken by another
// address, then by its own, then once more: forbidden, ok, refused, each
// with the account that tried and, once known, the invitation and the
// organisation.
func TestInvitationAcceptIsCountedAndAudited(t *testing.T) {
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	ab, _ := admin(t, g, "admin@a.nl", "11111111")
	token := invite(t, g, ab, "11111111", "piet@a.nl", "website")
	g.addAccount("kees@a.nl", "Kees", testPassword)
	kb := g.newBrowser()
	kb.login("kees@a.nl", testPassword)
	kb.page("/invite/" + token)
	before := g.scrape()
	resp, body := kb.post("/invite/"+token, url.Values{})
	expectStatus(t, resp, body, http.StatusForbidden)
	pb, piet := colleague(t, g, "piet@a.nl", token)
	resp, body = pb.post("/invite/"+token, url.Values{})
	expectStatus(t, resp, body, http.StatusNotFound)

	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_organisation_changes_total{action="accept",result="forbidden"}`: 1,
		`wijgate_organisation_changes_total{action="accept",result="ok"}`:        1,
		`wijgate_organisation_changes_total{action="accept",result="refused"}`:   1,
	})
	var accepts []map[string]string
	for _, e := range waitForAuditEntries(t, auditFile, 10) {
		if e["event"] == "organisation_change" && e["reason"] == "accept" {
			accepts = append(accepts, e)
		}
	}
	if len(accepts) != 3 {
		t.Fatalf("%d accept entries, want 3: %v", len(accepts), accepts)
	}
	if e := accepts[1]; e["outcome"] != "ok" || e["actor"] != piet.ID || e["organisation"] != "11111111" || e["subject"] == "" {
		t.Errorf("the accepted invitation's entry: %v", e)
	}
	if e := accepts[0]; e["outcome"] != "forbidden" || e["actor"] == piet.ID || e["subject"] != accepts[1]["subject"] {
		t.Errorf("the entry of the invitation taken by another address: %v", e)
	}
	if e := accepts[2]; e["outcome"] != "refused" || e["actor"] != piet.ID {
		t.Errorf("the entry of the used invitation: %v", e)
	}
	raw, _ := os.ReadFile(auditFile)
	for _, secret := range []string{token, "piet@a.nl", "kees@a.nl"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit stream holds %q", secret)
		}
	}
}

// TestEHerkenningAnswerInAnotherBrowserIsCountedAndAudited: an answer
// collected by the same account in a browser that did not start the login,
// and one collected without the account's session, link nothing and are
// counted and audited as refused, naming who started the login.
func TestEHerkenningAnswerInAnotherBrowserIsCountedAndAudited(t *testing.T) {
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	g := startGateway(t, "observe.caddyfile", gatewayParams{Extra: auditFile})
	acct := g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	other := g.newBrowser()
	other.login(testEmail, testPassword)
	before := g.scrape()

	resp, body := other.page("/eherkenning/complete?t=" + url.QueryEscape(parkAnswer(t, b, "12345678")))
	expectStatus(t, resp, body, http.StatusForbidden)
	resp, body = g.newBrowser().page("/eherkenning/complete?t=" + url.QueryEscape(parkAnswer(t, b, "12345678")))
	expectStatus(t, resp, body, http.StatusForbidden)

	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_organisations_linked_total{how="refused"}`: 2,
		`wijgate_organisations_linked_total{how="linked"}`:  0,
	})
	var refused []map[string]string
	for _, e := range waitForAuditEntries(t, auditFile, 7) {
		if e["event"] == "organisation_linked" {
			refused = append(refused, e)
		}
	}
	if len(refused) != 2 {
		t.Fatalf("%d organisation_linked entries, want 2: %v", len(refused), refused)
	}
	for i, want := range []struct{ reason, actor string }{{"other_browser", acct.ID}, {"other_account", ""}} {
		e := refused[i]
		if e["outcome"] != "refused" || e["reason"] != want.reason || e["actor"] != want.actor ||
			e["subject"] != acct.ID || e["organisation"] != "12345678" {
			t.Errorf("entry %d: %v, want refused/%s by %q of %s's login", i, e, want.reason, want.actor, acct.ID)
		}
	}
}
