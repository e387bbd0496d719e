package caddymodule

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/wijtechniek/wijgate/internal/testport"
)

// nginxProxy is Debian's nginx, run by the test as a process of its own
// from testdata/nginx-forwardauth.conf, in front of the gateway's
// upstream and asking the gateway's forward_auth endpoints.
type nginxProxy struct {
	URL string
	log *lockedBuffer
}

// lockedBuffer collects nginx's error log while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// nginxBinary finds Debian's nginx (in /usr/sbin, which a user's PATH
// may lack), or skips the test when it is not installed.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		t.Skip("nginx is not installed (Debian's nginx package); the forward-auth test runs it")
	}
	return "/usr/sbin/nginx"
}

// startNginx starts nginx on a free loopback port. As root it runs as
// nobody, as it would in production; either way it needs nothing outside
// its own folder.
func startNginx(t *testing.T, bin string, g *gateway) *nginxProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "wijgate-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Getuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	port := testport.Pick(t)
	raw, err := os.ReadFile("../testdata/nginx-forwardauth.conf")
	if err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	err = template.Must(template.New("nginx").Delims("[[", "]]").Parse(string(raw))).Execute(&conf, map[string]any{
		"Dir": dir, "Port": port,
		"Wijgate":  strings.TrimPrefix(g.URL, "http://"),
		"Upstream": strings.TrimPrefix(g.Upstream.srv.URL, "http://"),
	})
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	n := &nginxProxy{URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: new(lockedBuffer)}
	cmd := exec.Command(bin, "-p", dir, "-c", confFile,
		"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+"; error_log stderr;")
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// SIGTERM: the master ends its workers and then itself.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx's log:\n%s", n.log)
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(n.URL, "http://"), time.Second)
		if err == nil {
			c.Close()
			return n
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("nginx ended at start (%v):\n%s", err, n.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s after 10s:\n%s", n.URL, n.log)
		}
	}
}

// forgedIdentity are identity headers a client sends to pass as someone
// else, in several spellings and copies.
var forgedIdentity = []string{
	"X-Wij-User-Id", "u-forged",
	"x-wij-user-id", "u-forged-too",
	"X-Wij-User-Email", "boss@evil.example",
	"X-Wij-Org-Kvk", "99999999",
	"X-Wij-Org-Role", "admin",
	"X-Wij-Apps", "declaratie,open",
	"X-Wij-Assurance", "eh4",
	"X-Wij-Assertion", "forged.token.value",
	"X_Wij_User_Id", "u-underscore",
	"Remote-User", "boss@evil.example",
}

