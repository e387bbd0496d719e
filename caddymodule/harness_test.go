package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/wijtechniek/wijgate/caddymodule/mail/mailtest"
	"github.com/wijtechniek/wijgate/internal/testport"
)

// gateway is a real Caddy server, started in this process from a
// Caddyfile in the top-level testdata/, with a recording upstream behind it.
type gateway struct {
	t        *testing.T
	URL      string // the portal and guarded apps, http://127.0.0.1:<port>
	Admin    string // the admin API, http://127.0.0.1:<port>
	Storage  string
	Upstream *recorder
	SMTP     *mailtest.Server
	config   []byte
	// switched is set by a reload or restart until the next request: on
	// Linux a connection that meets the port handover can be reset before
	// any answer (see "Reloading the configuration" in the README), and a
	// browser sends such a page request again.
	switched atomic.Bool
}

// gatewayParams fill the Caddyfile templates.
type gatewayParams struct {
	Port, AdminPort int
	Storage         string
	Upstream        string
	SMTP            string
	Extra           string // more lines for the global wijgate block
}

// testClock is the settable clock the tests install as the package clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// useClock installs a fake clock for the rest of the test.
func useClock(t *testing.T) *testClock {
	c := &testClock{now: time.Now()}
	clock = c.Now
	t.Cleanup(func() { clock = time.Now })
	return c
}

// recorder is the upstream app: it records what reached it.
type recorder struct {
	mu       sync.Mutex
	requests []*http.Request
	srv      *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.requests = append(rec.requests, r.Clone(r.Context()))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "upstream reached")
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) count() int { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.requests) }

// last returns the headers of the last request that reached the upstream.
func (rec *recorder) last(t *testing.T) http.Header {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.requests) == 0 {
		t.Fatal("no request reached the upstream")
	}
	return rec.requests[len(rec.requests)-1].Header
}

// loadGatewayErr adapts and loads a configuration that is expected to be
// refused, and returns the error.
func loadGatewayErr(t *testing.T, name string, p gatewayParams) error {
	t.Helper()
	g := &gateway{t: t, Upstream: newRecorder(t), SMTP: mailtest.NewServer(t)}
	cfg := g.adapt(name, p)
	t.Cleanup(func() { _ = caddy.Stop() })
	return caddy.Load(cfg, true)
}

// startGateway adapts the top-level testdata/<name> and loads it into Caddy.
func startGateway(t *testing.T, name string, p gatewayParams) *gateway {
	t.Helper()
	g := &gateway{t: t, Upstream: newRecorder(t), SMTP: mailtest.NewServer(t)}
	g.config = g.adapt(name, p)
	g.start()
	// Stop before t.TempDir's removal (cleanups run last-in first-out):
	// a badger directory deleted under a live store makes Close hang.
	t.Cleanup(func() { _ = caddy.Stop() })
	return g
}

// adapt fills in and adapts a test Caddyfile.
func (g *gateway) adapt(name string, p gatewayParams) []byte {
	t := g.t
	t.Helper()
	p.SMTP = g.SMTP.Addr()
	if p.Storage == "" {
		p.Storage = t.TempDir()
	}
	p.Port, p.AdminPort = testport.Pick(t), testport.Pick(t)
	p.Upstream = strings.TrimPrefix(g.Upstream.srv.URL, "http://")
	g.Storage = p.Storage
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", p.Port)
	g.Admin = fmt.Sprintf("http://127.0.0.1:%d", p.AdminPort)

	raw, err := os.ReadFile("../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := template.Must(template.New(name).Delims("[[", "]]").Parse(string(raw))).Execute(&buf, p); err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(buf.Bytes(), map[string]any{"filename": name})
	if err != nil {
		t.Fatalf("adapting %s: %v", name, err)
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w)
	}
	return cfg
}

func (g *gateway) start() {
	g.t.Helper()
	if err := caddy.Load(g.config, true); err != nil {
		g.t.Fatalf("loading config: %v", err)
	}
	g.waitReady()
}

