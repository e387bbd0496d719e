package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// addAccount runs `wijgate accounts add` against the running server's
// admin API, with the password on stdin, as an operator would.
func addAccount(bin, runDir, adminAddr, email, name, password string) (string, error) {
	cmd := exec.Command(bin, "accounts", "add", "--email", email, "--name", name, "--address", adminAddr)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(runDir, "xdg"), "XDG_CONFIG_HOME="+filepath.Join(runDir, "xdg-config"))
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("wijgate accounts add: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// loginClient talks to the portal as a browser would over plain HTTP on
// loopback: wijgate's cookies are Secure, so it keeps and sends them
// itself instead of through a cookie jar.
type loginClient struct {
	base   string
	client *http.Client
	csrf   string // the anti-forgery cookie and form token (the same value)
}

func newLoginClient(addr string) *loginClient {
	return &loginClient{
		base: "http://" + addr,
		client: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
		},
	}
}

// loginForm fetches GET /login and keeps its anti-forgery token and cookie.
func (c *loginClient) loginForm() error {
	req, _ := http.NewRequest(http.MethodGet, c.base+"/login", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /login: status %d", resp.StatusCode)
	}
	m := csrfField.FindSubmatch(body)
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-wijgate_csrf" {
			cookie = ck.Value
		}
	}
	if m == nil || cookie == "" || string(m[1]) != cookie {
		return errors.New("GET /login: no anti-forgery token and cookie")
	}
	c.csrf = cookie
	return nil
}

// loginResult is one POST /login.
type loginResult struct {
	status  int
	session string // the new session cookie's value, on success
	latency time.Duration
	err     error
}

// login posts the login form. clientIP, when set, is sent as
// X-Forwarded-For (the server trusts loopback as a proxy).
func (c *loginClient) login(email, password, clientIP string) loginResult {
	form := url.Values{"email": {email}, "password": {password}, "csrf": {c.csrf}}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Cookie", "__Host-wijgate_csrf="+c.csrf)
	if clientIP != "" {
		req.Header.Set("X-Forwarded-For", clientIP)
	}
	t0 := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return loginResult{err: err, latency: time.Since(t0)}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r := loginResult{status: resp.StatusCode, latency: time.Since(t0)}
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName && ck.Value != "" {
			r.session = ck.Value
		}
	}
	return r
}

// realLogin logs in through the portal's form and returns the session
// cookie's value. clientIP, when set, is the address the login comes from
// (see login).
func realLogin(addr, email, password, clientIP string) (string, error) {
	c := newLoginClient(addr)
	if err := c.loginForm(); err != nil {
		return "", err
	}
	r := c.login(email, password, clientIP)
	if r.err != nil {
		return "", r.err
	}
	if r.status != http.StatusSeeOther || r.session == "" {
		return "", fmt.Errorf("POST /login: status %d, session cookie %t", r.status, r.session != "")
	}
	return r.session, nil
}

// checkGuarded sends one guarded request with the cookie, over the load
// generator's own HTTP code, and expects 200.
func checkGuarded(addr, cookie string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(buildRequest(requestOpts{host: addr, path: "/g/check", accept: "application/json", cookie: cookie})); err != nil {
		return err
	}
	status, _, err := readResponse(bufio.NewReader(conn))
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("guarded request with a fresh session: status %d", status)
	}
	return nil
}

// stormConfig is a login storm: a fixed rate of POST /login, alternating a
// wrong and a right password.
type stormConfig struct {
	rate          int // logins per second
	wrongEmails   func(i int) string
	rightEmails   func(i int) string
	password      string
	distinctAddrs bool // each attempt from its own client address
}

