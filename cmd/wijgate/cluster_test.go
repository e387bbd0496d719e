package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/internal/pgtest"
	"github.com/wijtechniek/wijgate/internal/testport"
)

// clusterReplicaCaddyfile is one replica: the whole gateway on the shared
// database, answering as the balancer's public address (portal_url) and
// trusting the client address the balancer forwards. Both replicas run
// it; only the listening port, the admin port and the name in the
// X-Wijgate-Replica header differ. /app/ needs a session, /declaratie/
// the right for the app declaratie.
const clusterReplicaCaddyfile = `{
	admin {{ADMIN}}
	auto_https off
	persist_config off
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	wijgate {
		storage {{DB}}
		portal_url http://{{PUBLIC}}
		# Admins here act on a password alone; the second-factor tests keep the default.
		second_factor off
		mail {
			outbox {{OUTBOX}}
		}
		eherkenning {
			entity_id urn:etoegang:DV:00000009999999999999:entities:9001
			service_id urn:etoegang:DV:00000009999999999999:services:9001
			service_uuid 6a1f3b52-6b55-4f0e-9c43-2d7e8f1a0b90
			broker_metadata http://{{PUBLIC}}/ehsim/metadata
		}
	}
}
http://:{{PORT}} {
	bind 127.0.0.1
	header X-Wijgate-Replica {{NAME}}
	handle /app/* {
		wijgate {
			app profile
			require session
		}
		respond "{http.request.header.X-Wij-User-Email}"
	}
	handle /declaratie/* {
		wijgate declaratie
		respond "{http.request.header.X-Wij-User-Email} {http.request.header.X-Wij-Org-Kvk} {http.request.header.X-Wij-Org-Role}"
	}
	handle /ehsim/* {
		eherkenning_simulator {
			base_url http://{{PUBLIC}}/ehsim/
			sp_metadata http://{{PUBLIC}}/eherkenning/metadata
			service_uuid 6a1f3b52-6b55-4f0e-9c43-2d7e8f1a0b90
		}
	}
	handle {
		wijgate portal
	}
}
`

// clusterBalancerCaddyfile is the load balancer, a third wijgate process:
// round robin over both replicas for every request, no sticky sessions,
// and a request that cannot reach a replica tries the other. The
// simulator keeps the artifacts it issued in its process's memory, so
// /ehsim/ goes to replica a only; its artifact resolution passes the
// test's tap on the way.
const clusterBalancerCaddyfile = `{
	admin {{ADMIN}}
	auto_https off
	persist_config off
}
http://:{{PORT}} {
	bind 127.0.0.1
	handle /ehsim/ars {
		reverse_proxy {{TAP}}
	}
	handle /ehsim/* {
		reverse_proxy {{A}}
	}
	handle {
		reverse_proxy {{A}} {{B}} {
			lb_policy round_robin
			lb_try_duration 5s
			fail_duration 30s
		}
	}
}
`

// cluster is one PostgreSQL server, two wijgate replicas on one database
// of it, and a balancer in front. Each process is a faultServer: its site
// is the address it listens on.
type cluster struct {
	t        *testing.T
	outbox   string
	public   string // the balancer's address: what browsers and portal_url use
	a, b     *faultServer
	balancer *faultServer
	tap      *brokerTap
	admin    *http.Client
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Close(); err != nil {
			t.Error(err)
		}
	})
	db, err := pg.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &cluster{t: t, outbox: filepath.Join(dir, "outbox"), public: testport.Addr(t), admin: &http.Client{Timeout: 30 * time.Second}}
	c.a = c.process(dir, "a", testport.Addr(t))
	c.b = c.process(dir, "b", testport.Addr(t))
	c.balancer = c.process(dir, "balancer", c.public)
	c.tap = newBrokerTap(t, c.a.site)
	for _, s := range []*faultServer{c.a, c.b} {
		c.configure(s, clusterReplicaCaddyfile, "{{DB}}", db, "{{OUTBOX}}", c.outbox, "{{NAME}}", filepath.Base(s.dir))
	}
	c.configure(c.balancer, clusterBalancerCaddyfile, "{{A}}", c.a.site, "{{B}}", c.b.site, "{{TAP}}", c.tap.addr)
	// The balancer first: each replica loads the broker's metadata
	// through it at start.
	c.balancer.start()
	c.a.start()
	c.b.start()
	c.waitHealthy(c.a)
	c.waitHealthy(c.b)
	return c
}

