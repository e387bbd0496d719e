package caddymodule

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/mail/mailtest"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// outageGrace is storage_outage_grace in dbdown.caddyfile.
const outageGrace = 5 * time.Second

// The "busy or maintenance" page in each language.
const (
	busyDutch   = "Het is op dit moment erg druk of we zijn bezig met onderhoud."
	busyEnglish = "We are very busy or doing maintenance right now."
)

// privatePostgres starts a PostgreSQL server of the test's own, so that
// stopping it disturbs no other test, and returns it with a new database's
// URL. The URL carries a password (the server trusts every local
// connection and ignores it) so the test can see it kept out of the log.
func privatePostgres(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A test that failed during an outage leaves the server stopped,
		// which Close reports; it removes the folder all the same.
		if err := srv.Close(); err != nil && !t.Failed() {
			t.Error(err)
		}
	})
	u, err := srv.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return srv, strings.Replace(u, "postgres@", "postgres:geheim-wachtwoord@", 1)
}

// answer is one response a test checked: never a 500 or any other
// server error but the 503 of an outage.
func (b *browser) answer(resp *http.Response, body string) (*http.Response, string) {
	b.t.Helper()
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		b.t.Fatalf("%s %s answered %d\n%s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body)
	}
	return resp, body
}

// expectBusyPage checks the 503 "busy or maintenance" page.
func expectBusyPage(t *testing.T, what string, resp *http.Response, body, text string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, text) {
		t.Fatalf("%s: %d, want 503 with %q\n%s", what, resp.StatusCode, text, body)
	}
}

// tryReload posts the same config to the admin API and returns its answer.
func (g *gateway) tryReload() (int, string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.Admin+"/load", bytes.NewReader(g.config))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitFor polls until ok says yes, failing the test after the deadline.
func waitFor(t *testing.T, what string, deadline time.Duration, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(deadline); ; time.Sleep(100 * time.Millisecond) {
		if ok() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, deadline)
		}
	}
}

// TestStartsWhilePostgresIsDown: a server whose database is down at start
// starts anyway: /healthz says it is not ready, every page is the 503
// "busy or maintenance" page, the log says why (without the password);
// when the database is back it serves without a restart, registration
// and the guard included.
func TestStartsWhilePostgresIsDown(t *testing.T) {
	srv, dbURL := privatePostgres(t)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := &gateway{t: t, Upstream: newRecorder(t), SMTP: mailtest.NewServer(t)}
	g.config = g.adapt("dbdown.caddyfile", gatewayParams{Storage: dbURL, Extra: logFile})
	if err := caddy.Load(g.config, true); err != nil {
		t.Fatalf("the server does not start while its database is down: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	waitFor(t, "the server answers", 10*time.Second, func() bool {
		resp, err := http.Get(g.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	b := g.newBrowser()

	resp, body := b.answer(b.do(http.MethodGet, "/healthz", nil))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: waiting for PostgreSQL since ") {
		t.Fatalf("/healthz while waiting: %d %q", resp.StatusCode, body)
	}
	resp, body = b.answer(b.page("/login"))
	expectBusyPage(t, "login page while waiting", resp, body, busyDutch)
	resp, body = b.answer(b.page("/login?lang=en"))
	expectBusyPage(t, "login page in English while waiting", resp, body, busyEnglish)
	// The browser chose English on the page before.
	resp, body = b.answer(b.page("/declaratie/"))
	expectBusyPage(t, "guarded page while waiting", resp, body, busyEnglish)
	resp, body = b.answer(b.do(http.MethodGet, "/declaratie/api", nil, "Accept", "application/json"))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Fatalf("guarded API while waiting: %d %s", resp.StatusCode, body)
	}
	log := readFile(t, logFile)
	if !strings.Contains(log, "PostgreSQL cannot be reached") || strings.Contains(log, "geheim-wachtwoord") {
		t.Fatalf("the log does not say the database cannot be reached, or shows its password:\n%s", log)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready once the database is back", 30*time.Second, func() bool {
		resp, _ := b.answer(b.do(http.MethodGet, "/healthz", nil))
		return resp.StatusCode == http.StatusOK
	})
	resp, body = b.answer(b.registerAction("send", "email", testEmail))
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.answer(b.registerAction("verify", "code", codeFrom(t, g, testEmail)))
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.answer(b.registerAction("create", "password", testPassword, "password2", testPassword, "name", testName))
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.answer(b.page("/declaratie/"))
	expectStatus(t, resp, body, http.StatusOK)
	if got := g.Upstream.last(t).Get("X-Wij-User-Email"); got != testEmail {
		t.Fatalf("the app got X-Wij-User-Email %q", got)
	}
	if log := readFile(t, logFile); strings.Contains(log, "panic") {
		t.Fatalf("a panic in the log:\n%s", log)
	}
}

