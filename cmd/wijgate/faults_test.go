package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/internal/testport"
)

// faultsCaddyfile is a whole gateway: the portal, a guarded route that
// answers with the account's email, and the eHerkenning simulator, so
// that accounts, sessions and organisation links are all made the way
// people make them.
const faultsCaddyfile = `{
	admin {{ADMIN}}
	auto_https off
	persist_config off
	wijgate {
		storage {{DIR}}/store
		portal_url http://{{SITE}}
		mail {
			outbox {{DIR}}/outbox
		}
		eherkenning {
			entity_id urn:etoegang:DV:00000009999999999999:entities:9001
			service_id urn:etoegang:DV:00000009999999999999:services:9001
			service_uuid 6a1f3b52-6b55-4f0e-9c43-2d7e8f1a0b90
			broker_metadata http://{{SITE}}/ehsim/metadata
		}
	}
}
http://{{SITE}} {
	bind 127.0.0.1
	handle /app/* {
		wijgate {
			app demo
			require session
		}
		respond "{http.request.header.X-Wij-User-Email}"
	}
	handle /ehsim/* {
		eherkenning_simulator {
			base_url http://{{SITE}}/ehsim/
			sp_metadata http://{{SITE}}/eherkenning/metadata
			service_uuid 6a1f3b52-6b55-4f0e-9c43-2d7e8f1a0b90
		}
	}
	handle {
		wijgate portal
	}
}
`

const faultsPassword = "correct horse battery staple"

// faultServer is one wijgate process after another on the same store
// directory, each started from the same Caddyfile.
type faultServer struct {
	t                *testing.T
	dir, site, admin string
	caddyfile        string
	cmd              *exec.Cmd
	exited           chan error
	starts           int
}

func newFaultServer(t *testing.T) *faultServer {
	t.Helper()
	s := &faultServer{t: t, dir: t.TempDir(), site: testport.Addr(t), admin: testport.Addr(t)}
	s.caddyfile = filepath.Join(s.dir, "Caddyfile")
	cfg := strings.NewReplacer("{{ADMIN}}", s.admin, "{{DIR}}", s.dir, "{{SITE}}", s.site).Replace(faultsCaddyfile)
	writeFile(t, s.caddyfile, cfg)
	t.Cleanup(func() {
		if s.cmd != nil {
			s.kill()
		}
		if t.Failed() {
			s.showLogs()
		}
	})
	return s
}

// start runs the binary and returns once Caddy reports its config loaded
// (--pingback).
func (s *faultServer) start() {
	t := s.t
	t.Helper()
	ready, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	s.starts++
	logOut, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("server-%d.log", s.starts)))
	if err != nil {
		t.Fatal(err)
	}
	defer logOut.Close()
	cmd := exec.Command(binary, "run", "--config", s.caddyfile, "--adapter", "caddyfile", "--pingback", ready.Addr().String())
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+s.dir, "XDG_CONFIG_HOME="+s.dir)
	cmd.Stdin = strings.NewReader("ready")
	cmd.Stdout, cmd.Stderr = logOut, logOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.exited = cmd, make(chan error, 1)
	go func() { s.exited <- cmd.Wait() }()
	pinged := make(chan error, 1)
	go func() {
		conn, err := ready.Accept()
		if err == nil {
			conn.Close()
		}
		pinged <- err
	}()
	select {
	case err := <-pinged:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-s.exited:
		s.cmd = nil
		t.Fatalf("the server exited at start %d: %v", s.starts, err)
	}
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (s *faultServer) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	<-s.exited
	s.cmd = nil
}

// stop ends the process through the admin API, closing the store.
func (s *faultServer) stop() {
	s.t.Helper()
	if out, err := run(s.t, "", nil, "stop", "--address", s.admin); err != nil {
		s.t.Fatalf("wijgate stop: %v\n%s", err, out)
	}
	if err := <-s.exited; err != nil {
		s.t.Fatalf("the server ended with %v", err)
	}
	s.cmd = nil
}

