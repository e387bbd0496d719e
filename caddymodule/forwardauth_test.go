package caddymodule

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// clientFrom is an HTTP client whose connections come from the given
// loopback address, so a test can be a trusted proxy or anyone else.
func clientFrom(ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ask sends a forward-auth subrequest as a proxy would, for a browser
// opening a page; headers are pairs of name, value.
func ask(t *testing.T, c *http.Client, target string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestForwardAuthTrustsOnlyItsProxies: the original address is believed
// from trusted_proxies alone; anyone else's is ignored and logged.
func TestForwardAuthTrustsOnlyItsProxies(t *testing.T) {
	g := startGateway(t, "forwardauth.caddyfile", gatewayParams{})
	original := "http://127.0.0.1:1/declaratie/overzicht"
	headers := []string{"X-Original-URL", original}

	resp := ask(t, clientFrom("127.0.0.2"), g.URL+"/auth/verify/declaratie", headers...)
	want := g.URL + "/login?return=" + url.QueryEscape(original)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Wijgate-Login-Url") != want {
		t.Fatalf("from the proxy: %d, login %q, want 401 and %q", resp.StatusCode, resp.Header.Get("X-Wijgate-Login-Url"), want)
	}

	resp = ask(t, clientFrom("127.0.0.1"), g.URL+"/auth/verify/declaratie", headers...)
	if got, want := resp.Header.Get("X-Wijgate-Login-Url"), g.URL+"/login?return="; resp.StatusCode != http.StatusUnauthorized || got != want {
		t.Fatalf("from elsewhere: %d, login %q, want 401 and %q", resp.StatusCode, got, want)
	}
	var logged bool
	for _, e := range operatorLog(t, g.Storage+"-caddy.log") {
		if msg, _ := e["msg"].(string); e["level"] == "warn" && strings.Contains(msg, "not in trusted_proxies") &&
			e["app"] == "declaratie" && strings.HasPrefix(e["remote"].(string), "127.0.0.1:") {
			logged = true
		}
	}
	if !logged {
		t.Fatal("no log line for the ignored X-Original-URL")
	}
}

// TestForwardAuthForTraefik: with redirect_browsers a browser without a
// session gets the 302 itself, with the address Traefik's X-Forwarded-*
// headers give, and an admitted request the identity headers.
func TestForwardAuthForTraefik(t *testing.T) {
	g := startGateway(t, "forwardauth.caddyfile", gatewayParams{})
	traefik := clientFrom("127.0.0.2")
	headers := []string{"X-Forwarded-Proto", "http", "X-Forwarded-Host", "127.0.0.1:1",
		"X-Forwarded-Uri", "/declaratie/overzicht?jaar=2026", "X-Forwarded-Method", "GET"}

	resp := ask(t, traefik, g.URL+"/auth/verify/traefik", headers...)
	want := g.URL + "/login?return=" + url.QueryEscape("http://127.0.0.1:1/declaratie/overzicht?jaar=2026")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("no session: %d → %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// A form post is not sent to log in: it would lose what was posted.
	resp = ask(t, traefik, g.URL+"/auth/verify/traefik", append(headers, "X-Forwarded-Method", "POST")...)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no session, POST: %d, want 401", resp.StatusCode)
	}

	acct := g.addAccount(testEmail, testName, testPassword)
	linkOrg(t, acct.ID, "12345678", "Bouwbedrijf", "loa3")
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	resp = ask(t, traefik, g.URL+"/auth/verify/traefik", append(headers,
		"Cookie", "__Host-wijgate="+b.cookie("__Host-wijgate")+"; app=1", "X-Wij-User-Id", "u-forged")...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logged in: %d", resp.StatusCode)
	}
	for name, want := range map[string]string{
		"X-Wij-User-Id": acct.ID, "X-Wij-Org-Kvk": "12345678", "X-Wijgate-Cookie": "app=1", "Cache-Control": "no-store",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