// process prepares a wijgate process named name listening on site.
func (c *cluster) process(dir, name, site string) *faultServer {
	t := c.t
	s := &faultServer{t: t, dir: filepath.Join(dir, name), site: site, admin: testport.Addr(t)}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s.caddyfile = filepath.Join(s.dir, "Caddyfile")
	t.Cleanup(func() {
		if s.cmd != nil {
			s.kill()
		}
		if t.Failed() {
			t.Logf("process %s:", name)
			s.showLogs()
		}
	})
	return s
}

// configure writes s's Caddyfile from template with these replacements
// besides its own addresses.
func (c *cluster) configure(s *faultServer, template string, replacements ...string) {
	_, port, _ := net.SplitHostPort(s.site)
	r := strings.NewReplacer(append([]string{"{{ADMIN}}", s.admin, "{{PORT}}", port, "{{PUBLIC}}", c.public}, replacements...)...)
	writeFile(c.t, s.caddyfile, r.Replace(template))
}

// waitHealthy waits until the replica's /healthz says ok: storage
// reachable and the broker's metadata loaded.
func (c *cluster) waitHealthy(s *faultServer) {
	c.t.Helper()
	var last string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.admin.Get("http://" + s.site + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(b), "ok\n") {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("replica %s not healthy after 90 s: %s", s.dir, last)
}

// lastMail waits for the newest message to addr in the shared outbox.
func (c *cluster) lastMail(addr string) mail.StoredMessage {
	c.t.Helper()
	box := mail.Outbox{Dir: c.outbox}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs, err := box.List()
		if err != nil {
			c.t.Fatal(err)
		}
		for _, m := range msgs {
			if strings.Contains(m.To, addr) {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no mail to %s", addr)
	return mail.StoredMessage{}
}

var (
	clusterCode       = regexp.MustCompile(`\b(\d{6})\b`)
	clusterInviteLink = regexp.MustCompile(`/invite/([A-Za-z0-9_-]+)`)
	clusterKeyInfo    = regexp.MustCompile(`<md:KeyDescriptor[^>]*>.*?</md:KeyDescriptor>`)
)

// code is the verification code last mailed to addr.
func (c *cluster) code(addr string) string {
	c.t.Helper()
	m := c.lastMail(addr)
	code := clusterCode.FindStringSubmatch(m.Text)
	if code == nil {
		c.t.Fatalf("no code in the mail to %s:\n%s", addr, m.Text)
	}
	return code[1]
}

// brokerTap passes the replicas' artifact resolutions on to the
// simulator. Armed, it keeps the next answer from the replica (which then
// sees the broker fail) and hands it to the test instead.
type brokerTap struct {
	addr     string
	withheld chan []byte
	armed    atomic.Bool
}

func newBrokerTap(t *testing.T, simulator string) *brokerTap {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &brokerTap{addr: l.Addr().String(), withheld: make(chan []byte, 1)}
	client := &http.Client{Timeout: 30 * time.Second}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequest(r.Method, "http://"+simulator+r.URL.RequestURI(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Host = r.Host
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if tap.armed.CompareAndSwap(true, false) {
			tap.withheld <- body
			http.Error(w, "withheld by the test", http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return tap
}

// clientAddrs numbers the people of a test binary: each browses from a
// loopback address of its own (127.0.x.y), so the replicas' per-address
// limits count each person apart, through the balancer too.
var clientAddrs atomic.Int32

// person is one browser: its own cookies and client address, no redirects
// followed. Its requests name the balancer's address as Host and Origin
// wherever they go, as the balancer passes them on, so a step can go to
// one replica directly.
type person struct {
	c       *cluster
	client  *http.Client
	mu      sync.Mutex
	cookies map[string]string
}

func (c *cluster) newPerson() *person {
	n := clientAddrs.Add(1)
	ip := net.IPv4(127, 0, byte(1+n/250), byte(2+n%250))
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	return &person{c: c, cookies: map[string]string{}, client: &http.Client{
		Transport:     &http.Transport{DialContext: dialer.DialContext},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends one request to the process at, target being a path or a URL
// on the public address.
func (p *person) do(at *faultServer, method, target string, form url.Values) (*http.Response, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", err
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "http://"+at.site+u.RequestURI(), body)
	if err != nil {
		return nil, "", err
	}
	req.Host = p.c.public
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://"+p.c.public)
	}
	p.mu.Lock()
	for name, value := range p.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	p.mu.Unlock()
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	p.mu.Lock()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(p.cookies, c.Name)
		} else {
			p.cookies[c.Name] = c.Value
		}
	}
	p.mu.Unlock()
	return resp, string(b), err
}

func (p *person) cookie(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cookies[name]
}

// session is the person's session cookie as a Cookie header value.
func (p *person) session() string { return "__Host-wijgate=" + p.cookie("__Host-wijgate") }

// post sends a form with the anti-forgery token the browser holds.
func (p *person) post(at *faultServer, path string, form url.Values) (*http.Response, string, error) {
	form.Set("csrf", p.cookie("__Host-wijgate_csrf"))
	return p.do(at, http.MethodPost, path, form)
}

// via is where a step to path goes when the test sends it to at: the
// simulator's pages only through the balancer, which sends them to the
// replica whose memory holds the login.
func (p *person) via(at *faultServer, path string) *faultServer {
	if strings.HasPrefix(path, "/ehsim/") {
		return p.c.balancer
	}
	return at
}

// follow walks redirects and self-submitting forms, each hop sent to at
// (see via), to the next page that waits for a person.
func (p *person) follow(at *faultServer, resp *http.Response, body string, err error) (*http.Response, string, error) {
	for range 20 {
		switch {
		case err != nil:
			return nil, "", err
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, perr := url.Parse(resp.Header.Get("Location"))
			if perr != nil {
				return nil, "", perr
			}
			resp, body, err = p.do(p.via(at, next.Path), http.MethodGet, next.RequestURI(), nil)
		case resp.StatusCode == http.StatusOK && (strings.Contains(body, `id="saml-post"`) || strings.Contains(body, " data-autosubmit")):
			action := faultsFormAction.FindStringSubmatch(body)
			if action == nil {
				return nil, "", fmt.Errorf("a self-submitting form without an action:\n%s", body)
			}
			form := url.Values{}
			for _, f := range faultsHiddenField.FindAllStringSubmatch(body, -1) {
				form.Set(f[1], unescapeHTMLAttr(f[2]))
			}
			target, perr := url.Parse(unescapeHTMLAttr(action[1]))
			if perr != nil {
				return nil, "", perr
			}
			resp, body, err = p.do(p.via(at, target.Path), http.MethodPost, target.RequestURI(), form)
		default:
			return resp, body, nil
		}
	}
	return nil, "", fmt.Errorf("too many hops")
}

// expect checks a step's answer.
func expect(resp *http.Response, body string, err error, status int, step string) error {
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", step, err)
	case resp.StatusCode != status:
		return fmt.Errorf("%s: status %d, want %d\n%s", step, resp.StatusCode, status, body)
	}
	return nil
}

// register makes an account through the portal's form: the email at
// send, the code at verify, password and name at create.
func (p *person) register(send, verify, create *faultServer, email string) error {
	if _, _, err := p.do(send, http.MethodGet, "/register", nil); err != nil {
		return err
	}
	resp, body, err := p.post(send, "/register", url.Values{"action": {"send"}, "email": {email}})
	if err := expect(resp, body, err, http.StatusSeeOther, "sending the code"); err != nil {
		return err
	}
	resp, body, err = p.post(verify, "/register", url.Values{"action": {"verify"}, "code": {p.c.code(email)}})
	if err := expect(resp, body, err, http.StatusSeeOther, "verifying the code"); err != nil {
		return err
	}
	resp, body, err = p.post(create, "/register", url.Values{"action": {"create"}, "password": {faultsPassword}, "password2": {faultsPassword}, "name": {"Cluster " + email}})
	return expect(resp, body, err, http.StatusSeeOther, "creating the account")
}

// login signs in through the portal's form at the process at.
func (p *person) login(at *faultServer, email string) error {
	if _, _, err := p.do(at, http.MethodGet, "/login", nil); err != nil {
		return err
	}
	resp, body, err := p.post(at, "/login", url.Values{"email": {email}, "password": {faultsPassword}})
	return expect(resp, body, err, http.StatusSeeOther, "logging in "+email)
}

// answerFromBroker starts an eHerkenning login at the process start, logs
// in at the simulator for company kvk and returns the address the
// simulator sends the browser back to: the ACS with a fresh artifact.
func (p *person) answerFromBroker(start *faultServer, kvk string) (string, error) {
	resp, body, err := p.post(start, "/eherkenning/start", url.Values{})
	if resp, body, err = p.follow(start, resp, body, err); err != nil {
		return "", err
	}
	s := faultsSimSession.FindStringSubmatch(body)
	if s == nil {
		return "", fmt.Errorf("not at the simulator: %d\n%s", resp.StatusCode, body)
	}
	if _, _, err := p.do(p.c.balancer, http.MethodGet, "/ehsim/login?s="+url.QueryEscape(s[1])+"&provider="+url.QueryEscape("Testleverancier Noord"), nil); err != nil {
		return "", err
	}
	resp, body, err = p.do(p.c.balancer, http.MethodPost, "/ehsim/login", url.Values{
		"s": {s[1]}, "company": {"other"}, "kvk": {kvk}, "name": {"Bedrijf " + kvk}, "scenario": {"eh3"}, "person": {"p-" + kvk},
	})
	if err := expect(resp, body, err, http.StatusSeeOther, "the simulator's login"); err != nil {
		return "", err
	}
	return resp.Header.Get("Location"), nil
}

// acs presents the broker's answer at the process at and returns where
// the ACS sends the browser on: /eherkenning/complete with a one-time
// token for the parked result.
func (p *person) acs(at *faultServer, answer string) (string, error) {
	resp, body, err := p.do(at, http.MethodGet, answer, nil)
	if err := expect(resp, body, err, http.StatusSeeOther, "the ACS"); err != nil {
		return "", err
	}
	return resp.Header.Get("Location"), nil
}

// complete collects the parked result at the process at.
func (p *person) complete(at *faultServer, target string) error {
	resp, body, err := p.do(at, http.MethodGet, target, nil)
	if err := expect(resp, body, err, http.StatusOK, "completing the link"); err != nil {
		return err
	}
	if !strings.Contains(body, "Jouw account is nu Admin account voor") {
		return fmt.Errorf("completing the link: no success page\n%s", body)
	}
	return nil
}

// link proves with the simulator that the person acts for kvk: the start
// at start, the answer at the ACS of acs, the result collected at done.
func (p *person) link(start, acs, done *faultServer, kvk string) error {
	answer, err := p.answerFromBroker(start, kvk)
	if err != nil {
		return err
	}
	target, err := p.acs(acs, answer)
	if err != nil {
		return err
	}
	return p.complete(done, target)
}

// invite has the person, an admin of kvk, invite email for apps, and
// returns the invitation's token from the mail.
func (p *person) invite(at *faultServer, kvk, email string, apps ...string) (string, error) {
	resp, body, err := p.post(at, "/org/"+kvk+"/invite", url.Values{"email": {email}, "apps": apps})
	if err := expect(resp, body, err, http.StatusSeeOther, "inviting "+email); err != nil {
		return "", err
	}
	m := clusterInviteLink.FindStringSubmatch(p.c.lastMail(email).Text)
	if m == nil {
		return "", fmt.Errorf("no invitation link in the mail to %s", email)
	}
	return m[1], nil
}

// get requests path at the process at and returns the status, the body
// and which replica answered.
func (p *person) get(at *faultServer, path string) (int, string, string) {
	p.c.t.Helper()
	resp, body, err := p.do(at, http.MethodGet, path, nil)
	if err != nil {
		p.c.t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header.Get("X-Wijgate-Replica")
}

// untilGuardAnswers polls a guarded path at the process at with a session
// cookie until it answers status, and returns how long that took. Each
// request waits for the one before; between them 2 ms pass.
func (c *cluster) untilGuardAnswers(at *faultServer, path, cookie string, status int) (time.Duration, error) {
	start := time.Now()
	last := 0
	for time.Since(start) < 10*time.Second {
		req, err := http.NewRequest(http.MethodGet, "http://"+at.site+path, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Cookie", cookie)
		resp, err := c.admin.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if last = resp.StatusCode; last == status {
			return time.Since(start), nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s at %s still answers %d after 10 s, want %d", path, at.dir, last, status)
}

// must fails the test on err.
func (c *cluster) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// TestClusterTheManualsPath runs the manual's path with each step on
// another replica than the one before (register on a, the code on b,
// the account made on a, eHerkenning started on a, the broker's artifact
// at b's ACS, the result collected and the dashboard on a, the app on b),
// then the same path entirely through the balancer, which must have
// spread it over both. A logout on b is refused on a within a second, and
// a right given or withdrawn on a is honoured on b within a second.
func TestClusterTheManualsPath(t *testing.T) {
	c := startCluster(t)
	// The keys are the database's, so both replicas publish the same: the
	// token keys whole, and in our SAML metadata (signed anew on every
	// request) the same certificates under the same names.
	for _, keys := range []struct {
		path string
		of   func(string) string
	}{
		{"/.well-known/jwks.json", func(body string) string { return body }},
		{"/eherkenning/metadata", func(body string) string {
			return strings.Join(clusterKeyInfo.FindAllString(body, -1), "\n")
		}},
	} {
		resp, body, err := c.newPerson().do(c.a, http.MethodGet, keys.path, nil)
		c.must(expect(resp, body, err, http.StatusOK, keys.path+" on a"))
		respB, bodyB, err := c.newPerson().do(c.b, http.MethodGet, keys.path, nil)
		c.must(expect(respB, bodyB, err, http.StatusOK, keys.path+" on b"))
		if a, b := keys.of(body), keys.of(bodyB); a == "" || a != b {
			t.Errorf("the keys in %s differ between the replicas:\n%s\n%s", keys.path, a, b)
		}
	}

	admin := c.newPerson()
	const adminEmail, kvk = "eigenaar@example.nl", "20000001"
	c.must(admin.register(c.a, c.b, c.a, adminEmail))
	if err := admin.link(c.a, c.b, c.a, kvk); err != nil {
		t.Fatal(err)
	}
	// The code mail is in the shared outbox: b's /dev/mail shows what a sent.
	m := c.lastMail(adminEmail)
	if status, body, _ := admin.get(c.b, "/dev/mail/"+m.ID); status != http.StatusOK || !strings.Contains(body, clusterCode.FindString(m.Text)) {
		t.Errorf("b's /dev/mail/%s: %d\n%s", m.ID, status, body)
	}
	if status, body, _ := admin.get(c.a, "/dashboard"); status != http.StatusOK || !strings.Contains(body, kvk) {
		t.Fatalf("dashboard on a: %d\n%s", status, body)
	}
	if status, body, replica := admin.get(c.b, "/declaratie/"); status != http.StatusOK || body != adminEmail+" "+kvk+" admin" || replica != "b" {
		t.Fatalf("the app on b: %d %q from %q", status, body, replica)
	}

	t.Run("through the balancer", func(t *testing.T) {
		p := c.newPerson()
		const email, kvk = "balans@example.nl", "20000002"
		lb := c.balancer
		c.must(p.register(lb, lb, lb, email))
		c.must(p.link(lb, lb, lb, kvk))
		seen := map[string]int{}
		for range 6 {
			status, body, replica := p.get(lb, "/declaratie/")
			if status != http.StatusOK || body != email+" "+kvk+" admin" {
				t.Fatalf("the app through the balancer: %d %q from %q", status, body, replica)
			}
			seen[replica]++
		}
		if seen["a"] == 0 || seen["b"] == 0 {
			t.Errorf("the balancer sent six requests to %v, want both replicas", seen)
		}
	})

	t.Run("a logout on b is refused on a", func(t *testing.T) {
		p := c.newPerson()
		c.must(p.login(c.a, adminEmail))
		cookie := p.session()
		if status, _, _ := p.get(c.a, "/app/"); status != http.StatusOK {
			t.Fatalf("before the logout a answered %d", status)
		}
		resp, body, err := p.post(c.b, "/logout", url.Values{})
		c.must(expect(resp, body, err, http.StatusSeeOther, "logout on b"))
		took, err := c.untilGuardAnswers(c.a, "/app/", cookie, http.StatusUnauthorized)
		c.must(err)
		t.Logf("a refused the session %v after b's logout answered", took)
		if took >= time.Second {
			t.Errorf("a honoured b's logout after %v, want within 1 s", took)
		}
	})

	t.Run("a right given and withdrawn on a is honoured on b", func(t *testing.T) {
		memberEmail := "collega@example.nl"
		member, err := addAccountByAPI(c.admin, c.b.admin, memberEmail)
		c.must(err)
		token, err := admin.invite(c.a, kvk, memberEmail)
		c.must(err)
		colleague := c.newPerson()
		c.must(colleague.login(c.b, memberEmail))
		resp, body, err := colleague.post(c.b, "/invite/"+token, url.Values{})
		c.must(expect(resp, body, err, http.StatusSeeOther, "accepting the invitation on b"))
		cookie := colleague.session()
		if status, _, _ := colleague.get(c.b, "/declaratie/"); status != http.StatusForbidden {
			t.Fatalf("a member without the right: b answered %d", status)
		}
		for _, change := range []struct {
			apps   []string
			status int
		}{{[]string{"declaratie"}, http.StatusOK}, {nil, http.StatusForbidden}} {
			resp, body, err := admin.post(c.a, "/org/"+kvk+"/apps/"+member.ID, url.Values{"apps": change.apps})
			c.must(expect(resp, body, err, http.StatusSeeOther, "changing the apps on a"))
			took, err := c.untilGuardAnswers(c.b, "/declaratie/", cookie, change.status)
			c.must(err)
			t.Logf("apps %v: b answered %d %v after a's change", change.apps, change.status, took)
			if took >= time.Second {
				t.Errorf("b honoured a's change of apps to %v after %v, want within 1 s", change.apps, took)
			}
		}
	})
}

// percentile is the q-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// reportPropagation logs the figures of one kind of write and fails the
// test when the 99th percentile is a second or more.
func reportPropagation(t *testing.T, what string, took []time.Duration) {
	t.Helper()
	slices.Sort(took)
	p50, p99 := percentile(took, 0.50), percentile(took, 0.99)
	t.Logf("%s: n=%d p50=%v p99=%v max=%v", what, len(took), p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), took[len(took)-1].Round(100*time.Microsecond))
	if p99 >= time.Second {
		t.Errorf("%s: p99 %v, want under 1 s", what, p99)
	}
}

// TestClusterPropagation measures how long a write on one replica takes
// to be honoured by the other: from the moment the writing replica
// answers until the other one's guard gives the new answer (polled every
// 2 ms). Fifty logouts on b, each watched on a; fifty changes of a
// member's apps on a, each watched on b; twenty accounts disabled through
// a's admin API, each watched on b.
func TestClusterPropagation(t *testing.T) {
	const rounds = 50
	c := startCluster(t)
	admin := c.newPerson()
	const adminEmail, kvk = "beheer@example.nl", "30000001"
	c.must(admin.register(c.a, c.a, c.a, adminEmail))
	c.must(admin.link(c.a, c.a, c.a, kvk))

	logouts := make([]time.Duration, 0, rounds)
	for range rounds {
		p := c.newPerson()
		c.must(p.login(c.a, adminEmail))
		cookie := p.session()
		if status, _, _ := p.get(c.a, "/app/"); status != http.StatusOK {
			t.Fatalf("before the logout a answered %d", status)
		}
		resp, body, err := p.post(c.b, "/logout", url.Values{})
		c.must(expect(resp, body, err, http.StatusSeeOther, "logout on b"))
		took, err := c.untilGuardAnswers(c.a, "/app/", cookie, http.StatusUnauthorized)
		c.must(err)
		logouts = append(logouts, took)
	}
	reportPropagation(t, "logout on b, refused on a", logouts)

	const memberEmail = "lid@example.nl"
	member, err := addAccountByAPI(c.admin, c.a.admin, memberEmail)
	c.must(err)
	token, err := admin.invite(c.a, kvk, memberEmail)
	c.must(err)
	colleague := c.newPerson()
	c.must(colleague.login(c.b, memberEmail))
	resp, body, err := colleague.post(c.b, "/invite/"+token, url.Values{})
	c.must(expect(resp, body, err, http.StatusSeeOther, "accepting the invitation"))
	cookie := colleague.session()
	if status, _, _ := colleague.get(c.b, "/declaratie/"); status != http.StatusForbidden {
		t.Fatalf("a member without the right: b answered %d", status)
	}
	rights := make([]time.Duration, 0, rounds)
	for i := range rounds {
		apps, want := []string{"declaratie"}, http.StatusOK
		if i%2 == 1 {
			apps, want = nil, http.StatusForbidden
		}
		resp, body, err := admin.post(c.a, "/org/"+kvk+"/apps/"+member.ID, url.Values{"apps": apps})
		c.must(expect(resp, body, err, http.StatusSeeOther, "changing the apps on a"))
		took, err := c.untilGuardAnswers(c.b, "/declaratie/", cookie, want)
		c.must(err)
		rights = append(rights, took)
	}
	reportPropagation(t, "apps changed on a, honoured on b", rights)

	disables := make([]time.Duration, 0, 20)
	for i := range 20 {
		email := fmt.Sprintf("weg-%d@example.nl", i)
		_, err := addAccountByAPI(c.admin, c.a.admin, email)
		c.must(err)
		p := c.newPerson()
		c.must(p.login(c.b, email))
		if status, _, _ := p.get(c.b, "/app/"); status != http.StatusOK {
			t.Fatalf("before disabling b answered %d", status)
		}
		resp, err := c.admin.Post("http://"+c.a.admin+"/wijgate/accounts/disable", "application/json", strings.NewReader(`{"email":"`+email+`"}`))
		c.must(err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("disabling %s through a's admin API: %d", email, resp.StatusCode)
		}
		took, err := c.untilGuardAnswers(c.b, "/app/", p.session(), http.StatusUnauthorized)
		c.must(err)
		disables = append(disables, took)
	}
	reportPropagation(t, "account disabled through a, refused on b", disables)
}

// TestRunClusterCaddyfilesAreValid validates the Caddyfiles of `make
// run-cluster` as cluster/run.sh starts them, each replica's on a real
// database.
func TestRunClusterCaddyfilesAreValid(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	db, err := pg.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	for _, name := range []string{"a", "b"} {
		out, err := run(t, "", []string{"WIJGATE_REPLICA=" + name, "WIJGATE_PORT=8081", "WIJGATE_ADMIN=localhost:2019",
			"WIJGATE_DATABASE=" + db, "WIJGATE_DATA=" + data, "XDG_DATA_HOME=" + data, "XDG_CONFIG_HOME=" + data},
			"validate", "--config", "../../cluster/replica.Caddyfile", "--adapter", "caddyfile")
		if err != nil {
			t.Fatalf("replica %s: %v\n%s", name, err, out)
		}
	}
	out, err := run(t, "", []string{"XDG_DATA_HOME=" + data, "XDG_CONFIG_HOME=" + data},
		"validate", "--config", "../../cluster/balancer.Caddyfile", "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("balancer: %v\n%s", err, out)
	}
}