// TestPostgresOutageWhileServing stops the database under a serving
// server: a logged-in person keeps using the guarded app for the outage
// grace, a login attempt gets the 503 page (nothing half-written), after
// the grace the guarded app answers 503 too, and when the database is back
// everything works again with the same session cookie, without a restart.
// The log says so once.
func TestPostgresOutageWhileServing(t *testing.T) {
	const confirmationGranularity = time.Second
	srv, dbURL := privatePostgres(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := startGateway(t, "dbdown.caddyfile", gatewayParams{Storage: dbURL, Extra: logFile})
	g.addAccount(testEmail, testName, testPassword)
	known := g.newBrowser()
	known.login(testEmail, testPassword)
	cookie := known.cookie("__Host-wijgate")
	// The caches note when the store last vouched for an entry at most
	// once a second (every request passes there), so the grace may start
	// up to a second before the last request the store answered.
	confirmed := time.Now().Add(-confirmationGranularity)
	resp, body := known.answer(known.page("/declaratie/"))
	expectStatus(t, resp, body, http.StatusOK)

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	reached := g.Upstream.count()
	resp, body = known.answer(known.page("/declaratie/"))
	if within := time.Since(confirmed); within >= outageGrace {
		t.Fatalf("stopping the database took %v, longer than the grace", within)
	}
	expectStatus(t, resp, body, http.StatusOK)
	if g.Upstream.count() != reached+1 {
		t.Fatal("the guarded request within the grace did not reach the app")
	}

	other := g.newBrowser()
	resp, body = other.answer(other.submit("/login", "/login", url.Values{"email": {testEmail}, "password": {testPassword}}))
	expectBusyPage(t, "login during the outage", resp, body, busyDutch)
	if other.cookie("__Host-wijgate") != "" {
		t.Fatal("a login during the outage set a session cookie")
	}
	resp, body = other.answer(other.registerAction("send", "email", "nieuw@example.nl"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("registration during the outage: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = other.answer(other.do(http.MethodGet, "/healthz", nil))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/healthz during the outage: %d", resp.StatusCode)
	}

	waitFor(t, "the guarded page refused after the grace", 2*outageGrace, func() bool {
		resp, body = known.answer(known.page("/declaratie/"))
		return resp.StatusCode != http.StatusOK
	})
	expectBusyPage(t, "guarded page after the grace", resp, body, busyDutch)
	if time.Since(confirmed) < outageGrace {
		t.Fatalf("the guarded page was refused %v into a grace of %v", time.Since(confirmed), outageGrace)
	}
	resp, body = known.answer(known.do(http.MethodGet, "/declaratie/api", nil, "Accept", "application/json"))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Fatalf("guarded API after the grace: %d %s", resp.StatusCode, body)
	}
	// Logged in, but the dashboard cannot be read: not the login page.
	resp, body = known.answer(known.page("/dashboard"))
	expectBusyPage(t, "dashboard during the outage", resp, body, busyDutch)
	// A reload now would make a server that serves nobody until the
	// database is back: it is refused and the running configuration stays.
	if status, body := g.tryReload(); status == http.StatusOK || !strings.Contains(body, "the running configuration stays") {
		t.Fatalf("reload during the outage: %d %s", status, body)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the guarded page served again once the database is back", 30*time.Second, func() bool {
		resp, _ := known.answer(known.page("/declaratie/"))
		return resp.StatusCode == http.StatusOK
	})
	if known.cookie("__Host-wijgate") != cookie {
		t.Fatal("the session cookie changed over the outage")
	}
	other.login(testEmail, testPassword)
	resp, body = other.answer(other.page("/declaratie/"))
	expectStatus(t, resp, body, http.StatusOK)

	log := readFile(t, logFile)
	if n := strings.Count(log, "opslag onbereikbaar"); n != 1 {
		t.Errorf("the log says \"opslag onbereikbaar\" %d times, want once per outage\n%s", n, log)
	}
	if strings.Contains(log, "panic") {
		t.Fatalf("a panic in the log:\n%s", log)
	}
}
