package caddymodule

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/mail/mailtest"
)

// The header contract at the proxy layer: what a client could slip past
// the guard through the proxy (upgrades, trailers, Connection tokens,
// legacy identity headers, encoded paths), tried against a real Caddy
// with the top-level testdata/proxy.caddyfile in front of proxyUpstream.

// seenRequest is one request as the upstream app received it.
type seenRequest struct {
	uri     string
	header  http.Header
	trailer http.Header
}

// proxyUpstream is the app behind the gateway. It records every request
// it receives, reading bodies to the end so that trailers arrive. It
// accepts WebSocket upgrades, and it switches to h2c when asked, then
// serves whatever requests follow on that connection, as a server that
// speaks h2c would, unseen by the gateway.
type proxyUpstream struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (u *proxyUpstream) record(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen = append(u.seen, seenRequest{uri: r.RequestURI, header: r.Header.Clone(), trailer: r.Trailer.Clone()})
}

func (u *proxyUpstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

func (u *proxyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.record(r)
	switch {
	case strings.EqualFold(r.Header.Get("Upgrade"), "h2c"):
		u.tunnel(w)
	case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		acceptWebSocket(w, r)
	default:
		fmt.Fprintln(w, "upstream reached")
	}
}

// tunnel answers 101 and then serves every further request on the
// connection itself.
func (u *proxyUpstream) tunnel(w http.ResponseWriter) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	_ = rw.Flush()
	for {
		req, err := http.ReadRequest(rw.Reader)
		if err != nil {
			return
		}
		u.record(req)
		_, _ = rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\ntunnelled\r\n")
		_ = rw.Flush()
	}
}

// acceptWebSocket completes the handshake and sends one line naming the
// account the gateway vouched for, then closes.
func acceptWebSocket(w http.ResponseWriter, r *http.Request) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-Websocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	fmt.Fprintf(rw, "account=%s\n", r.Header.Get(contract.UserID.Header()))
	_ = rw.Flush()
}

// startProxyGateway runs the top-level testdata/proxy.caddyfile in front
// of a fresh proxyUpstream.
func startProxyGateway(t *testing.T) (*gateway, *proxyUpstream) {
	t.Helper()
	up := &proxyUpstream{}
	rec := &recorder{srv: httptest.NewServer(up)}
	t.Cleanup(rec.srv.Close)
	g := &gateway{t: t, Upstream: rec, SMTP: mailtest.NewServer(t)}
	g.config = g.adapt("proxy.caddyfile", gatewayParams{})
	g.start()
	t.Cleanup(func() { _ = caddy.Stop() })
	return g, up
}

// rawConn is a client connection that sends requests byte for byte as
// written, which net/http's client would not.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func (g *gateway) dialRaw() *rawConn {
	g.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { conn.Close() })
	return &rawConn{t: g.t, conn: conn, br: bufio.NewReader(conn)}
}

// send writes a request and reads the answer's head and body; a 101
// answer has no body, and the connection then carries the new protocol.
func (c *rawConn) send(request string) (*http.Response, string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, request); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading the answer to %q: %v", request, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(body)
}

// rawGet sends one GET for target, exactly as written, with the session
// cookie (if any) and further header lines.
func (g *gateway) rawGet(target, session string, lines ...string) (*http.Response, string) {
	g.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, strings.TrimPrefix(g.URL, "http://"))
	if session != "" {
		fmt.Fprintf(&b, "Cookie: %s=%s\r\n", cookieName, session)
	}
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return g.dialRaw().send(b.String())
}

func TestH2CUpgradeIsNoTunnelPastTheGuard(t *testing.T) {
	g, up := startProxyGateway(t)
	b, acct := admin(t, g, testEmail, "12345678")
	session := b.cookie(cookieName)
	host := strings.TrimPrefix(g.URL, "http://")

	for _, path := range []string{"/declaratie/", "/live/"} { // also where WebSockets are allowed
		t.Run(path, func(t *testing.T) {
			c := g.dialRaw()
			resp, body := c.send("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nCookie: " + cookieName + "=" + session +
				"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the upgrade request: %d %q, want a plain 200", resp.StatusCode, body)
			}
			// The same connection, without a cookie and with forged headers:
			// it meets the guard again.
			resp, _ = c.send("GET " + path + "admin HTTP/1.1\r\nHost: " + host +
				"\r\nX-Wij-User-Id: forged\r\nX-Wij-Org-Role: admin\r\nAccept: application/json\r\n\r\n")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a later request on the connection: %d, want 401 from the guard", resp.StatusCode)
			}
		})
	}
	seen := up.requests()
	if len(seen) != 2 {
		t.Fatalf("the upstream saw %d requests, want the two upgrade requests only", len(seen))
	}
	for _, s := range seen {
		if s.header.Get("Upgrade") != "" || s.header.Get("Http2-Settings") != "" {
			t.Errorf("%s reached the upstream with Upgrade %q, HTTP2-Settings %q", s.uri, s.header.Get("Upgrade"), s.header.Get("Http2-Settings"))
		}
		if got := s.header.Get(contract.UserID.Header()); got != acct.ID {
			t.Errorf("%s reached the upstream with %s %q", s.uri, contract.UserID.Header(), got)
		}
	}
}

