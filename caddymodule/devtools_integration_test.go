package caddymodule

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// elsewhere is a client on another machine (TEST-NET-1), as the trusted
// proxy on loopback reports it. Nothing is ever sent to this address.
const elsewhere = "192.0.2.1"

var outboxLink = regexp.MustCompile(`href="(/dev/mail/[^"]+)"`)

// devToolPages are the development outbox (a message and the list) and
// simulator pages of a devtools.caddyfile gateway, the outbox holding one
// registration code.
func devToolPages(t *testing.T, g *gateway) []string {
	t.Helper()
	b := g.newBrowser()
	if resp, body := b.registerAction("send", "email", "jan@example.nl"); resp.StatusCode >= 400 {
		t.Fatalf("sending a code: %d\n%s", resp.StatusCode, body)
	}
	resp, body := b.page("/dev/mail")
	m := outboxLink.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("the outbox from this machine: %d, no message link\n%s", resp.StatusCode, body)
	}
	return []string{"/dev/mail", m[1], "/ehsim/metadata", "/ehsim/static/sim.css"}
}

// TestDevToolsRefuseOtherMachines: the outbox shows every code and
// invitation link and the simulator makes anyone an admin, so by default
// both answer only clients on this machine, judged by the client address
// Caddy determined (trusted proxies honoured), and say so in plain words.
func TestDevToolsRefuseOtherMachines(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, "devtools.caddyfile", gatewayParams{Storage: dir + "/store"})
	b := g.newBrowser()
	for _, path := range devToolPages(t, g) {
		if resp, body := b.page(path); resp.StatusCode != http.StatusOK {
			t.Errorf("%s from this machine: %d\n%s", path, resp.StatusCode, body)
		}
		resp, body := b.page(path, "X-Forwarded-For", elsewhere)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s from %s: %d, want 403", path, elsewhere, resp.StatusCode)
		}
		if strings.Contains(body, "jan@example.nl") || strings.Contains(body, "EntityDescriptor") {
			t.Errorf("%s from %s showed its content:\n%s", path, elsewhere, body)
		}
		if !strings.Contains(body, "alleen te") || !strings.Contains(body, "http://localhost") {
			t.Errorf("%s from %s: no plain Dutch reason:\n%s", path, elsewhere, body)
		}
	}
	if _, body := b.page("/dev/mail?lang=en", "X-Forwarded-For", elsewhere); !strings.Contains(body, "can only be read on the computer wijgate runs on") {
		t.Errorf("no English reason:\n%s", body)
	}
	if _, body := b.page("/ehsim/metadata", "X-Forwarded-For", elsewhere); !strings.Contains(body, "can only be used on the computer wijgate runs on") {
		t.Errorf("no English reason from the simulator:\n%s", body)
	}

	// The operator was told once, at start, that both are on and for
	// whom; and sees each refusal.
	entries := readLog(t, dir+"/store-caddy.log")
	for _, what := range []string{"development mail outbox is on", "eHerkenning simulator is on"} {
		var n int
		for _, e := range entries {
			if strings.Contains(e.Msg, what) {
				n++
				if e.Level != "warn" || !strings.Contains(e.Msg, "loopback clients only") {
					t.Errorf("start-up note %q at %s", e.Msg, e.Level)
				}
			}
		}
		if n != 1 {
			t.Errorf("%q logged %d times, want once", what, n)
		}
	}
	for _, what := range []string{"development outbox refused", "eHerkenning simulator refused"} {
		if !containsEntry(entries, func(e logEntry) bool { return strings.Contains(e.Msg, what) && e.ClientIP == elsewhere }) {
			t.Errorf("no log line %q for %s", what, elsewhere)
		}
	}
}

// TestDevToolsAllowRemote: `allow_remote` opens both to other machines,
// and the start-up warning says so.
func TestDevToolsAllowRemote(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, "devtools.caddyfile", gatewayParams{Storage: dir + "/store", Extra: "allow_remote"})
	b := g.newBrowser()
	for _, path := range devToolPages(t, g) {
		if resp, body := b.page(path, "X-Forwarded-For", elsewhere); resp.StatusCode != http.StatusOK {
			t.Errorf("%s from %s with allow_remote: %d\n%s", path, elsewhere, resp.StatusCode, body)
		}
	}
	entries := readLog(t, dir+"/store-caddy.log")
	for _, what := range []string{"development mail outbox is on", "eHerkenning simulator is on"} {
		if !containsEntry(entries, func(e logEntry) bool {
			return strings.Contains(e.Msg, what) && strings.Contains(e.Msg, "any machine (allow_remote)") && e.Level == "warn"
		}) {
			t.Errorf("no warning that %s for any machine", what)
		}
	}
}

// TestSimulatorIgnoresForwardedForFromUntrustedPeers: without
// trusted_proxies, a client cannot claim another address, so a loopback
// client stays one whatever X-Forwarded-For says.
func TestSimulatorIgnoresForwardedForFromUntrustedPeers(t *testing.T) {
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{})
	if resp, _ := g.newBrowser().page("/ehsim/metadata", "X-Forwarded-For", elsewhere); resp.StatusCode != http.StatusOK {
		t.Fatalf("an untrusted X-Forwarded-For decided: %d", resp.StatusCode)
	}
}

type logEntry struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	ClientIP string `json:"client_ip"`
}

func readLog(t *testing.T, file string) []logEntry {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return entries
}

func containsEntry(entries []logEntry, match func(logEntry) bool) bool {
	for _, e := range entries {
		if match(e) {
			return true
		}
	}
	return false
}
