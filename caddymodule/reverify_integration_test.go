package caddymodule

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// testdata/reverify.caddyfile sets reverify_after 15d and reverify_grace
// 10d: a verification is due after 15 days, the reminders go out then
// (a month before the lapse falls before that) and at day 18, and it
// lapses at day 25. Sessions last 30 days, so the same browsers go on
// across the steps.
const (
	testReverifyAfter = 15 * 24 * time.Hour
	testReverifyGrace = 10 * 24 * time.Hour
	reverifyKvK       = "12345678"
)

// startReverifyGateway starts the server with the test clock and a
// background check that runs every few milliseconds.
func startReverifyGateway(t *testing.T, interval time.Duration) (*gateway, *testClock) {
	t.Helper()
	c := useClock(t)
	reverifyCheckInterval = interval
	t.Cleanup(func() { reverifyCheckInterval = time.Hour })
	return startGateway(t, "reverify.caddyfile", gatewayParams{}), c
}

// throughSimulator takes the person from the simulator's first page to
// the answer for company and scenario, and returns the page they end on.
func (b *browser) throughSimulator(resp *http.Response, body, company, scenario string) (*http.Response, string) {
	b.t.Helper()
	if !strings.Contains(body, "Kies hoe u wilt inloggen") {
		b.t.Fatalf("not at the simulator's choice page: %d\n%s", resp.StatusCode, body)
	}
	s := simSession.FindStringSubmatch(body)[1]
	b.page("/ehsim/login?s=" + url.QueryEscape(s) + "&provider=" + url.QueryEscape("Testleverancier Noord"))
	resp, body = b.do(http.MethodPost, "/ehsim/login", url.Values{"s": {s}, "company": {company}, "scenario": {scenario}, "person": {"jan"}})
	return b.follow(resp, body)
}

// reverifyFromDashboard presses "Opnieuw verifiëren" for kvk on the
// dashboard and answers at the simulator with scenario.
func (b *browser) reverifyFromDashboard(kvk, scenario string) (*http.Response, string) {
	b.t.Helper()
	_, body := b.page("/dashboard")
	if !strings.Contains(body, `name="kvk" value="`+kvk+`"`) || !strings.Contains(body, "Opnieuw verifiëren") {
		b.t.Fatalf("no Opnieuw verifiëren for %s on the dashboard:\n%s", kvk, body)
	}
	resp, body := b.follow(b.post("/eherkenning/start", url.Values{"kvk": {kvk}}))
	return b.throughSimulator(resp, body, kvk, scenario)
}

// reminders are the re-verification reminders sent to addr so far.
func reminders(g *gateway, addr string) []string {
	var out []string
	for _, m := range g.SMTP.Messages() {
		if len(m.To) == 1 && strings.EqualFold(m.To[0], addr) && strings.Contains(m.Subject, "opnieuw met eHerkenning") {
			out = append(out, m.Text)
		}
	}
	return out
}

// auditEntry is the organisation's newest audit entry of an action.
func auditEntry(t *testing.T, kvk, action string) storage.AuditEntry {
	t.Helper()
	for _, e := range auditLog(t, kvk) {
		if e.Action == action {
			return e
		}
	}
	t.Fatalf("no %s in the audit log", action)
	return storage.AuditEntry{}
}

// auditCount counts the organisation's audit entries of an action.
func auditCount(t *testing.T, kvk, action string) int {
	t.Helper()
	n := 0
	for _, e := range auditLog(t, kvk) {
		if e.Action == action {
			n++
		}
	}
	return n
}