func TestWebSocketOnlyWhereTheRouteAllowsIt(t *testing.T) {
	g, up := startProxyGateway(t)
	b, acct := admin(t, g, testEmail, "12345678")
	session := b.cookie(cookieName)
	handshake := []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}

	t.Run("allowed route, logged in", func(t *testing.T) {
		c := g.dialRaw()
		resp, _ := c.send("GET /live/socket HTTP/1.1\r\nHost: " + strings.TrimPrefix(g.URL, "http://") +
			"\r\nCookie: " + cookieName + "=" + session + "\r\n" + strings.Join(handshake, "\r\n") + "\r\n\r\n")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		line, err := c.br.ReadString('\n')
		if err != nil || line != "account="+acct.ID+"\n" {
			t.Fatalf("over the WebSocket: %q, %v", line, err)
		}
	})
	t.Run("allowed route, no session", func(t *testing.T) {
		before := len(up.requests())
		resp, body := g.rawGet("/live/socket", "", handshake...)
		if resp.StatusCode != http.StatusUnauthorized || len(up.requests()) != before {
			t.Fatalf("status %d %q, upstream reached: %v", resp.StatusCode, body, len(up.requests()) != before)
		}
	})
	t.Run("route without the websocket option", func(t *testing.T) {
		before := len(up.requests())
		resp, body := g.rawGet("/declaratie/socket", session, handshake...)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"reason":"websocket"`) {
			t.Fatalf("status %d %q, want 403 with reason websocket", resp.StatusCode, body)
		}
		if len(up.requests()) != before {
			t.Fatal("the refused upgrade reached the upstream")
		}
	})
}

func TestIdentityTrailersAreStripped(t *testing.T) {
	g, up := startProxyGateway(t)
	b, acct := admin(t, g, testEmail, "12345678")
	c := g.dialRaw()
	resp, body := c.send("POST /website/upload HTTP/1.1\r\nHost: " + strings.TrimPrefix(g.URL, "http://") +
		"\r\nCookie: " + cookieName + "=" + b.cookie(cookieName) +
		"\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked" +
		"\r\nTrailer: X-Wij-User-Id, Remote-User, x_wij_org_role, X-Forwarded-User, X-Checksum\r\n\r\n" +
		"5\r\nhello\r\n0\r\n" +
		"X-Wij-User-Id: forged\r\nRemote-User: boss@evil.example\r\nX_Wij_Org_Role: admin\r\nX-Forwarded-User: boss\r\n" +
		"X-Wij-Apps: rie\r\nX-Checksum: 5d41402a\r\n\r\n") // X-Wij-Apps was not announced
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	seen := up.requests()
	last := seen[len(seen)-1]
	if got := last.trailer.Get("X-Checksum"); got != "5d41402a" {
		t.Fatalf("an ordinary trailer did not arrive (%q): the test proves nothing", got)
	}
	for name, values := range last.trailer {
		if name != "X-Checksum" {
			t.Errorf("trailer %s: %q reached the upstream", name, values)
		}
	}
	if got := last.header.Get(contract.UserID.Header()); got != acct.ID {
		t.Errorf("%s = %q", contract.UserID.Header(), got)
	}
}

func TestConnectionHeaderCannotDropTheGatewaysHeaders(t *testing.T) {
	g, up := startProxyGateway(t)
	b, acct := admin(t, g, testEmail, "12345678")
	for _, connection := range []string{
		"close, X-Wij-User-Id, Remote-User",
		"keep-alive, x-wij-user-email,remote_user , X-Wij-Assertion",
	} {
		t.Run(connection, func(t *testing.T) {
			resp, body := b.do(http.MethodGet, "/website/", nil, "Connection", connection)
			expectStatus(t, resp, body, http.StatusOK)
			seen := up.requests()
			h := seen[len(seen)-1].header
			for name, want := range map[string]string{contract.UserID.Header(): acct.ID, contract.UserEmail.Header(): testEmail, "Remote-User": testEmail} {
				if got := h.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if h.Get(contract.Assertion.Header()) == "" {
				t.Errorf("%s missing", contract.Assertion.Header())
			}
		})
	}
}

func TestLegacyIdentityHeadersAreStrippedByDefault(t *testing.T) {
	g, up := startProxyGateway(t)
	b, acct := admin(t, g, testEmail, "12345678")
	forged := []string{"X-Legacy-Login", "X-Authentik-Username", "X-Pomerium-Claim-Email", "X-Vouch-User", "remote_user"}
	forged = append(forged, defaultStrippedHeaders...)
	var headers []string
	for _, name := range forged {
		headers = append(headers, name, "boss@evil.example")
	}
	resp, body := b.page("/declaratie/", headers...)
	expectStatus(t, resp, body, http.StatusOK)
	seen := up.requests()
	h := seen[len(seen)-1].header
	for name, values := range h {
		for _, v := range values {
			if v == "boss@evil.example" {
				t.Errorf("%s reached the upstream", name)
			}
		}
	}
	if got := h.Get(contract.UserID.Header()); got != acct.ID {
		t.Errorf("%s = %q", contract.UserID.Header(), got)
	}
}

func TestEncodedPathTricksAreRefused(t *testing.T) {
	g, up := startProxyGateway(t)
	ab, _ := admin(t, g, "admin@a.nl", "11111111")
	token := invite(t, g, ab, "11111111", "piet@a.nl", "website")
	cb, _ := colleague(t, g, "piet@a.nl", token)
	session := cb.cookie(cookieName)

	// Piet may use the website, not the Declaratie Systeem.
	if resp, body := g.rawGet("/website/", session); resp.StatusCode != http.StatusOK {
		t.Fatalf("/website/: %d %s", resp.StatusCode, body)
	}
	if resp, _ := g.rawGet("/declaratie/", session, "Accept: application/json"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/declaratie/: %d, want 403", resp.StatusCode)
	}
	for _, target := range []string{
		"/declaratie%2f..%2fwebsite/",
		"/declaratie%2F..%2Fwebsite/x",
		"/website/x%5c..%5c..%5cdeclaratie/",
		`/website/..\declaratie/`,
		"/declaratie/%2e%2e/website/",
		"/declaratie/%2E./website/",
		"/declaratie/../website/",
		"/website/..;/declaratie/",
		"/website/.%2e;x/declaratie/",
		"/website/a%252f..%252f..%252fdeclaratie/",
		"/website/%252e%252e/declaratie/",
		"/files/a%2f..%2fb/", // an encoded slash is allowed there, a dot segment next to it is not
		"/files/x/%2e%2e/y",
	} {
		t.Run(target, func(t *testing.T) {
			before := len(up.requests())
			resp, body := g.rawGet(target, session, "Accept: application/json")
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"reason":"ambiguous_path"`) {
				t.Errorf("status %d %q, want 400 ambiguous_path", resp.StatusCode, body)
			}
			if after := up.requests(); len(after) != before {
				t.Errorf("the upstream received %q", after[len(after)-1].uri)
			}
		})
	}
	t.Run("a browser sees why, in Dutch", func(t *testing.T) {
		resp, body := g.rawGet("/declaratie%2f..%2fwebsite/", session, "Accept: text/html", "Sec-Fetch-Mode: navigate")
		expectStatus(t, resp, body, http.StatusBadRequest)
		if !strings.Contains(body, "gecodeerde schuine streep") || resp.Header.Get("Content-Language") != "nl" {
			t.Fatalf("page:\n%s", body)
		}
	})
	for _, target := range []string{"/website/caf%C3%A9%20menu/x.y..z", "/website/.well-known/x", "/files/a%2Fb%5Cc", "/files/x%2f..y"} {
		t.Run("allowed "+target, func(t *testing.T) {
			resp, body := g.rawGet(target, session)
			expectStatus(t, resp, body, http.StatusOK)
			seen := up.requests()
			if got := seen[len(seen)-1].uri; got != target {
				t.Fatalf("the upstream received %q", got)
			}
		})
	}
}