// stormStats counts a storm's outcomes.
type stormStats struct {
	Attempts int `json:"attempts"`
	// Outcomes by status: 303 logged in, 401 wrong password, 429 refused
	// by login regulation, 503 no hashing slot within 5 s.
	Statuses map[string]int `json:"statuses"`
	Errors   int            `json:"errors"`
	// RightOK and WrongRejected count attempts that got the answer their
	// password deserves.
	RightOK       int `json:"right_logged_in"`
	WrongRejected int `json:"wrong_rejected"`
	Refused       int `json:"refused_429"`
	Busy          int `json:"busy_503"`
	// MaxInFlight is the most logins the client had waiting at once;
	// StartedBehind counts attempts started while at least as many others
	// were in flight as the server has hashing slots (one per CPU), so
	// they probably queued for a slot.
	MaxInFlight   int           `json:"max_in_flight"`
	StartedBehind int           `json:"started_behind_hash_slots"`
	P50           time.Duration `json:"p50_ns"`
	P99           time.Duration `json:"p99_ns"`
	Max           time.Duration `json:"max_ns"`
	// P50Hashed and P99Hashed are over the attempts that were not refused
	// (so ran argon2id).
	P50Hashed time.Duration `json:"p50_hashed_ns"`
	P99Hashed time.Duration `json:"p99_hashed_ns"`
}

// storm runs logins at a fixed rate until ctx ends. Attempts are started
// on schedule whether or not earlier ones have answered (an open loop),
// so a slow server gets queued work, as it would from real people.
type storm struct {
	cfg     stormConfig
	client  *loginClient
	slots   int
	mu      sync.Mutex
	results []loginResult
	behind  int
	maxIn   int
	in      atomic.Int64
	n       int
	wg      sync.WaitGroup
}

func newStorm(addr string, cfg stormConfig, slots int) (*storm, error) {
	c := newLoginClient(addr)
	if err := c.loginForm(); err != nil {
		return nil, err
	}
	return &storm{cfg: cfg, client: c, slots: slots}, nil
}

// run fires logins until ctx is done, then waits for those in flight.
func (s *storm) run(ctx context.Context) {
	t := time.NewTicker(time.Second / time.Duration(s.cfg.rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.wg.Wait()
			return
		case <-t.C:
		}
		i := s.n
		s.n++
		right := i%2 == 1
		email := s.cfg.wrongEmails(i / 2)
		password := "wrong-" + s.cfg.password
		if right {
			email, password = s.cfg.rightEmails(i/2), s.cfg.password
		}
		var ip string
		if s.cfg.distinctAddrs {
			ip = fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255+1)
		}
		inflight := int(s.in.Add(1))
		s.mu.Lock()
		if inflight-1 >= s.slots {
			s.behind++
		}
		s.maxIn = max(s.maxIn, inflight)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			r := s.client.login(email, password, ip)
			s.in.Add(-1)
			if right {
				r.status = -r.status // mark the right ones for the tally
			}
			s.mu.Lock()
			s.results = append(s.results, r)
			s.mu.Unlock()
		}()
	}
}

func (s *storm) stats() stormStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := stormStats{Statuses: map[string]int{}, MaxInFlight: s.maxIn, StartedBehind: s.behind}
	var all, hashed []int64
	for _, r := range s.results {
		st.Attempts++
		if r.err != nil {
			st.Errors++
			continue
		}
		right := r.status < 0
		status := max(r.status, -r.status)
		st.Statuses[fmt.Sprint(status)]++
		all = append(all, int64(r.latency))
		switch {
		case status == http.StatusTooManyRequests:
			st.Refused++
		case status == http.StatusServiceUnavailable:
			st.Busy++
		default:
			hashed = append(hashed, int64(r.latency))
		}
		if right && status == http.StatusSeeOther && r.session != "" {
			st.RightOK++
		}
		if !right && status == http.StatusUnauthorized {
			st.WrongRejected++
		}
	}
	slices.Sort(all)
	slices.Sort(hashed)
	st.P50, st.P99 = pct(all, 0.5), pct(all, 0.99)
	if len(all) > 0 {
		st.Max = time.Duration(all[len(all)-1])
	}
	st.P50Hashed, st.P99Hashed = pct(hashed, 0.5), pct(hashed, 0.99)
	return st
}
