package caddymodule

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/internal/tmpfs"
)

const diskFullPassword = "correct horse battery staple"

// TestFullDiskWhileRunning fills the store's filesystem to the last byte
// under a running server: logins and registrations get the 503 page
// instead of a crash or a 500, a known session still passes the guard,
// /healthz says the storage is full, the log says so once, and writing
// resumes by itself when the space is back.
func TestFullDiskWhileRunning(t *testing.T) {
	mnt := tmpfs.Mount(t, 64<<20)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	clk := useClock(t)
	g := startGateway(t, "diskfull.caddyfile", gatewayParams{Storage: filepath.Join(mnt, "store"), Extra: logFile})
	g.addAccount("jan@example.nl", "Jan Janssen", diskFullPassword)
	known := g.newBrowser()
	known.login("jan@example.nl", diskFullPassword)
	if resp, _ := known.page("/declaratie/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("guarded page before the disk filled: %d", resp.StatusCode)
	}

	release := tmpfs.Fill(t, mnt, 0)
	checkStorageFull(t, g, mnt)
	// Past the idle-tracking interval the guard also tries to write the
	// session's last use; that write is refused quietly.
	clk.Add(2 * time.Minute)
	reached := g.Upstream.count()
	if resp, _ := known.page("/declaratie/"); resp.StatusCode != http.StatusOK || g.Upstream.count() != reached+1 {
		t.Fatalf("guarded page of a known session on a full disk: %d", resp.StatusCode)
	}
	other := g.newBrowser()
	resp, body := other.submit("/login", "/login", url.Values{"email": {"jan@example.nl"}, "password": {diskFullPassword}})
	checkRefusedForSpace(t, "login", resp, body)
	resp, body = g.newBrowser().registerAction("send", "email", "nieuw@example.nl")
	checkRefusedForSpace(t, "registration", resp, body)
	if n := strings.Count(readFile(t, logFile), "opslag vol"); n != 1 {
		t.Errorf("the log says \"opslag vol\" %d times, want once", n)
	}

	release()
	other.login("jan@example.nl", diskFullPassword)
	checkHealthy(t, g)
	if !strings.Contains(readFile(t, logFile), "storage writable again") {
		t.Error("the log does not say the storage is writable again")
	}
}

// TestFullDiskAtStart starts the server on a full disk: it starts, with
// the store read-only, reports the full storage, lets a known session
// through, refuses a login with the 503 page, and takes writes again once
// there is space.
func TestFullDiskAtStart(t *testing.T) {
	mnt := tmpfs.Mount(t, 64<<20)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := startGateway(t, "diskfull.caddyfile", gatewayParams{Storage: filepath.Join(mnt, "store"), Extra: logFile})
	g.addAccount("jan@example.nl", "Jan Janssen", diskFullPassword)
	known := g.newBrowser()
	known.login("jan@example.nl", diskFullPassword)
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}

	release := tmpfs.Fill(t, mnt, 0)
	if err := caddy.Load(g.config, true); err != nil {
		t.Fatalf("starting on a full disk: %v", err)
	}
	checkStorageFull(t, g, mnt)
	if resp, _ := known.page("/declaratie/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("guarded page of a known session after starting on a full disk: %d", resp.StatusCode)
	}
	other := g.newBrowser()
	resp, body := other.submit("/login", "/login", url.Values{"email": {"jan@example.nl"}, "password": {diskFullPassword}})
	checkRefusedForSpace(t, "login", resp, body)
	if n := strings.Count(readFile(t, logFile), "opslag vol"); n != 1 {
		t.Errorf("the log says \"opslag vol\" %d times, want once", n)
	}

	release()
	other.login("jan@example.nl", diskFullPassword)
	checkHealthy(t, g)
}

// checkStorageFull waits for /healthz to answer (a server just started
// may drop the first connections) and wants it to report the full storage.
func checkStorageFull(t *testing.T, g *gateway, mnt string) {
	t.Helper()
	status, body := healthz(t, g)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "storage: full ("+mnt) ||
		!strings.Contains(body, "free 0 B, reserve 16.0 MiB") {
		t.Fatalf("/healthz on a full disk: %d\n%s", status, body)
	}
}

func checkHealthy(t *testing.T, g *gateway) {
	t.Helper()
	if status, body := healthz(t, g); status != http.StatusOK || !strings.HasPrefix(body, "ok\nstorage: writable (") {
		t.Fatalf("/healthz with space again: %d\n%s", status, body)
	}
}

func healthz(t *testing.T, g *gateway) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(g.URL + "/healthz")
		if err == nil {
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkRefusedForSpace wants the plain 503 page that asks to try later.
func checkRefusedForSpace(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "probeer het later opnieuw") {
		t.Fatalf("%s on a full disk: %d\n%s", what, resp.StatusCode, body)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
