package main

// PostgreSQL rows. At each of Settings.PGSizes, once the badger server of
// that size has stopped, the seeded badger store is copied into a
// PostgreSQL database (caddymodule.CopyStore, what `wijgate store copy`
// does; cookie keys included, so the seeded cookies stay valid), and
// servers whose storage is that database are measured as the badger ones
// are. At the first such size also: the guard overhead with the real
// login, and how long a session ended or an account disabled on one
// server takes to be refused by another on the same database.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule"
	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// database is the run's PostgreSQL server, started on first use and
// stopped on the way out, also on an interrupt.
var database struct {
	mu  sync.Mutex
	srv *pgtest.Server
	url string
	// pidFile is the postmaster's, whose first line is its process ID.
	pidFile string
}

// databaseURL starts the server and creates the run's database, once.
func databaseURL() (string, error) {
	database.mu.Lock()
	defer database.mu.Unlock()
	if database.srv != nil {
		return database.url, nil
	}
	srv, err := pgtest.Start()
	if err != nil {
		return "", err
	}
	url, err := srv.NewDatabase()
	if err != nil {
		return "", errors.Join(err, srv.Close())
	}
	u, err := neturl.Parse(url)
	if err != nil {
		return "", errors.Join(err, srv.Close())
	}
	database.srv, database.url = srv, url
	// pgtest keeps the socket (the URL's host) next to the data folder.
	database.pidFile = filepath.Join(u.Query().Get("host"), "data", "postmaster.pid")
	return url, nil
}

// databaseCPU is the CPU the run's PostgreSQL has used: the postmaster's
// and that of the processes it started (one per connection, and its
// workers); 0 while none runs. Processes that ended take theirs along,
// but the servers' connections last as long as the servers.
func databaseCPU() time.Duration {
	database.mu.Lock()
	pidFile := database.pidFile
	database.mu.Unlock()
	if pidFile == "" {
		return 0
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0
	}
	total, _ := procCPU(postmaster)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || procParent(pid) != postmaster {
			continue
		}
		if d, err := procCPU(pid); err == nil {
			total += d
		}
	}
	return total
}

// stopDatabase stops the PostgreSQL server, if one was started, and
// removes its folder.
func stopDatabase() {
	database.mu.Lock()
	defer database.mu.Unlock()
	if database.srv == nil {
		return
	}
	if err := database.srv.Close(); err != nil {
		logf("stopping PostgreSQL: %v", err)
	}
	database.srv, database.pidFile = nil, ""
}

// postgresAt measures size n on PostgreSQL. A failure is recorded and
// ends the PostgreSQL rows, not the badger ones.
func (b *bench) postgresAt(n int) {
	if err := b.postgresSize(n); err != nil {
		logf("postgres %d failed: %v", n, err)
		b.res.Errors = append(b.res.Errors, fmt.Sprintf("postgres %d: %v", n, err))
		b.s.Postgres, b.pgFailed = false, true
	}
	stopServers()
}

func (b *bench) postgresSize(n int) error {
	url, err := databaseURL()
	if err != nil {
		return err
	}
	pg := &b.res.Postgres
	b.clock.next(fmt.Sprintf("pg-copy-%d", n))
	logf("postgres %d: copying the badger store into PostgreSQL", n)
	t0 := time.Now()
	report, err := caddymodule.CopyStore(context.Background(), b.badgerDir(), url, caddymodule.CopyOptions{Force: true})
	if err != nil {
		return fmt.Errorf("copying the store: %w", err)
	}
	c := copyResult{Sessions: n, Duration: time.Since(t0), Kinds: map[string]int{}}
	for _, k := range report.Kinds {
		c.Kinds[string(k.Kind)] = k.Copied
		c.Records += k.Copied
	}
	c.RecordsPerSecond = float64(c.Records) / c.Duration.Seconds()
	if c.DatabaseBytes, err = databaseSize(url); err != nil {
		return err
	}
	pg.Copies = append(pg.Copies, c)
	logf("postgres %d: copied %d records in %.1f s (%.0f/s); database %d MiB", n, c.Records, c.Duration.Seconds(), c.RecordsPerSecond, c.DatabaseBytes>>20)

	if len(pg.Sizes) == 0 && b.s.Overhead {
		if err := b.postgresOverhead(url); err != nil {
			return err
		}
	}
	sz := &scaleSize{Sessions: n, StoreAllocated: c.DatabaseBytes}
	if err := b.measureSize(sz, fmt.Sprintf("pg-scale-%d", n), url); err != nil {
		return err
	}
	pg.Sizes = append(pg.Sizes, sz)
	if sz.StoreAllocatedAfter, err = databaseSize(url); err != nil {
		return err
	}
	if len(pg.Propagation) == 0 {
		return b.propagation(url, n)
	}
	return nil
}