// reverifySetup: Anna verifies the company with eHerkenning in the
// simulator and invites Piet, who may use the website.
func reverifySetup(t *testing.T, g *gateway) (admin, piet *browser, annaID string) {
	t.Helper()
	anna := g.addAccount("anna@a.nl", "Anna Admin", testPassword)
	admin = g.newBrowser()
	admin.login("anna@a.nl", testPassword)
	resp, body := admin.startEHerkenning()
	resp, body = admin.throughSimulator(resp, body, reverifyKvK, "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	token := invite(t, g, admin, reverifyKvK, "piet@a.nl", "website")
	piet, _ = colleague(t, g, "piet@a.nl", token)
	resp, body = piet.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	return admin, piet, anna.ID
}

func TestReverificationRemindsLapsesAndRestores(t *testing.T) {
	g, c := startReverifyGateway(t, 5*time.Millisecond)
	admin, piet, annaID := reverifySetup(t, g)
	verified := c.Now()

	// Due: the first reminder, the notice on the dashboard and at login;
	// access holds.
	c.Add(testReverifyAfter + time.Minute)
	m := g.SMTP.WaitFor(t, "anna@a.nl", 10*time.Second)
	if !strings.Contains(m.Subject, "opnieuw met eHerkenning") || !strings.Contains(m.Text, "Je eHerkenning-verificatie van") ||
		!strings.Contains(m.Text, "/dashboard") {
		t.Fatalf("the first reminder:\n%s\n%s", m.Subject, m.Text)
	}
	_, body := admin.page("/dashboard")
	if !strings.Contains(body, "moet worden vernieuwd") || !strings.Contains(body, "Opnieuw verifiëren") {
		t.Fatalf("the dashboard does not ask to verify again:\n%s", body)
	}
	fresh := g.newBrowser()
	resp, body := fresh.submit("/login", "/login", url.Values{"email": {"anna@a.nl"}, "password": {testPassword}})
	expectStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "moet worden vernieuwd") || !strings.Contains(body, `value="`+reverifyKvK+`"`) ||
		!strings.Contains(body, `href="/dashboard"`) {
		t.Fatalf("no notice after login:\n%s", body)
	}
	resp, body = piet.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)

	// A week before the lapse: the second reminder.
	c.Add(3 * 24 * time.Hour)
	waitFor(t, "the second reminder", 10*time.Second, func() bool { return len(reminders(g, "anna@a.nl")) == 2 })

	// The lapse: Piet's access rested on Anna's verification alone.
	c.Add(verified.Add(testReverifyAfter + testReverifyGrace + time.Minute).Sub(c.Now()))
	waitFor(t, "the lapse in the audit log", 10*time.Second, func() bool { return auditCount(t, reverifyKvK, "eh_lapsed") == 1 })
	resp, body = piet.page("/website/")
	expectStatus(t, resp, body, http.StatusForbidden)
	for _, want := range []string{"geldt niet meer", "moet het bedrijf opnieuw verifiëren", "KvK " + reverifyKvK, "Anna Admin"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the guard's page does not say %q:\n%s", want, body)
		}
	}
	_, body = piet.page("/dashboard")
	if !strings.Contains(body, "moet het bedrijf opnieuw verifiëren") {
		t.Fatalf("Piet's dashboard does not say what to do:\n%s", body)
	}
	_, body = admin.page("/dashboard")
	if !strings.Contains(body, "is verlopen") || !strings.Contains(body, "Opnieuw verifiëren") {
		t.Fatalf("Anna's dashboard does not say the verification lapsed:\n%s", body)
	}
	if resp, _ := admin.page("/org/" + reverifyKvK); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Anna still manages the company: %d", resp.StatusCode)
	}

	// Anna verifies again: Piet's access returns, nothing else to do.
	resp, body = admin.reverifyFromDashboard(reverifyKvK, "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	resp, body = piet.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	renewed := auditEntry(t, reverifyKvK, "eh_renewed")
	if renewed.Actor != annaID || !strings.Contains(renewed.Detail, "pseudonym S") {
		t.Fatalf("the renewal's audit entry: %+v", renewed)
	}
	_, body = admin.page("/org/" + reverifyKvK)
	for _, want := range []string{"verifieerde het bedrijf opnieuw met eHerkenning", "is verlopen: niet op tijd vernieuwd", "moet worden vernieuwd"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the audit log on the admin page lacks %q:\n%s", want, body)
		}
	}

	// The new verification's own first reminder is the next one: the
	// checks in between sent nothing, and Piet, no admin, got none.
	c.Add(testReverifyAfter + time.Minute)
	waitFor(t, "the new verification's first reminder", 10*time.Second, func() bool { return len(reminders(g, "anna@a.nl")) == 3 })
	if n := auditCount(t, reverifyKvK, "eh_reminder"); n != 3 {
		t.Fatalf("%d reminders in the audit log, want 3", n)
	}
	if r := reminders(g, "piet@a.nl"); len(r) != 0 {
		t.Fatalf("a member got %d reminders", len(r))
	}
}