// waitReady polls /healthz until the server answers: a listener taken
// over from a stopped server may drop the first connections.
func (g *gateway) waitReady() {
	g.t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 50 {
		resp, err := client.Get(g.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatal("the server did not become ready")
}

// restart stops the whole server, closing the store, and starts it again.
func (g *gateway) restart() {
	g.t.Helper()
	g.switched.Store(true)
	if err := caddy.Stop(); err != nil {
		g.t.Fatal(err)
	}
	g.start()
}

// reload posts the same config to the admin API, forcing a reload the way
// `wijgate reload --force` does.
func (g *gateway) reload() {
	g.t.Helper()
	g.switched.Store(true)
	req, _ := http.NewRequest(http.MethodPost, g.Admin+"/load", bytes.NewReader(g.config))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}
	g.waitReady()
}

// addAccount creates an account through the admin API, like
// `wijgate accounts add` does while the server runs.
func (g *gateway) addAccount(email, name, password string) AccountSummary {
	g.t.Helper()
	b, _ := json.Marshal(AccountRequest{Email: email, Name: name, Password: password})
	resp, err := http.Post(g.Admin+"/wijgate/accounts", "application/json", bytes.NewReader(b))
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("adding account: %d %s", resp.StatusCode, body)
	}
	var a AccountSummary
	if err := json.Unmarshal(body, &a); err != nil {
		g.t.Fatal(err)
	}
	return a
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each answer.
type browser struct {
	t      *testing.T
	g      *gateway
	client *http.Client
	jar    *secureJar
}

func (g *gateway) newBrowser() *browser {
	jar := newSecureJar()
	return &browser{t: g.t, g: g, jar: jar, client: &http.Client{
		Jar: jar,
		// A fresh connection per request, so a restarted server is met
		// without stale keep-alive connections.
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// do sends a request; headers are pairs of name, value (names are sent
// exactly as written, so underscores and odd cases reach the server).
func (b *browser) do(method, path string, form url.Values, headers ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	target := path
	if strings.HasPrefix(path, "/") {
		target = b.g.URL + path
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header[headers[i]] = append(req.Header[headers[i]], headers[i+1])
	}
	resp, err := b.client.Do(req)
	if b.g.switched.Swap(false) && err != nil && method == http.MethodGet && resetBeforeAnswer(err) {
		b.t.Logf("%s %s met the port handover (%v); sending it again, as a browser does", method, path, err)
		resp, err = b.client.Do(req)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// resetBeforeAnswer reports whether a request's connection was closed or
// reset before any answer came.
func resetBeforeAnswer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// page opens a page as a browser navigation.
func (b *browser) page(path string, headers ...string) (*http.Response, string) {
	b.t.Helper()
	return b.do(http.MethodGet, path, nil, append([]string{"Accept", "text/html", "Sec-Fetch-Mode", "navigate"}, headers...)...)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// submit posts a form the way the page at formPage would, with its token.
func (b *browser) submit(formPage, action string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	_, body := b.page(formPage)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no csrf token on %s", formPage)
	}
	form.Set("csrf", m[1])
	return b.do(http.MethodPost, action, form, "Origin", b.g.URL)
}

// post sends a form with the token the browser already holds.
func (b *browser) post(action string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	form.Set("csrf", b.cookie("__Host-wijgate_csrf"))
	return b.do(http.MethodPost, action, form, "Origin", b.g.URL)
}

// login signs in and fails the test unless it worked.
func (b *browser) login(email, password string) *http.Response {
	b.t.Helper()
	resp, body := b.submit("/login", "/login", url.Values{"email": {email}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("login: status %d\n%s", resp.StatusCode, body)
	}
	return resp
}

// cookie is the value of a cookie the jar holds for the gateway.
func (b *browser) cookie(name string) string {
	for _, c := range b.jar.Cookies(mustParse(b.g.URL)) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// secureJar is a cookie jar for tests over plain HTTP on loopback: it
// stores and returns Secure cookies as a browser does for localhost.
type secureJar struct{ *cookiejar.Jar }

func newSecureJar() *secureJar {
	j, _ := cookiejar.New(nil)
	return &secureJar{j}
}

func asHTTPS(u *url.URL) *url.URL {
	c := *u
	c.Scheme = "https"
	return &c
}

func (j *secureJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.Jar.SetCookies(asHTTPS(u), cookies)
}

func (j *secureJar) Cookies(u *url.URL) []*http.Cookie { return j.Jar.Cookies(asHTTPS(u)) }

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