// showLogs prints the end of each process's log, for a failed test.
func (s *faultServer) showLogs() {
	for i := 1; i <= s.starts; i++ {
		b, _ := os.ReadFile(filepath.Join(s.dir, fmt.Sprintf("server-%d.log", i)))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		s.t.Logf("server %d log (end):\n%s", i, b)
	}
}

// checkStore opens the store the way the server does (recovering what a
// crash left) and checks that no record contradicts another.
func (s *faultServer) checkStore() {
	s.t.Helper()
	st, err := store.Open(store.Options{Dir: filepath.Join(s.dir, "store")})
	if err != nil {
		s.t.Fatalf("opening the store after a kill: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		s.t.Fatalf("the store is inconsistent:\n%v", err)
	}
}

// visitor is one person's browser: its own cookies (Secure ones too, as
// a browser keeps them for a loopback address) and no redirects followed.
type visitor struct {
	base    string
	client  *http.Client
	cookies map[string]string
}

func newVisitor(base string, transport http.RoundTripper) *visitor {
	return &visitor{base: base, cookies: map[string]string{}, client: &http.Client{
		Transport:     transport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (v *visitor) do(method, target string, form url.Values) (*http.Response, string, error) {
	if strings.HasPrefix(target, "/") {
		target = v.base + target
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", v.base)
	}
	for name, value := range v.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(v.cookies, c.Name)
		} else {
			v.cookies[c.Name] = c.Value
		}
	}
	return resp, string(b), err
}

var (
	faultsCSRF        = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	faultsFormAction  = regexp.MustCompile(`<form[^>]*method="post"[^>]*action="([^"]+)"`)
	faultsHiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
	faultsSimSession  = regexp.MustCompile(`name="s" value="([^"]+)"`)
)

// login signs in through the portal's form and returns the session
// cookie as a Cookie header value.
func (v *visitor) login(email string) (string, error) {
	_, page, err := v.do(http.MethodGet, "/login", nil)
	if err != nil {
		return "", err
	}
	m := faultsCSRF.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("no csrf token on the login page")
	}
	resp, body, err := v.do(http.MethodPost, "/login", url.Values{"csrf": {m[1]}, "email": {email}, "password": {faultsPassword}})
	if err != nil {
		return "", err
	}
	session := v.cookies["__Host-wijgate"]
	if resp.StatusCode != http.StatusSeeOther || session == "" {
		return "", fmt.Errorf("login of %s: %d\n%s", email, resp.StatusCode, body)
	}
	return "__Host-wijgate=" + session, nil
}

// linkCompany proves with the eHerkenning simulator that the logged-in
// account acts for the company kvk, as the manual's steps do.
func (v *visitor) linkCompany(kvk, person string) error {
	resp, body, err := v.follow(v.do(http.MethodPost, "/eherkenning/start", url.Values{"csrf": {v.cookies["__Host-wijgate_csrf"]}}))
	if err != nil {
		return err
	}
	s := faultsSimSession.FindStringSubmatch(body)
	if s == nil {
		return fmt.Errorf("not at the simulator: %d\n%s", resp.StatusCode, body)
	}
	if _, _, err := v.do(http.MethodGet, "/ehsim/login?s="+url.QueryEscape(s[1])+"&provider="+url.QueryEscape("Testleverancier Noord"), nil); err != nil {
		return err
	}
	resp, body, err = v.follow(v.do(http.MethodPost, "/ehsim/login", url.Values{
		"s": {s[1]}, "company": {"other"}, "kvk": {kvk}, "name": {"Bedrijf " + kvk}, "scenario": {"eh3"}, "person": {person},
	}))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Jouw account is nu Admin account voor") {
		return fmt.Errorf("linking %s: %d\n%s", kvk, resp.StatusCode, body)
	}
	return nil
}

