package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The peers are other projects' gateways, measured by make bench in front
// of the same upstream, with a real logged-in session each, interleaved
// with the plain and guarded rounds. They are built from the Go module
// proxy at pinned versions into the user's cache directory, named by
// version, so that later runs and fresh clones on the machine reuse them
// (the first build takes minutes; make clean leaves them).
const (
	xcaddyVersion        = "v0.4.5"
	caddySecurityVersion = "v1.1.64"
	oauth2ProxyVersion   = "v7.15.6"

	peerUser     = "bench"
	peerEmail    = "bench@bench.wij-techniek.nl"
	peerPassword = "correct horse battery staple peer"
	// peerPath is the peers' route; the backend counts it as plain.
	peerPath = "/peer/app"
)

// peerBuild is how a peer's binary was had.
type peerBuild struct {
	Binary string `json:"binary"`
	// Seconds is the build's time in this run; 0 when it was cached.
	Seconds float64 `json:"build_seconds"`
	Cached  bool    `json:"cached"`
	// Error is the build's error line when it failed.
	Error string `json:"error,omitempty"`
	Log   string `json:"log,omitempty"`
}

// peerRun is one peer in the overhead rounds.
type peerRun struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Config  string    `json:"config"`
	Build   peerBuild `json:"build"`
	// Error says why the peer was not measured.
	Error string `json:"error,omitempty"`
	// CookieBytes is the size of the session cookie its login set.
	CookieBytes int          `json:"session_cookie_bytes,omitempty"`
	Summary     *loadSummary `json:"summary,omitempty"`
	// PlainRatio is the median over rounds of its req/s over plain's in
	// the same round, as guarded/plain is for wijgate.
	PlainRatio  float64       `json:"plain_ratio,omitempty"`
	RatioRounds []float64     `json:"plain_ratio_rounds,omitempty"`
	P99Added    time.Duration `json:"p99_added_ns,omitempty"`
	Memory      memory        `json:"server_memory"`

	srv *server
}

// buildPeers builds both peers at once (or finds them built).
func (b *bench) buildPeers() {
	dir, err := peersDir(b.peersDir, b.outDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		b.res.Peers = append(b.res.Peers,
			&peerRun{Name: "caddy-security", Error: err.Error()}, &peerRun{Name: "oauth2-proxy", Error: err.Error()})
		return
	}
	caddyVersion, err := b.caddyVersion()
	cs := &peerRun{Name: "caddy-security", Version: fmt.Sprintf("%s (xcaddy %s, Caddy %s)", caddySecurityVersion, xcaddyVersion, caddyVersion)}
	op := &peerRun{Name: "oauth2-proxy", Version: oauth2ProxyVersion}
	b.res.Peers = append(b.res.Peers, cs, op)
	if err != nil {
		cs.Build.Error = err.Error()
	}
	var wg sync.WaitGroup
	if err == nil {
		wg.Go(func() {
			cs.Build = cachedBuild(dir, fmt.Sprintf("caddy-security-%s-caddy-%s", caddySecurityVersion, caddyVersion), func(bin string, log io.Writer) error {
				xcaddy := filepath.Join(dir, "xcaddy-"+xcaddyVersion)
				if _, err := os.Stat(xcaddy); err != nil {
					if err := goInstall("github.com/caddyserver/xcaddy/cmd/xcaddy@"+xcaddyVersion, xcaddy, log); err != nil {
						return err
					}
				}
				cmd := exec.Command(xcaddy, "build", caddyVersion, "--with", "github.com/greenpau/caddy-security@"+caddySecurityVersion, "--output", bin)
				cmd.Stdout, cmd.Stderr = log, log
				return cmd.Run()
			})
		})
	}
	wg.Go(func() {
		op.Build = cachedBuild(dir, "oauth2-proxy-"+oauth2ProxyVersion, func(bin string, log io.Writer) error {
			return goInstall("github.com/oauth2-proxy/oauth2-proxy/v7@"+oauth2ProxyVersion, bin, log)
		})
	})
	wg.Wait()
	for _, p := range b.res.Peers {
		switch {
		case p.Build.Error != "":
			p.Error = "build failed: " + p.Build.Error
			logf("%s: %s", p.Name, p.Error)
		case p.Build.Cached:
			logf("%s: cached %s", p.Name, p.Build.Binary)
		default:
			logf("%s: built %s in %.0f s", p.Name, p.Build.Binary, p.Build.Seconds)
		}
	}
}