// TestForwardAuthBehindNginx puts real nginx (auth_request) in front of an
// app, asking a real wijgate about every request.
func TestForwardAuthBehindNginx(t *testing.T) {
	bin := nginxBinary(t)
	g := startGateway(t, "forwardauth.caddyfile", gatewayParams{})
	n := startNginx(t, bin, g)
	adminAcct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, adminAcct.ID, "12345678", "Bouwbedrijf Ääk B.V.", "loa3")

	t.Run("a member with the right reaches the app with the right headers", func(t *testing.T) {
		b := g.newBrowser()
		b.login(testEmail, testPassword)
		resp, body := b.page(n.URL+"/declaratie/overzicht?jaar=2026", append([]string{"Cookie", "app=1"}, forgedIdentity...)...)
		expectStatus(t, resp, body, http.StatusOK)
		h := g.Upstream.last(t)
		for name, want := range map[string]string{
			"X-Wij-User-Id":    adminAcct.ID,
			"X-Wij-User-Email": testEmail,
			"X-Wij-User-Name":  "Jan J%C3%A4nssen",
			"X-Wij-Org-Kvk":    "12345678",
			"X-Wij-Org-Name":   "Bouwbedrijf %C3%84%C3%A4k B.V.",
			"X-Wij-Org-Role":   "admin",
			"X-Wij-Apps":       "declaratie,open",
			"X-Wij-Assurance":  "eh3",
			"Remote-User":      testEmail,
			// The app's own cookie passes; wijgate's do not.
			"Cookie": "app=1",
		} {
			if got := h.Values(name); len(got) != 1 || got[0] != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if tok := h.Values("X-Wij-Assertion"); len(tok) != 1 || strings.Count(tok[0], ".") != 2 || tok[0] == "forged.token.value" {
			t.Errorf("X-Wij-Assertion = %q, want the signed token", tok)
		}
		for name := range h {
			if strings.Contains(name, "_") {
				t.Errorf("%s reached the app", name)
			}
		}
	})

	t.Run("a forged header never reaches the app, with or without a session", func(t *testing.T) {
		// An account without an organisation on a route that needs only
		// a session: the organisation's headers are empty in wijgate's
		// answer, and nginx must send none rather than the client's.
		g.addAccount("solo@example.nl", "Solo", testPassword)
		b := g.newBrowser()
		b.login("solo@example.nl", testPassword)
		resp, body := b.page(n.URL+"/open/", forgedIdentity...)
		expectStatus(t, resp, body, http.StatusOK)
		h := g.Upstream.last(t)
		if got := h.Values("X-Wij-User-Email"); len(got) != 1 || got[0] != "solo@example.nl" {
			t.Errorf("X-Wij-User-Email = %q", got)
		}
		for _, name := range []string{"X-Wij-Org-Kvk", "X-Wij-Org-Role", "X-Wij-Apps", "X-Wij-Assurance", "Remote-User"} {
			if got := h.Values(name); len(got) > 0 {
				t.Errorf("%s = %q reached the app", name, got)
			}
		}

		before := g.Upstream.count()
		anonymous := g.newBrowser()
		for _, path := range []string{"/declaratie/", "/open/"} {
			resp, _ := anonymous.page(n.URL+path, forgedIdentity...)
			if resp.StatusCode != http.StatusFound {
				t.Errorf("%s without a session: %d", path, resp.StatusCode)
			}
			resp, _ = anonymous.do(http.MethodGet, n.URL+path, nil, append([]string{"Accept", "application/json"}, forgedIdentity...)...)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a session, API: %d", path, resp.StatusCode)
			}
		}
		if got := g.Upstream.count(); got != before {
			t.Errorf("%d requests without a session reached the app", got-before)
		}
	})

	t.Run("a browser without a session goes to the login page and back", func(t *testing.T) {
		before := g.Upstream.count()
		b := g.newBrowser()
		original := n.URL + "/declaratie/overzicht?jaar=2026"
		resp, body := b.page(original)
		expectStatus(t, resp, body, http.StatusFound)
		want := g.URL + "/login?return=" + url.QueryEscape(original)
		if loc := resp.Header.Get("Location"); loc != want {
			t.Fatalf("Location %q, want %q", loc, want)
		}
		// Logging in there leads back to the app, through nginx.
		resp, body = b.submit(strings.TrimPrefix(want, g.URL), "/login",
			url.Values{"email": {testEmail}, "password": {testPassword}, "return": {original}})
		expectStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != original {
			t.Fatalf("after login: Location %q, want %q", loc, original)
		}
		resp, body = b.page(original)
		expectStatus(t, resp, body, http.StatusOK)
		if got := g.Upstream.count(); got != before+1 {
			t.Errorf("%d requests reached the app, want the one after login", got-before)
		}
	})

	t.Run("an API request without a session gets 401", func(t *testing.T) {
		before := g.Upstream.count()
		b := g.newBrowser()
		resp, _ := b.do(http.MethodGet, n.URL+"/declaratie/api/claims", nil, "Accept", "application/json")
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Fatalf("API without a session: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// A form post is no navigation, even when it accepts HTML: the
		// original method reaches wijgate in X-Forwarded-Method.
		resp, _ = b.do(http.MethodPost, n.URL+"/declaratie/claims", url.Values{"bedrag": {"12"}}, "Accept", "text/html")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("form post without a session: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got := g.Upstream.count(); got != before {
			t.Errorf("%d requests without a session reached the app", got-before)
		}
	})

	t.Run("a member without the right gets 403", func(t *testing.T) {
		app := runningApp(t)
		colleague := g.addAccount("collega@example.nl", "Collega", testPassword)
		tok, _, err := app.orgs.Invite(adminAcct.ID, "12345678", "collega@example.nl", []string{"open"}, app.appNames())
		if err != nil {
			t.Fatal(err)
		}
		acct, err := app.accounts.Account(colleague.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.orgs.Accept(tok, acct); err != nil {
			t.Fatal(err)
		}
		b := g.newBrowser()
		b.login("collega@example.nl", testPassword)
		before := g.Upstream.count()
		for _, headers := range [][]string{{"Accept", "text/html", "Sec-Fetch-Mode", "navigate"}, {"Accept", "application/json"}} {
			resp, _ := b.do(http.MethodGet, n.URL+"/declaratie/", nil, headers...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("member without the right (%s): %d", headers[1], resp.StatusCode)
			}
		}
		if got := g.Upstream.count(); got != before {
			t.Errorf("%d refused requests reached the app", got-before)
		}
		// The right she has lets her through.
		resp, body := b.page(n.URL + "/open/")
		expectStatus(t, resp, body, http.StatusOK)
		if got := g.Upstream.last(t).Get("X-Wij-Apps"); got != "open" {
			t.Errorf("X-Wij-Apps = %q, want open", got)
		}
	})

	t.Run("the return address passes return_hosts", func(t *testing.T) {
		// nginx builds X-Original-URL from the Host the client sent.
		req, err := http.NewRequest(http.MethodGet, n.URL+"/declaratie/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil.example"
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		resp, err := g.newBrowser().client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if loc, want := resp.Header.Get("Location"), g.URL+"/login?return="; loc != want {
			t.Fatalf("Location %q, want %q: the login page would send the person to another site", loc, want)
		}
	})
}