// follow walks redirects and self-submitting forms (the SAML POST
// binding) to the next page that waits for a person.
func (v *visitor) follow(resp *http.Response, body string, err error) (*http.Response, string, error) {
	for range 20 {
		switch {
		case err != nil:
			return nil, "", err
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, perr := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if perr != nil {
				return nil, "", perr
			}
			resp, body, err = v.do(http.MethodGet, next.String(), nil)
		case resp.StatusCode == http.StatusOK && (strings.Contains(body, `id="saml-post"`) || strings.Contains(body, " data-autosubmit")):
			action := faultsFormAction.FindStringSubmatch(body)
			if action == nil {
				return nil, "", fmt.Errorf("a self-submitting form without an action:\n%s", body)
			}
			form := url.Values{}
			for _, f := range faultsHiddenField.FindAllStringSubmatch(body, -1) {
				form.Set(f[1], unescapeHTMLAttr(f[2]))
			}
			target, perr := resp.Request.URL.Parse(unescapeHTMLAttr(action[1]))
			if perr != nil {
				return nil, "", perr
			}
			resp, body, err = v.do(http.MethodPost, target.String(), form)
		default:
			return resp, body, nil
		}
	}
	return nil, "", fmt.Errorf("too many hops")
}

func unescapeHTMLAttr(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// addAccountByAPI makes an account through the admin API, as
// `wijgate accounts add` does while the server runs.
func addAccountByAPI(client *http.Client, admin, email string) (caddymodule.AccountSummary, error) {
	b, _ := json.Marshal(caddymodule.AccountRequest{Email: email, Name: "Fault " + email, Password: faultsPassword})
	resp, err := client.Post("http://"+admin+"/wijgate/accounts", "application/json", bytes.NewReader(b))
	if err != nil {
		return caddymodule.AccountSummary{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return caddymodule.AccountSummary{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return caddymodule.AccountSummary{}, fmt.Errorf("adding %s: %d %s", email, resp.StatusCode, body)
	}
	var a caddymodule.AccountSummary
	return a, json.Unmarshal(body, &a)
}

// getAdminJSON reads an admin API answer.
func getAdminJSON(client *http.Client, target string, v any) error {
	resp, err := client.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %d %s", target, resp.StatusCode, body)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// acknowledged holds every write the server answered with success: after
// any crash each must still be there.
type acknowledged struct {
	mu       sync.Mutex
	accounts map[string]string // email → account ID
	sessions map[string]string // Cookie header value → email
	links    map[string]string // KvK number → account ID
	count    atomic.Int64      // of this round
	notify   chan struct{}     // a write was acknowledged
}

func (a *acknowledged) record(add func()) {
	a.mu.Lock()
	add()
	a.mu.Unlock()
	a.count.Add(1)
	select {
	case a.notify <- struct{}{}:
	default:
	}
}

// killSeed repeats the kill points of an earlier run of
// TestKillDuringWritesLosesNothing; 0 picks new ones.
var killSeed = flag.Uint64("kill-seed", 0, "seed of the kill points (0: a new one)")

// TestKillDuringWritesLosesNothing runs writers against the real binary
// (new accounts through the admin API, logins, companies linked through
// the eHerkenning simulator), kills the process with SIGKILL once a
// random number of writes has been acknowledged, and starts it again on
// the same store, several times: every acknowledged account, session and
// link is there, and no record contradicts another.
func TestKillDuringWritesLosesNothing(t *testing.T) {
	const rounds, writers = 5, 4
	seed := *killSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("kill points from seed %d (-kill-seed repeats them)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	s := newFaultServer(t)
	acked := &acknowledged{accounts: map[string]string{}, sessions: map[string]string{}, links: map[string]string{}, notify: make(chan struct{}, 1)}
	var kvkSeq atomic.Int64

	s.start()
	for round := range rounds {
		// A new client each round: none of its connections went to a
		// process that was killed.
		admin := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		acked.count.Store(0)
		var killed atomic.Bool
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var unexpected []error
		var unexpectedMu sync.Mutex
		for w := range writers {
			wg.Go(func() {
				fail := func(err error) bool {
					if err == nil {
						return false
					}
					if !killed.Load() {
						unexpectedMu.Lock()
						unexpected = append(unexpected, err)
						unexpectedMu.Unlock()
					}
					return true
				}
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					email := fmt.Sprintf("r%d-w%d-%d@example.nl", round, w, n)
					a, err := addAccountByAPI(admin, s.admin, email)
					if fail(err) {
						return
					}
					acked.record(func() { acked.accounts[email] = a.ID })
					v := newVisitor("http://"+s.site, &http.Transport{DisableKeepAlives: true})
					cookie, err := v.login(email)
					if fail(err) {
						return
					}
					acked.record(func() { acked.sessions[cookie] = email })
					kvk := fmt.Sprintf("%08d", 10000000+kvkSeq.Add(1))
					if fail(v.linkCompany(kvk, email)) {
						return
					}
					acked.record(func() { acked.links[kvk] = a.ID })
				}
			})
		}
		// Kill at a random point in the stream of writes, while the
		// other writers are in the middle of theirs.
		killAt := int64(25 + rng.IntN(75))
		deadline := time.After(60 * time.Second)
		for acked.count.Load() < killAt {
			select {
			case <-acked.notify:
			case <-deadline:
				close(stop)
				t.Fatalf("round %d: only %d writes acknowledged in a minute", round, acked.count.Load())
			}
		}
		killed.Store(true)
		s.kill()
		close(stop)
		wg.Wait()
		if len(unexpected) > 0 {
			t.Fatalf("round %d: writes failed before the kill: %v", round, unexpected)
		}
		acked.mu.Lock()
		t.Logf("round %d: killed after %d acknowledged writes; %d accounts, %d sessions, %d links acknowledged so far",
			round, acked.count.Load(), len(acked.accounts), len(acked.sessions), len(acked.links))
		acked.mu.Unlock()

		s.checkStore()
		s.start()
		verifyAcknowledged(t, s, acked)
		if t.Failed() {
			t.FailNow()
		}
	}
	s.stop()
	s.checkStore()
}

// verifyAcknowledged checks through the running server that every
// acknowledged account, session and organisation link is there.
func verifyAcknowledged(t *testing.T, s *faultServer, acked *acknowledged) {
	t.Helper()
	acked.mu.Lock()
	defer acked.mu.Unlock()
	client := &http.Client{Timeout: 30 * time.Second}
	var accounts []caddymodule.AccountSummary
	if err := getAdminJSON(client, "http://"+s.admin+"/wijgate/accounts", &accounts); err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	for _, a := range accounts {
		stored[a.Email] = a.ID
	}
	for email, id := range acked.accounts {
		if stored[email] != id {
			t.Errorf("acknowledged account %s (%s) is gone: found %q", email, id, stored[email])
		}
	}
	for cookie, email := range acked.sessions {
		resp, err := getGuarded(client, "http://"+s.site, cookie)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != email {
			t.Errorf("acknowledged session of %s: %d %q", email, resp.StatusCode, body)
		}
	}
	emails := map[string]string{}
	for email, id := range acked.accounts {
		emails[id] = email
	}
	for kvk, id := range acked.links {
		var org caddymodule.OrgSummary
		if err := getAdminJSON(client, "http://"+s.admin+"/wijgate/orgs/"+kvk, &org); err != nil {
			t.Errorf("acknowledged link of %s to %s: %v", id, kvk, err)
			continue
		}
		if len(org.Members) != 1 || org.Members[0].Email != emails[id] || org.Members[0].Role != "admin" || org.Members[0].Anchor != "eh3" {
			t.Errorf("acknowledged link of %s to %s: members %+v", emails[id], kvk, org.Members)
		}
	}
}

// TestReloadUnderLoadLogsNobodyOut keeps logged-in people requesting a
// guarded route, each over their own keep-alive connections, and one of
// them logging in again and again, while `wijgate reload --force` replaces
// the configuration several times: every request is answered by the app
// for the right person, every login succeeds and its session works.
func TestReloadUnderLoadLogsNobodyOut(t *testing.T) {
	const people, reloads, requestsBetween = 6, 5, 100
	s := newFaultServer(t)
	s.start()
	admin := &http.Client{Timeout: 30 * time.Second}
	type person struct{ email, cookie string }
	var logged []person
	for i := range people {
		email := fmt.Sprintf("reload-%d@example.nl", i)
		if _, err := addAccountByAPI(admin, s.admin, email); err != nil {
			t.Fatal(err)
		}
		cookie, err := newVisitor("http://"+s.site, http.DefaultTransport).login(email)
		if err != nil {
			t.Fatal(err)
		}
		logged = append(logged, person{email, cookie})
	}

	var requests, dropped atomic.Int64
	var failuresMu sync.Mutex
	var failures []string
	progress := make(chan struct{}, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range logged {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := getGuarded(client, "http://"+s.site, p.cookie)
				if err != nil {
					// No answer at all: on Linux a reload binds the new
					// listener with SO_REUSEPORT and closes the old one,
					// and the kernel resets connections still queued on
					// the old socket; idle keep-alive connections are
					// closed too. A browser sends a GET again; so do we,
					// once, and that must be answered.
					dropped.Add(1)
					resp, err = getGuarded(client, "http://"+s.site, p.cookie)
				}
				var failure string
				if err != nil {
					failure = err.Error()
				} else {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || string(body) != p.email {
						failure = fmt.Sprintf("%d %q", resp.StatusCode, body)
					}
				}
				if failure != "" {
					failuresMu.Lock()
					failures = append(failures, fmt.Sprintf("%s after %d requests: %s", p.email, requests.Load(), failure))
					failuresMu.Unlock()
				}
				requests.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	// Meanwhile the first person logs in again and again: writes to the
	// store the old and the new configuration share.
	var newSessions []string
	var loginsAgain atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			cookie, err := newVisitor("http://"+s.site, &http.Transport{DisableKeepAlives: true}).login(logged[0].email)
			var noAnswer *url.Error
			switch {
			case errors.As(err, &noAnswer):
				// Reset before any answer (see above): the person
				// presses the button again.
				loginsAgain.Add(1)
			case err != nil:
				failuresMu.Lock()
				failures = append(failures, "login: "+err.Error())
				failuresMu.Unlock()
			default:
				failuresMu.Lock()
				newSessions = append(newSessions, cookie)
				failuresMu.Unlock()
			}
		}
	})
	// waitRequests returns once n more requests were answered.
	waitRequests := func(n int64) {
		until := requests.Load() + n
		deadline := time.After(60 * time.Second)
		for requests.Load() < until {
			select {
			case <-progress:
			case <-deadline:
				close(stop)
				t.Fatalf("only %d requests in a minute", requests.Load())
			}
		}
	}
	for range reloads {
		waitRequests(requestsBetween)
		if out, err := run(t, "", []string{"XDG_DATA_HOME=" + s.dir, "XDG_CONFIG_HOME=" + s.dir},
			"reload", "--config", s.caddyfile, "--adapter", "caddyfile", "--address", s.admin, "--force"); err != nil {
			close(stop)
			t.Fatalf("wijgate reload: %v\n%s", err, out)
		}
	}
	waitRequests(requestsBetween)
	close(stop)
	wg.Wait()
	t.Logf("%d reloads, %d guarded requests from %d sessions, %d connections reset without an answer and sent again; %d logins, %d reset and made again; %d failed",
		reloads, requests.Load(), people, dropped.Load(), len(newSessions), loginsAgain.Load(), len(failures))
	if len(newSessions) == 0 {
		t.Error("no login succeeded during the reloads")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, cookie := range newSessions {
		resp, err := getGuarded(client, "http://"+s.site, cookie)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != logged[0].email {
			failures = append(failures, fmt.Sprintf("a session made during the reloads: %d %q", resp.StatusCode, body))
		}
	}
	if len(failures) > 0 {
		t.Fatalf("requests failed during reloads, the first:\n%s", strings.Join(failures[:min(len(failures), 10)], "\n"))
	}
	s.stop()
}

// getGuarded requests the guarded route at base with a session cookie.
func getGuarded(client *http.Client, base, cookie string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/app/", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Cookie", cookie)
	return client.Do(req)
}