// databaseSize is what PostgreSQL says the database takes on disk.
func databaseSize(url string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, pgstore.Options{URL: url})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	return st.Size()
}

// postgresOverhead runs the plain and guarded rounds against a server on
// the database, with a session from the real login (the operator's
// account came along in the copy).
func (b *bench) postgresOverhead(url string) error {
	b.clock.next("pg-overhead")
	srv, err := b.startServer("pg-overhead", url)
	if err != nil {
		return err
	}
	// From an address of its own: the storm's "one client address" has
	// locked 127.0.0.1 out of logging in, and the lock came along in the
	// copy (login regulation counts per client address).
	cookie, err := realLogin(srv.addr, adminEmail, adminPassword, pgLoginAddress)
	if err != nil {
		return fmt.Errorf("real login on PostgreSQL: %w", err)
	}
	if err := checkGuarded(srv.addr, cookie); err != nil {
		return err
	}
	loads := []*load{
		{name: "plain", status: 200, reqs: [][]byte{buildRequest(requestOpts{host: srv.addr, path: "/plain/app", accept: "application/json", cookie: cookie})}},
		{name: "guarded", status: 200, reqs: [][]byte{buildRequest(requestOpts{host: srv.addr, path: "/g/app", accept: "application/json", cookie: cookie})}},
	}
	be0, err := fetchBackendStats(b.backendAddr)
	if err != nil {
		return err
	}
	o := &b.res.Postgres.Overhead
	if o.Segments, err = b.interleaved(srv, loads); err != nil {
		return err
	}
	be1, err := fetchBackendStats(b.backendAddr)
	if err != nil {
		return err
	}
	o.Backend = be1.minus(be0)
	o.Memory, _ = procMemory(srv.pid())
	if err := checkSegments(o.Segments); err != nil {
		return err
	}
	if g := o.Backend; g.GuardedIdentified != g.Guarded || g.ForgedLeaks > 0 || g.CookieLeaks > 0 {
		return fmt.Errorf("the upstream got %d guarded requests, %d with the guard's identity, %d with a forged identity, %d with the session cookie",
			g.Guarded, g.GuardedIdentified, g.ForgedLeaks, g.CookieLeaks)
	}
	if b.s.Profile {
		b.profile(srv, loads[1], "pg-overhead-guarded")
	}
	return b.stopServer(srv)
}

// pgLoginAddress is the client address (X-Forwarded-For; loopback is a
// trusted proxy) of the login on PostgreSQL, one the storm never used
// (TEST-NET-1).
const pgLoginAddress = "192.0.2.13"

// propagationTimeout is how long server B is polled after a change on A
// before the sample counts as not propagated.
const propagationTimeout = 5 * time.Second

// propagation starts two servers, A and B, on the database. For each
// sample a seeded session is used on B until B has it cached, then ended
// on A (POST /logout with its cookie), or its account disabled through A's
// admin API; B is then asked with the same cookie, one request after the
// other, until it refuses. A sample is the time from A's answer to B's
// first refusal (the refusing answer's arrival).
func (b *bench) propagation(url string, n int) error {
	b.clock.next("pg-propagation")
	a, err := b.startServer("pg-propagation-a", url)
	if err != nil {
		return err
	}
	other, err := b.startServer("pg-propagation-b", url)
	if err != nil {
		return err
	}
	form := newLoginClient(a.addr)
	if err := form.loginForm(); err != nil {
		return err
	}
	probe := &prober{addr: other.addr}
	defer probe.close()
	samples := min(b.s.PropagationSamples, n/2)
	changes := []struct {
		name  string
		first int // seeded account of the first sample, counting down
		apply func(i int, cookie string) error
	}{
		{"session ended (POST /logout on A)", n - 1, func(_ int, cookie string) error { return form.logout(cookie) }},
		{"account disabled (A's admin API)", n - 1 - samples, func(i int, _ string) error { return disableAccount(a.adminAddr, seedEmail(i)) }},
	}
	for _, ch := range changes {
		run := propagationRun{Change: ch.name, Statuses: map[string]int{}}
		logf("propagation: %s, %d samples, B polled until it refuses", ch.name, samples)
		for k := range samples {
			i := ch.first - k
			cookie, err := b.seeder.cookie(i)
			if err != nil {
				return err
			}
			req := buildRequest(requestOpts{host: other.addr, path: "/g/app", accept: "application/json", cookie: cookie})
			// Twice: the first is a cache miss, the second is answered
			// from what B now holds.
			for range 2 {
				if st, err := probe.status(req); err != nil || st != http.StatusOK {
					return fmt.Errorf("server B before the change (account %d): status %d, %v", i, st, err)
				}
			}
			if err := ch.apply(i, cookie); err != nil {
				return fmt.Errorf("%s (account %d): %w", ch.name, i, err)
			}
			changed := time.Now()
			for {
				st, err := probe.status(req)
				if err != nil {
					return fmt.Errorf("server B after the change (account %d): %w", i, err)
				}
				run.Polls++
				if st != http.StatusOK {
					run.Samples = append(run.Samples, time.Since(changed))
					run.Statuses[strconv.Itoa(st)]++
					break
				}
				if time.Since(changed) > propagationTimeout {
					run.TimedOut++
					break
				}
			}
		}
		run.summarize()
		logf("  p50 %.3f ms, p99 %.3f ms, max %.3f ms over %d; %d not refused within %v; B answered %v", ms(run.P50), ms(run.P99), ms(run.Max),
			run.N, run.TimedOut, propagationTimeout, run.Statuses)
		b.res.Postgres.Propagation = append(b.res.Postgres.Propagation, run)
	}
	return errors.Join(b.stopServer(a), b.stopServer(other))
}