// peersDir is where the peers are built: flagged, else in the user's
// cache directory; without one (no HOME), in the run's own out directory.
func peersDir(flagged, outDir string) (string, error) {
	if flagged != "" {
		return filepath.Abs(flagged)
	}
	if cache, err := os.UserCacheDir(); err == nil {
		return filepath.Join(cache, "wijgate-bench", "peers"), nil
	}
	return filepath.Join(outDir, "peers"), nil
}

// caddyVersion is the Caddy our module builds with, so that the
// caddy-security peer runs on the same one.
func (b *bench) caddyVersion() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/caddyserver/caddy/v2")
	cmd.Dir = b.root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m github.com/caddyserver/caddy/v2: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// cachedBuild runs build into dir/name unless that binary exists; the
// build's output goes to dir/name.log.
func cachedBuild(dir, name string, build func(bin string, log io.Writer) error) peerBuild {
	bin := filepath.Join(dir, name)
	r := peerBuild{Binary: bin, Log: bin + ".log"}
	if _, err := os.Stat(bin); err == nil {
		r.Cached = true
		return r
	}
	log, err := os.Create(r.Log)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer log.Close()
	var out bytes.Buffer
	t0 := time.Now()
	// Built beside the binary and renamed, so that a build stopped half
	// way is not taken for a finished one next time.
	err = build(bin+".part", io.MultiWriter(log, &out))
	r.Seconds = time.Since(t0).Seconds()
	if err == nil {
		err = os.Rename(bin+".part", bin)
	}
	if err != nil {
		r.Error = errorLine(out.String(), err)
	}
	return r
}

// goInstall builds a main package at a version into bin.
func goInstall(pkgAtVersion, bin string, log io.Writer) error {
	gobin, err := os.MkdirTemp(filepath.Dir(bin), "gobin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gobin)
	cmd := exec.Command("go", "install", pkgAtVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return err
	}
	entries, err := os.ReadDir(gobin)
	if err != nil || len(entries) != 1 {
		return fmt.Errorf("go install %s left %d files (%v)", pkgAtVersion, len(entries), err)
	}
	return os.Rename(filepath.Join(gobin, entries[0].Name()), bin)
}

// errorLine picks the line of a failed build's output that says why:
// the last one that mentions an error, else the last one.
func errorLine(out string, err error) string {
	var last, lastErr string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		last = line
		if strings.Contains(strings.ToLower(line), "error") || strings.Contains(line, "cannot") || strings.Contains(line, "undefined") {
			lastErr = line
		}
	}
	switch {
	case lastErr != "":
		return lastErr
	case last != "":
		return last + " (" + err.Error() + ")"
	}
	return err.Error()
}

// startPeers starts every built peer in front of the backend and logs in
// through its own login; a peer that fails says why in its row.
func (b *bench) startPeers() []*load {
	var loads []*load
	for _, p := range b.res.Peers {
		if p.Error != "" {
			continue
		}
		var cookie string
		var err error
		switch p.Name {
		case "caddy-security":
			p.srv, cookie, err = b.startCaddySecurity(p)
		case "oauth2-proxy":
			p.srv, cookie, err = b.startOAuth2Proxy(p)
		}
		if err == nil {
			err = checkPeer(p.srv.addr, cookie)
		}
		if err != nil {
			p.Error = err.Error()
			logf("%s: %v", p.Name, err)
			continue
		}
		p.CookieBytes = len(cookie)
		name, value, _ := strings.Cut(cookie, "=")
		logf("%s: pid %d on %s, logged in; session cookie %s of %d bytes", p.Name, p.srv.pid(), p.srv.addr, name, len(value))
		loads = append(loads, &load{name: p.Name, status: 200, at: p.srv, reqs: [][]byte{
			buildRequest(requestOpts{host: p.srv.addr, path: peerPath, accept: "application/json", peerCookie: cookie}),
		}})
	}
	return loads
}