// With no check running after the start, the colleague's cached access
// still ends at the lapse: nothing is written then, so the guard's cache
// must not outlive the verification it rests on.
func TestTheGuardEndsAccessAtTheLapseWithoutAnyWrite(t *testing.T) {
	g, c := startReverifyGateway(t, time.Hour)
	_, piet, _ := reverifySetup(t, g)
	c.Add(testReverifyAfter + testReverifyGrace - time.Minute)
	resp, body := piet.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	c.Add(2 * time.Minute)
	resp, body = piet.page("/website/")
	expectStatus(t, resp, body, http.StatusForbidden)
	if !strings.Contains(body, "geldt niet meer") {
		t.Fatalf("no plain page:\n%s", body)
	}
	resp, body = piet.do(http.MethodGet, "/website/", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"reason":"lapsed"`) {
		t.Fatalf("an API client's answer: %d %s", resp.StatusCode, body)
	}
}

func TestNoMachtigingEndsTheAnchorAtOnce(t *testing.T) {
	g, c := startReverifyGateway(t, time.Hour)
	admin, piet, annaID := reverifySetup(t, g)

	// "No machtiging" on an ordinary "Login eHerkenning" names no
	// company: nothing ends.
	resp, body := admin.startEHerkenning()
	resp, body = admin.throughSimulator(resp, body, reverifyKvK, "nomandate")
	expectStatus(t, resp, body, http.StatusForbidden)
	if resp, body = piet.page("/website/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a refusal for no named company ended the anchor: %d\n%s", resp.StatusCode, body)
	}

	c.Add(testReverifyAfter + time.Minute)
	resp, body = admin.reverifyFromDashboard(reverifyKvK, "nomandate")
	expectStatus(t, resp, body, http.StatusForbidden)
	if !strings.Contains(body, "verificatie van dit bedrijf is daarom beëindigd") {
		t.Fatalf("no plain page:\n%s", body)
	}
	resp, body = piet.page("/website/")
	expectStatus(t, resp, body, http.StatusForbidden)
	if !strings.Contains(body, "geldt niet meer") {
		t.Fatalf("the colleague's page:\n%s", body)
	}
	_, body = admin.page("/dashboard")
	if !strings.Contains(body, "geen machtiging (meer)") {
		t.Fatalf("Anna's dashboard does not say the verification ended:\n%s", body)
	}
	if ended := auditEntry(t, reverifyKvK, "eh_ended"); ended.Actor != annaID || ended.Target != annaID {
		t.Fatalf("the audit entry of the end: %+v", ended)
	}
	if _, st, err := runningApp(t).orgs.Verification(reverifyKvK, annaID); err != nil || st != org.AnchorEnded {
		t.Fatalf("the anchor: %v %v", st, err)
	}

	// With the machtiging back, verifying again restores everything.
	resp, body = admin.reverifyFromDashboard(reverifyKvK, "eh3")
	expectStatus(t, resp, body, http.StatusOK)
	resp, body = piet.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
}

// The mail server is down when the first reminder is due: it is sent
// once the server is back, and only once.
func TestAReminderThatFailedIsSentAtTheNextCheck(t *testing.T) {
	g, c := startReverifyGateway(t, 5*time.Millisecond)
	_, _, annaID := reverifySetup(t, g)
	g.SMTP.SetRefuse(true)
	app := runningApp(t)
	before := app.engine.Version(annaID)
	c.Add(testReverifyAfter + time.Minute)
	// Each failed round claims the step and gives it back, two writes
	// that move Anna's version: wait for two such rounds.
	waitFor(t, "two failed rounds", 10*time.Second, func() bool { return app.engine.Version(annaID) >= before+4 })
	if n := auditCount(t, reverifyKvK, "eh_reminder"); n != 0 {
		t.Fatalf("%d reminders recorded while the mail server refused", n)
	}
	g.SMTP.SetRefuse(false)
	waitFor(t, "the reminder after the mail server is back", 10*time.Second, func() bool { return len(reminders(g, "anna@a.nl")) == 1 })
	waitFor(t, "the reminder in the audit log", 10*time.Second, func() bool { return auditCount(t, reverifyKvK, "eh_reminder") == 1 })
	c.Add(time.Hour)
	c.Add(time.Hour)
	if n := len(reminders(g, "anna@a.nl")); n != 1 {
		t.Fatalf("%d reminders", n)
	}
}

// The operator's log names each step of the check: a reminder sent, one
// that could not be, and the lapse.
func TestTheOperatorLogNamesEachStep(t *testing.T) {
	g, c := startReverifyGateway(t, time.Hour)
	_, _, annaID := reverifySetup(t, g)
	app := runningApp(t)
	mailer, err := mail.NewSMTPSender(mail.SMTPConfig{Addr: g.SMTP.Addr(), From: "Wij Techniek <noreply@wij-techniek.nl>", Security: mail.SecurityNone})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	check := func() { app.checkReverify(context.Background(), mailer, zap.New(core)) }
	line := func(msg string) observer.LoggedEntry {
		t.Helper()
		found := logs.FilterMessage(msg).TakeAll()
		if len(found) != 1 || found[0].ContextMap()["kvk"] != reverifyKvK || found[0].ContextMap()["account"] != annaID {
			t.Fatalf("log lines %q: %+v (all: %+v)", msg, found, logs.All())
		}
		return found[0]
	}

	c.Add(testReverifyAfter + time.Minute)
	g.SMTP.SetRefuse(true)
	check()
	if e := line("re-verification reminder not sent; trying again at the next check"); e.Level != zap.ErrorLevel {
		t.Fatalf("a failed reminder logged at %v", e.Level)
	}
	g.SMTP.SetRefuse(false)
	check()
	line("re-verification reminder sent")
	c.Add(testReverifyGrace)
	check()
	if e := line("eHerkenning verification lapsed: not verified again in time"); e.Level != zap.WarnLevel {
		t.Fatalf("the lapse logged at %v", e.Level)
	}
}