// logout posts the logout form with the session cookie, as the browser
// holding it would, and expects the redirect to the login page.
func (c *loginClient) logout(session string) error {
	req, _ := http.NewRequest(http.MethodPost, c.base+"/logout", strings.NewReader("csrf="+c.csrf))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Cookie", "__Host-wijgate_csrf="+c.csrf+"; "+cookieName+"="+session)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("POST /logout: status %d", resp.StatusCode)
	}
	return nil
}

// disableAccount disables an account through the admin API, as
// `wijgate accounts disable` does against a running server.
func disableAccount(adminAddr, email string) error {
	body, _ := json.Marshal(caddymodule.AccountRequest{Email: email})
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Post("http://"+adminAddr+"/wijgate/accounts/disable", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /wijgate/accounts/disable: status %d", resp.StatusCode)
	}
	return nil
}

// prober sends one serialised request at a time over a kept-alive
// connection, opening a new one when the server closes it.
type prober struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (p *prober) status(req []byte) (int, error) {
	if p.conn == nil {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		p.conn, p.br = c, bufio.NewReader(c)
	}
	_ = p.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.conn.Write(req); err != nil {
		p.close()
		return 0, err
	}
	st, keep, err := readResponse(p.br)
	if err != nil || !keep {
		p.close()
	}
	return st, err
}

func (p *prober) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// postgresResults are the PostgreSQL rows.
type postgresResults struct {
	Copies []copyResult `json:"copies"`
	// Overhead has the plain and guarded loads only; BadgerRatio is the
	// badger server's guarded/plain of this run, RatioDifference
	// PostgreSQL's minus badger's.
	Overhead        overheadResults  `json:"overhead"`
	BadgerRatio     float64          `json:"badger_guarded_plain_ratio"`
	RatioDifference float64          `json:"guarded_plain_ratio_difference"`
	Sizes           []*scaleSize     `json:"sizes"`
	Propagation     []propagationRun `json:"propagation"`
}

// copyResult is one copy of the badger store into the database. On
// PostgreSQL, a scale size's store_bytes_on_disk is the database's size.
type copyResult struct {
	Sessions         int            `json:"sessions"`
	Records          int            `json:"records"`
	Kinds            map[string]int `json:"records_by_kind"`
	Duration         time.Duration  `json:"duration_ns"`
	RecordsPerSecond float64        `json:"records_per_second"`
	DatabaseBytes    int64          `json:"database_bytes"`
}

// propagationRun is one kind of change's samples, each the time from A's
// answer to B's first refusal.
type propagationRun struct {
	Change  string          `json:"change"`
	Samples []time.Duration `json:"samples_ns"`
	N       int             `json:"n"`
	P50     time.Duration   `json:"p50_ns"`
	P99     time.Duration   `json:"p99_ns"`
	Max     time.Duration   `json:"max_ns"`
	// Polls is how many requests B answered after the changes, refusals
	// included; TimedOut the samples B still accepted after
	// propagationTimeout.
	Polls    int64          `json:"polls"`
	TimedOut int            `json:"not_refused_within_timeout"`
	Statuses map[string]int `json:"refusal_statuses"`
}

func (r *propagationRun) summarize() {
	sorted := make([]int64, len(r.Samples))
	for i, d := range r.Samples {
		sorted[i] = int64(d)
	}
	slices.Sort(sorted)
	r.N = len(sorted)
	r.P50, r.P99 = pct(sorted, 0.5), pct(sorted, 0.99)
	if r.N > 0 {
		r.Max = time.Duration(sorted[r.N-1])
	}
}