// stopPeers records the peers' memory and stops them.
func (b *bench) stopPeers() {
	for _, p := range b.res.Peers {
		if p.srv == nil {
			continue
		}
		p.Memory, _ = procMemory(p.srv.pid())
		if err := p.srv.stop(10 * time.Second); err != nil {
			logf("%s: %v", p.Name, err)
		}
		p.srv = nil
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startCaddySecurity runs Caddy with caddy-security: a local user
// database with one user, a portal that signs the JWT session, and
// `authorize` before reverse_proxy with the claims injected as headers
// and its token cookie stripped, as wijgate strips its own.
func (b *bench) startCaddySecurity(p *peerRun) (*server, string, error) {
	port, err1 := freePort()
	admin, err2 := freePort()
	if err1 != nil || err2 != nil {
		return nil, "", fmt.Errorf("no free port: %v %v", err1, err2)
	}
	dir := filepath.Join(b.runDir, "caddy-security")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(peerPassword), bcrypt.DefaultCost)
	if err != nil {
		return nil, "", err
	}
	p.Config = filepath.Join(dir, "Caddyfile")
	// One shared key signs the session and verifies it.
	key := randomHex(32)
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	grace_period 2s
	security {
		local identity store localdb {
			realm local
			path %s
			user %s {
				name Bench User
				email %s
				password "bcrypt:10:%s" overwrite
				roles authp/user
			}
		}
		authentication portal benchportal {
			crypto key sign-verify %s
			enable identity store localdb
		}
		authorization policy benchpolicy {
			set auth url /auth
			crypto key verify %s
			allow roles authp/user
			inject headers with claims
			enable strip token
		}
	}
}

http://127.0.0.1:%d {
	route /auth* {
		authenticate with benchportal
	}
	route /peer/* {
		authorize with benchpolicy
		reverse_proxy %s
	}
}
`, admin, filepath.Join(dir, "users.json"), peerUser, peerEmail, hash, key, key, port, b.backendAddr)
	if err := os.WriteFile(p.Config, []byte(cfg), 0o644); err != nil {
		return nil, "", err
	}
	ch, err := startChild("caddy-security", filepath.Join(b.runDir, "caddy-security.log"),
		[]string{"XDG_DATA_HOME=" + filepath.Join(dir, "xdg"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg-config")},
		p.Build.Binary, "run", "--config", p.Config, "--adapter", "caddyfile")
	if err != nil {
		return nil, "", err
	}
	s := &server{child: ch, port: port, admin: admin, addr: fmt.Sprintf("127.0.0.1:%d", port), adminAddr: fmt.Sprintf("127.0.0.1:%d", admin)}
	if err := waitHTTP(ch, "http://"+s.addr+"/auth/login", 60*time.Second); err != nil {
		_ = ch.stop(5 * time.Second)
		return nil, "", err
	}
	cookie, err := caddySecurityLogin(s.addr)
	if err != nil {
		_ = ch.stop(5 * time.Second)
		return nil, "", fmt.Errorf("login: %w", err)
	}
	return s, cookie, nil
}

// caddySecurityLogin goes through the portal's login: the user name,
// then the password challenge of the sandbox it opens (the steps its
// login form takes, asked for as JSON), and returns the access token
// cookie it grants.
func caddySecurityLogin(addr string) (string, error) {
	type authResponse struct {
		Authenticated   bool   `json:"authenticated"`
		AccessToken     string `json:"access_token"`
		AccessTokenName string `json:"access_token_name"`
		SandboxID       string `json:"sandbox_id"`
		SandboxSecret   string `json:"sandbox_secret"`
		NextChallenge   string `json:"next_challenge"`
		Message         string `json:"message"`
	}
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(body map[string]string) (authResponse, error) {
		var r authResponse
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/auth/login", bytes.NewReader(js))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return r, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &r); err != nil {
			return r, fmt.Errorf("POST /auth/login: status %d, %.200s", resp.StatusCode, raw)
		}
		return r, nil
	}
	r, err := post(map[string]string{"username": peerUser, "realm": "local"})
	if err != nil {
		return "", err
	}
	for step := 0; step < 3 && !r.Authenticated; step++ {
		if r.NextChallenge != "password" {
			return "", fmt.Errorf("unexpected challenge %q (%s)", r.NextChallenge, r.Message)
		}
		r, err = post(map[string]string{"username": peerUser, "realm": "local", "sandbox_id": r.SandboxID, "sandbox_secret": r.SandboxSecret,
			"challenge_kind": "password", "challenge_response": peerPassword})
		if err != nil {
			return "", err
		}
	}
	if !r.Authenticated || r.AccessToken == "" || r.AccessTokenName == "" {
		return "", fmt.Errorf("not logged in: %s", r.Message)
	}
	return r.AccessTokenName + "=" + r.AccessToken, nil
}

// startOAuth2Proxy runs oauth2-proxy with an htpasswd file as its only
// accounts, a cookie session, the same upstream and request logging off.
// The provider is the default one with placeholder credentials: it is
// never called, as the htpasswd form logs in on its own.
func (b *bench) startOAuth2Proxy(p *peerRun) (*server, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(b.runDir, "oauth2-proxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(peerPassword), bcrypt.DefaultCost)
	if err != nil {
		return nil, "", err
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(peerUser+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{
		"--http-address=" + addr,
		"--upstream=http://" + b.backendAddr + "/",
		"--htpasswd-file=" + htpasswd,
		"--email-domain=*",
		"--client-id=bench", "--client-secret=bench",
		"--cookie-secret=" + randomHex(16),
		"--cookie-secure=false",
		"--request-logging=false",
	}
	p.Config = "oauth2-proxy " + strings.Join(args, " ")
	ch, err := startChild("oauth2-proxy", filepath.Join(b.runDir, "oauth2-proxy.log"), nil, append([]string{p.Build.Binary}, args...)...)
	if err != nil {
		return nil, "", err
	}
	s := &server{child: ch, port: port, addr: addr}
	if err := waitHTTP(ch, "http://"+addr+"/ping", 60*time.Second); err != nil {
		_ = ch.stop(5 * time.Second)
		return nil, "", err
	}
	cookie, err := oauth2ProxyLogin(addr)
	if err != nil {
		_ = ch.stop(5 * time.Second)
		return nil, "", fmt.Errorf("login: %w", err)
	}
	return s, cookie, nil
}

// oauth2ProxyLogin posts the sign-in page's htpasswd form and returns the
// session cookie it sets.
func oauth2ProxyLogin(addr string) (string, error) {
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + addr + "/oauth2/sign_in")
	if err != nil {
		return "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte(`name="password"`)) {
		return "", fmt.Errorf("GET /oauth2/sign_in: status %d, no password form", resp.StatusCode)
	}
	resp, err = client.PostForm("http://"+addr+"/oauth2/sign_in", url.Values{"username": {peerUser}, "password": {peerPassword}, "rd": {peerPath}})
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "_oauth2_proxy" && c.Value != "" {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", fmt.Errorf("POST /oauth2/sign_in: status %d, no session cookie", resp.StatusCode)
}

// checkPeer makes sure the session passes and no session is refused, so
// the rounds measure a logged-in request.
func checkPeer(addr, cookie string) error {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(withCookie bool) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+peerPath, nil)
		req.Header.Set("Accept", "application/json")
		if withCookie {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if st, err := get(true); err != nil || st != http.StatusOK {
		return fmt.Errorf("with the session: status %d, %v", st, err)
	}
	if st, err := get(false); err != nil || st == http.StatusOK {
		return errors.Join(fmt.Errorf("without a session: status %d", st), err)
	}
	return nil
}

// guardHeaders sends the same request through the plain and the guarded
// route and returns the headers the upstream got from the guarded one
// and not from the plain one — the guard's identity headers, with their
// real values — for the same-header-bytes route. The Cookie line differs
// (the guard removes its session cookie) and is left out.
func guardHeaders(backendAddr, addr, cookie string) ([][2]string, error) {
	for _, path := range []string{"/plain/__capture", "/g/__capture"} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Write(buildRequest(requestOpts{host: addr, path: path, accept: "application/json", cookie: cookie}))
		status := 0
		if err == nil {
			status, _, err = readResponse(bufio.NewReader(conn))
		}
		conn.Close()
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d, %v", path, status, err)
		}
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + backendAddr + "/__captured")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var got map[string][]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		return nil, err
	}
	plain := map[string]bool{}
	for _, l := range got["/plain/__capture"] {
		plain[l] = true
	}
	var out [][2]string
	for _, l := range got["/g/__capture"] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || plain[l] || strings.EqualFold(name, "Cookie") {
			continue
		}
		value = strings.TrimSpace(value)
		if strings.ContainsAny(value, "`{}") {
			return nil, fmt.Errorf("header %s: its value cannot be written as a Caddyfile token", name)
		}
		out = append(out, [2]string{name, value})
	}
	if len(out) == 0 {
		return nil, errors.New("the guarded request reached the upstream with no header the plain one lacked")
	}
	return out, nil
}
