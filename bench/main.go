// Command bench measures what the wijgate guard costs next to the plain
// Caddy reverse_proxy it replaces, in one run on one machine:
//
//   - guard overhead: one wijgate process serves a plain reverse_proxy
//     route and a guarded one to the same tiny upstream; a closed-loop load
//     generator on loopback runs them interleaved (A B A B …) with a
//     session made through the real login, plus the redirect and 401 paths;
//   - login storm: guarded traffic with and without 20 logins/s through
//     the real POST /login, half with a wrong password;
//   - scale: the guarded route again after seeding N accounts with
//     sessions straight through the store, with store size and the
//     server's memory next to a plain-only Caddy's;
//   - PostgreSQL: at some of the scale sizes the seeded store is copied
//     into a PostgreSQL database and measured there the same way, with
//     the guard overhead from a real login and how fast a session ended
//     or an account disabled on one server is refused by another;
//   - the same-header-bytes baseline and the peers: plain reverse_proxy
//     setting the guard's headers statically, caddy-security and
//     oauth2-proxy, each in the overhead rounds (see peers.go);
//   - hot-path micro-benchmarks (go test -bench).
//
// It prints a table and writes every figure to bench/results.json.
//
//	go run ./bench -mode full     # make bench (under 15 minutes on 2 cores with the peers built before)
//	go run ./bench -mode quick    # make bench-quick (a smoke check, under 1 minute)
//
// Ratios are comparable across machines; absolute numbers are not.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// settings are a mode's knobs; every one is recorded in the results.
type settings struct {
	Mode        string `json:"mode"`
	Concurrency int    `json:"concurrency"`
	Rounds      int    `json:"rounds"`
	// ScaleRounds are the interleaved rounds per store size (and of the
	// plain-only server); fewer than Rounds keeps make bench under ten
	// minutes with a million accounts.
	ScaleRounds int           `json:"scale_rounds"`
	Round       time.Duration `json:"round_ns"`
	Warm        time.Duration `json:"warmup_ns"`
	StormRounds int           `json:"storm_rounds"`
	StormRound  time.Duration `json:"storm_round_ns"`
	StormRate   int           `json:"storm_logins_per_second"`
	Sizes       []int         `json:"sizes"`
	Hot         int           `json:"hot_sessions"`
	Fill        int           `json:"fill_sessions_max"`
	SeedWorkers int           `json:"seed_workers"`
	BenchTime   string        `json:"micro_benchtime"`
	Micro       bool          `json:"micro"`
	Overhead    bool          `json:"overhead"`
	Storm       bool          `json:"storm"`
	Scale       bool          `json:"scale"`
	Profile     bool          `json:"profile"`
	// Headers is the guarded route's `headers` list; empty means the
	// default (every identity header, the signed assertion included).
	Headers string `json:"guard_headers,omitempty"`
	// Postgres adds the PostgreSQL rows: at each of PGSizes (scale sizes)
	// the badger store is copied into a database and measured there, and
	// PropagationSamples session ends and account disables are timed from
	// one server to another on it.
	Postgres           bool  `json:"postgres"`
	PGSizes            []int `json:"postgres_sizes"`
	PropagationSamples int   `json:"propagation_samples"`
	// Peers adds caddy-security and oauth2-proxy to the overhead rounds
	// (make bench only: their first build takes minutes).
	Peers bool `json:"peers"`
}

func presets(mode string) (settings, error) {
	switch mode {
	case "full":
		return settings{
			Mode: mode, Concurrency: 8, Rounds: 3, ScaleRounds: 2, Round: 5 * time.Second, Warm: time.Second,
			// Two storm rounds per variant and 250 propagation samples
			// (a p99 from the third-largest) keep make bench under 15
			// minutes with the peers' rounds and their first build.
			StormRounds: 2, StormRound: 5 * time.Second, StormRate: 20,
			Sizes: []int{1_000, 100_000, 1_000_000}, Hot: 10_000, Fill: 100_000, SeedWorkers: 8,
			BenchTime: "1s", Micro: true,
			// PostgreSQL at 1M only: its overhead and propagation targets
			// are read at the first PostgreSQL size, and a 100k copy and
			// fill cost two minutes for no target.
			PGSizes: []int{1_000_000}, PropagationSamples: 250,
			Peers: true,
		}, nil
	case "quick":
		return settings{
			Mode: mode, Concurrency: 8, Rounds: 2, ScaleRounds: 2, Round: 800 * time.Millisecond, Warm: 150 * time.Millisecond,
			StormRounds: 1, StormRound: 1500 * time.Millisecond, StormRate: 20,
			Sizes: []int{1_000, 3_000}, Hot: 1_000, Fill: 3_000, SeedWorkers: 8,
			BenchTime: "50ms", Micro: true,
			// The larger quick size: there sessions beyond the hot ones
			// are new to the server, which the new-session figure needs.
			PGSizes: []int{3_000}, PropagationSamples: 20,
		}, nil
	}
	return settings{}, fmt.Errorf("unknown -mode %q: want full or quick", mode)
}

const (
	adminEmail    = "beheerder@bench.wij-techniek.nl"
	adminName     = "Bench Beheerder"
	adminPassword = "correct horse battery staple bench"
	adminKvK      = "12345678"
)

func main() {
	mode := flag.String("mode", "full", "full (make bench) or quick (make bench-quick)")
	listen := flag.String("listen", "", "address for -mode backend (internal)")
	conc := flag.Int("c", 0, "connections of the load generator (default: the mode's)")
	rounds := flag.Int("rounds", 0, "interleaved rounds (default: the mode's)")
	round := flag.Duration("round", 0, "measured time per load and round (default: the mode's)")
	sizes := flag.String("sizes", "", "comma-separated store sizes for the scale phase, e.g. 1000,100000,1000000 (default: the mode's)")
	outDir := flag.String("out", "bench/out", "working directory for binaries, stores and logs")
	peersDir := flag.String("peers-dir", "", "where the peers are built and kept between runs and clones (default: wijgate-bench/peers in the user's cache directory)")
	resultsPath := flag.String("results", "bench/results.json", "where to write the results")
	profile := flag.Bool("profile", false, "also save pprof CPU and heap profiles of the server (extra segments, not in the figures)")
	micro := flag.Bool("micro", true, "run the go test micro-benchmarks")
	overhead := flag.Bool("overhead", true, "run the guard-overhead rounds")
	storm := flag.Bool("storm", true, "run the login storm")
	scale := flag.Bool("scale", true, "run the scale phase")
	bin := flag.String("wijgate", "", "use this wijgate binary instead of building one")
	headers := flag.String("headers", "", "the guarded route's `headers` facts, e.g. \"id email\" (default: all, with the signed assertion)")
	postgres := flag.Bool("postgres", true, "also measure on PostgreSQL (during the scale phase)")
	peers := flag.Bool("peers", true, "also measure caddy-security and oauth2-proxy in the overhead rounds (default: in -mode full only)")
	pgSizes := flag.String("pg-sizes", "", "comma-separated scale sizes also measured on PostgreSQL (default: the mode's that are in -sizes, else the largest)")
	flag.Parse()

	if *mode == "backend" {
		fmt.Fprintln(os.Stderr, runBackend(*listen))
		os.Exit(1)
	}
	s, err := presets(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *conc > 0 {
		s.Concurrency = *conc
	}
	if *rounds > 0 {
		s.Rounds, s.StormRounds, s.ScaleRounds = *rounds, *rounds, *rounds
	}
	if *round > 0 {
		s.Round, s.StormRound = *round, *round
	}
	if *sizes != "" {
		s.Sizes = parseSizes("-sizes", *sizes)
	}
	if *pgSizes != "" {
		s.PGSizes = parseSizes("-pg-sizes", *pgSizes)
	}
	s.PGSizes = slices.DeleteFunc(s.PGSizes, func(n int) bool { return !slices.Contains(s.Sizes, n) })
	if len(s.PGSizes) == 0 {
		s.PGSizes = []int{slices.Max(s.Sizes)}
	}
	s.Micro, s.Overhead, s.Storm, s.Scale, s.Profile, s.Headers = *micro, *overhead, *storm, *scale, *profile, *headers
	s.Postgres = *postgres
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "peers" {
			s.Peers = *peers
		}
	})
	s.Peers = s.Peers && s.Overhead

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted; stopping the servers")
		stopAllChildren()
		stopDatabase()
		os.Exit(130)
	}()

	b := &bench{s: s, outDir: *outDir, peersDir: *peersDir, resultsPath: *resultsPath, bin: *bin}
	code := b.run()
	stopAllChildren()
	stopDatabase()
	os.Exit(code)
}

// parseSizes reads a comma-separated list of store sizes.
func parseSizes(flagName, list string) []int {
	var sizes []int
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "%s: bad size %q\n", flagName, f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// bench is one run.
type bench struct {
	s           settings
	root        string // the module root
	outDir      string
	peersDir    string
	runDir      string
	resultsPath string
	bin         string
	// pgFailed: the PostgreSQL rows stopped on an error (the badger ones
	// went on); the run fails.
	pgFailed    bool
	backend     *child
	backendAddr string
	seeder      *seeder
	// sameHeaders are the headers the guarded route sent the upstream,
	// once read; every later server serves them on /same-headers/.
	sameHeaders [][2]string
	res         results
	start       time.Time
	clock       phaseClock
}

var started = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %5.1fs: "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
}

func (b *bench) run() int {
	b.start = time.Now()
	b.res = newResults(b.s)
	b.clock.next("setup")
	steps := []struct {
		name string
		fn   func() error
	}{
		{"setup", b.setup},
		{"overhead", b.overhead},
		{"scale", b.scale},
	}
	if !b.s.Scale {
		steps = steps[:2]
	}
	failed := false
	for _, st := range steps {
		if err := st.fn(); err != nil {
			logf("%s failed: %v", st.name, err)
			b.res.Errors = append(b.res.Errors, st.name+": "+err.Error())
			failed = true
			if st.name == "setup" {
				break
			}
		}
		stopServers()
	}
	if b.s.Micro && !failed {
		b.clock.next("micro-benchmarks")
		logf("micro-benchmarks: go test -bench %s", microPattern)
		m := runMicro(b.root, b.s.BenchTime)
		b.res.Micro = &m
		if m.Error != "" {
			b.res.Errors = append(b.res.Errors, "micro-benchmarks: "+m.Error)
			failed = true
		}
	}
	failed = failed || b.pgFailed
	if b.backend != nil {
		_ = b.backend.stop(5 * time.Second)
	}
	b.res.Elapsed = time.Since(b.start)
	b.res.Phases = b.clock.end()
	b.res.finish()
	b.res.printTable(os.Stdout)
	if err := b.res.write(b.resultsPath); err != nil {
		logf("writing %s: %v", b.resultsPath, err)
		return 1
	}
	logf("results written to %s (%.0f s)", b.resultsPath, b.res.Elapsed.Seconds())
	if failed {
		return 1
	}
	return 0
}

// setup finds the module, builds wijgate and starts the backend.
func (b *bench) setup() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	b.root = root
	if !filepath.IsAbs(b.outDir) {
		b.outDir = filepath.Join(root, b.outDir)
	}
	if !filepath.IsAbs(b.resultsPath) {
		b.resultsPath = filepath.Join(root, b.resultsPath)
	}
	b.runDir = filepath.Join(b.outDir, "run")
	if err := os.RemoveAll(b.runDir); err != nil {
		return err
	}
	if err := os.MkdirAll(b.runDir, 0o755); err != nil {
		return err
	}
	b.res.describe(root)

	if b.bin == "" {
		b.bin = filepath.Join(b.outDir, "wijgate")
		b.clock.next("build wijgate")
		logf("building %s", b.bin)
		t0 := time.Now()
		cmd := exec.Command("go", "build", "-o", b.bin, "./cmd/wijgate")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/wijgate: %w", err)
		}
		b.res.BuildSeconds = time.Since(t0).Seconds()
	}
	if b.s.Peers {
		b.clock.next("build the peers (nothing when built before)")
		b.buildPeers()
	}
	b.clock.next("start the upstream, hash the seed password")

	self, err := os.Executable()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	b.backendAddr = fmt.Sprintf("127.0.0.1:%d", port)
	b.backend, err = startChild("backend", filepath.Join(b.runDir, "backend.log"), nil,
		self, "-mode", "backend", "-listen", b.backendAddr)
	if err != nil {
		return err
	}
	if err := waitHTTP(b.backend, "http://"+b.backendAddr+"/__stats", 10*time.Second); err != nil {
		return err
	}
	logf("computing the seeded accounts' password hash (argon2id)")
	b.seeder, err = newSeeder()
	return err
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/wijtechniek/wijgate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the wijgate module (go run ./bench)")
		}
		dir = parent
	}
}

// running servers, stopped between phases whatever happened.
var running []*server

func stopServers() {
	for _, s := range running {
		if err := s.stop(30 * time.Second); err != nil {
			logf("%v", err)
		}
	}
	running = nil
}

// badgerDir is the run's badger store.
func (b *bench) badgerDir() string { return filepath.Join(b.runDir, "store") }

// startServer starts wijgate on the storage location (a badger directory
// or a postgres:// URL); "" starts the plain-only Caddy.
func (b *bench) startServer(name, storage string) (*server, error) {
	return b.startConfigured(b.serverConfig(name, storage))
}

func (b *bench) serverConfig(name, storage string) serverConfig {
	return serverConfig{name: name, dir: b.runDir, backend: b.backendAddr, guarded: storage != "", store: storage, headers: b.s.Headers,
		sameHeaders: b.sameHeaders}
}

func (b *bench) startConfigured(c serverConfig) (*server, error) {
	name := c.name
	t0 := time.Now()
	s, err := startServer(b.bin, c)
	if err != nil {
		return nil, err
	}
	running = append(running, s)
	logf("%s: wijgate pid %d on %s (admin %s), up in %.1f s", name, s.pid(), s.addr, s.adminAddr, time.Since(t0).Seconds())
	return s, nil
}

func (b *bench) stopServer(s *server) error {
	for i, r := range running {
		if r == s {
			running = append(running[:i], running[i+1:]...)
			break
		}
	}
	return s.stop(30 * time.Second)
}

// openStore opens the run's store while no server has it; bulk for the
// seeding (see store.Options.BulkLoad).
func (b *bench) openStore(bulk bool) (*store.Store, error) {
	return store.Open(store.Options{Dir: b.badgerDir(), BulkLoad: bulk})
}

// seedTo grows the seeded accounts from `from` to `to` and records it.
func (b *bench) seedTo(from, to int) (r seedResult, err error) {
	b.clock.next(fmt.Sprintf("seed %s..%s", count(from), count(to)))
	st, err := b.openStore(true)
	if err != nil {
		return seedResult{}, err
	}
	t0 := time.Now()
	defer func() {
		// The bulk load is on disk only once Close has synced it.
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := b.seeder.loadCodec(st); err != nil {
		return seedResult{}, err
	}
	logf("seeding accounts %d..%d through the store (bulk import)", from, to-1)
	if err := b.seeder.seedRange(st, from, to, b.s.SeedWorkers); err != nil {
		return seedResult{}, err
	}
	el := time.Since(t0)
	r = seedResult{From: from, To: to, Duration: el, AccountsPerSecond: float64(to-from) / el.Seconds()}
	logf("seeded %d accounts in %.1f s (%.0f/s)", to-from, el.Seconds(), r.AccountsPerSecond)
	return r, nil
}

func (b *bench) segment(s *server, l *load, round int) (*segment, error) {
	if l.at != nil {
		s = l.at
	}
	seg, err := runLoad(s.addr, l, b.s.Concurrency, b.s.Warm, b.s.Round, s.pid(), b.backend.pid())
	if seg != nil {
		seg.Round = round
		logf("  round %d %-22s %8.0f req/s  p50 %6.3f ms  p99 %6.3f ms  server %5.1f µs/req  other procs %.2f cores", round, l.name, seg.RPS,
			ms(seg.P50), ms(seg.P99), cpuPer(seg.ServerCPU, seg.Requests), seg.OtherCPU.Seconds()/seg.Duration.Seconds())
	}
	return seg, err
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// overhead: one server, the real login, interleaved routes; then the
// storm on the same server.
func (b *bench) overhead() error {
	b.clock.next("overhead: accounts add, seed, real login")
	srv, err := b.startServer("overhead", b.badgerDir())
	if err != nil {
		return err
	}
	out, err := addAccount(b.bin, b.runDir, srv.adminAddr, adminEmail, adminName, adminPassword)
	if err != nil {
		return err
	}
	logf("wijgate accounts add: %s", out)
	if err := b.stopServer(srv); err != nil {
		return err
	}

	// The added account acts for an organisation verified with
	// eHerkenning (the default guard requires one), and the first store
	// size is seeded, while the server is down.
	st, err := b.openStore(false)
	if err != nil {
		return err
	}
	a, err := st.AccountByEmail(adminEmail)
	if err == nil {
		err = b.seeder.linkOrg(st, a.ID, adminKvK, "Wij Techniek Bench B.V.")
	}
	st.Close()
	if err != nil {
		return fmt.Errorf("linking the operator's account to an organisation: %w", err)
	}
	sr, err := b.seedTo(0, b.s.Sizes[0])
	if err != nil {
		return err
	}
	b.res.Scale.Seeding = append(b.res.Scale.Seeding, sr)

	srv, err = b.startServer("overhead", b.badgerDir())
	if err != nil {
		return err
	}
	cookie, err := realLogin(srv.addr, adminEmail, adminPassword, "")
	if err != nil {
		return fmt.Errorf("real login: %w", err)
	}
	if err := checkGuarded(srv.addr, cookie); err != nil {
		return err
	}
	logf("logged in through GET+POST /login; session cookie of %d bytes", len(cookie))

	// The same-header-bytes route needs the guard's real headers: read
	// what the upstream got, then restart the server with the route.
	if b.sameHeaders, err = guardHeaders(b.backendAddr, srv.addr, cookie); err != nil {
		return fmt.Errorf("reading the guard's headers: %w", err)
	}
	n := 0
	for _, h := range b.sameHeaders {
		n += len(h[0]) + len(h[1]) + 4
	}
	for _, h := range b.sameHeaders {
		b.res.Overhead.SameHeaders = append(b.res.Overhead.SameHeaders, headerField{Name: h[0], Bytes: len(h[1])})
	}
	logf("the guard sent %d headers, %d bytes; restarting with them set statically on /same-headers/", len(b.sameHeaders), n)
	if err := b.stopServer(srv); err != nil {
		return err
	}
	if srv, err = b.startServer("overhead", b.badgerDir()); err != nil {
		return err
	}
	if err := checkGuarded(srv.addr, cookie); err != nil {
		return err
	}

	host := srv.addr
	forged := strings.Repeat("A", len(cookie)-8) + "forgedxx"
	loads := []*load{
		{name: "plain", status: 200, reqs: [][]byte{buildRequest(requestOpts{host: host, path: "/plain/app", accept: "application/json", cookie: cookie})}},
		{name: "guarded", status: 200, reqs: [][]byte{buildRequest(requestOpts{host: host, path: "/g/app", accept: "application/json", cookie: cookie})}},
		{name: "same headers", status: 200, reqs: [][]byte{buildRequest(requestOpts{host: host, path: "/same-headers/app", accept: "application/json", cookie: cookie})}},
	}
	if b.s.Peers {
		loads = append(loads, b.startPeers()...)
	}
	loads = append(loads, []*load{
		{name: "redirect", status: 302, reqs: [][]byte{buildRequest(requestOpts{host: host, path: "/g/app", accept: "text/html,application/xhtml+xml", navigate: true})}},
		{name: "401", status: 401, reqs: [][]byte{buildRequest(requestOpts{host: host, path: "/g/app", accept: "application/json"})}},
		{name: "401-forged", status: 401, reqs: [][]byte{buildRequest(requestOpts{host: host, path: "/g/app", accept: "application/json", cookie: forged})}},
	}...)
	be0, err := fetchBackendStats(b.backendAddr)
	if err != nil {
		return err
	}
	o := &b.res.Overhead
	if b.s.Overhead {
		b.clock.next(fmt.Sprintf("overhead: %d rounds × %d loads", b.s.Rounds, len(loads)))
		o.Segments, err = b.interleaved(srv, loads)
		b.stopPeers()
		if err != nil {
			return err
		}
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
	if g := o.Backend; g.Guarded > 0 && (g.GuardedIdentified != g.Guarded || g.ForgedLeaks > 0 || g.CookieLeaks > 0) {
		return fmt.Errorf("the upstream got %d guarded requests, %d with the guard's identity, %d with a forged identity, %d with the session cookie",
			g.Guarded, g.GuardedIdentified, g.ForgedLeaks, g.CookieLeaks)
	}
	if b.s.Profile {
		b.clock.next("overhead: profiles")
		b.profile(srv, loads[1], "overhead-guarded")
		b.profile(srv, loads[0], "overhead-plain")
	}
	if !b.s.Storm {
		return nil
	}
	return b.stormPhase(srv, loads[1])
}

// interleaved runs the loads in turn for the mode's rounds: A B C … then
// C B A …, reversing in even rounds the leading loads that pass (the
// throughput comparisons) to cancel a steady drift; the refusing loads
// after them run in the first round only.
func (b *bench) interleaved(srv *server, loads []*load) ([]*segment, error) {
	var segs []*segment
	passing := 0
	for passing < len(loads) && loads[passing].status == 200 {
		passing++
	}
	for r := 1; r <= b.s.Rounds; r++ {
		order := slices.Clone(loads)
		if r%2 == 0 {
			slices.Reverse(order[:passing])
		}
		for i, l := range order {
			// The refusing paths (redirect, 401) are no target's figure:
			// one round of each.
			if i >= passing && r > 1 {
				break
			}
			seg, err := b.segment(srv, l, r)
			if err != nil {
				return segs, err
			}
			segs = append(segs, seg)
		}
	}
	return segs, nil
}

// stormPhase alternates guarded traffic without and with a login storm,
// first from many client addresses, then from one.
func (b *bench) stormPhase(srv *server, guarded *load) error {
	n := b.s.Sizes[0]
	half := n / 2
	wrongPer := max(1, half/2) // distinct wrong-password emails per variant
	variants := []struct {
		name     string
		distinct bool
		offset   int
	}{
		{"many client addresses", true, 0},
		{"one client address", false, wrongPer},
	}
	for _, v := range variants {
		cfg := stormConfig{
			rate:          b.s.StormRate,
			wrongEmails:   func(i int) string { return seedEmail(v.offset + i%wrongPer) },
			rightEmails:   func(i int) string { return seedEmail(half + i%(n-half)) },
			password:      seedPassword,
			distinctAddrs: v.distinct,
		}
		b.clock.next("storm: " + v.name)
		sr := stormRun{Variant: v.name, DistinctAddresses: v.distinct, Rate: b.s.StormRate}
		s, err := newStorm(srv.addr, cfg, runtime.NumCPU())
		if err != nil {
			return err
		}
		logf("login storm (%s): %d logins/s, half wrong", v.name, b.s.StormRate)
		for r := 1; r <= b.s.StormRounds; r++ {
			seg, err := runLoad(srv.addr, guarded, b.s.Concurrency, b.s.Warm, b.s.StormRound, srv.pid(), b.backend.pid())
			if err != nil {
				return err
			}
			seg.Round, seg.Load = r, "guarded, no storm"
			sr.Quiet = append(sr.Quiet, seg)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.run(ctx); close(done) }()
			seg, err = runLoad(srv.addr, guarded, b.s.Concurrency, b.s.Warm, b.s.StormRound, srv.pid(), b.backend.pid())
			cancel()
			<-done
			if err != nil {
				return err
			}
			seg.Round, seg.Load = r, "guarded, storm"
			sr.Storm = append(sr.Storm, seg)
			logf("  round %d guarded p99 %.3f ms quiet, %.3f ms during the storm", r, ms(sr.Quiet[r-1].P99), ms(seg.P99))
		}
		if err := checkSegments(append(slices.Clone(sr.Quiet), sr.Storm...)); err != nil {
			return fmt.Errorf("storm (%s): %w", v.name, err)
		}
		sr.Logins = s.stats()
		if b.s.Profile && v.distinct {
			// An extra storm, not in the figures, under the profiler.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.run(ctx); close(done) }()
			b.profile(srv, guarded, "storm-guarded")
			cancel()
			<-done
		}
		logf("  logins: %d attempts, %v", sr.Logins.Attempts, sr.Logins.Statuses)
		b.res.Storm = append(b.res.Storm, sr)
	}
	m, _ := procMemory(srv.pid())
	b.res.StormMemory = &m
	return nil
}

// scale restarts the server on ever larger stores; at the PostgreSQL
// sizes the store is then copied into the database and measured there.
func (b *bench) scale() error {
	seeded := b.s.Sizes[0]
	for i, n := range b.s.Sizes {
		if i > 0 {
			if n <= seeded {
				return fmt.Errorf("-sizes must grow: %d after %d", n, seeded)
			}
			sr, err := b.seedTo(seeded, n)
			if err != nil {
				return err
			}
			b.res.Scale.Seeding = append(b.res.Scale.Seeding, sr)
			seeded = n
		}
		sz := &scaleSize{Sessions: n}
		var err error
		sz.StoreAllocated, sz.StoreApparent, err = diskUsage(b.badgerDir())
		if err != nil {
			return err
		}
		if err := b.measureSize(sz, fmt.Sprintf("scale-%d", n), b.badgerDir()); err != nil {
			return err
		}
		b.res.Scale.Sizes = append(b.res.Scale.Sizes, sz)
		sz.StoreAllocatedAfter, _, _ = diskUsage(b.badgerDir())
		if b.s.Postgres && slices.Contains(b.s.PGSizes, n) {
			b.postgresAt(n)
		}
	}
	return b.plainOnly()
}

// measureSize starts a server on the storage location, whose store holds
// sz.Sessions seeded accounts, and measures it: memory at start, the hot
// sessions, every session up to the fill once (each new to the server),
// then interleaved plain and guarded rounds. The server is stopped after.
func (b *bench) measureSize(sz *scaleSize, name, storage string) error {
	n := sz.Sessions
	b.clock.next(name)
	c := b.serverConfig(name, storage)
	c.gctrace = true
	srv, err := b.startConfigured(c)
	if err != nil {
		return err
	}
	if sz.MemoryStart, err = procMemory(srv.pid()); err != nil {
		return err
	}
	if sz.HeapStart, err = liveHeap(srv); err != nil {
		return err
	}
	logf("%s: server at start: VmRSS %d MiB (anon %d, file %d)", name, sz.MemoryStart.RSSKiB>>10, sz.MemoryStart.AnonKiB>>10, sz.MemoryStart.FileKiB>>10)
	host := srv.addr
	fill := min(n, b.s.Fill)
	hot := min(n, b.s.Hot)
	logf("%s: minting %d session cookies", name, fill)
	reqs, err := b.seeder.guardedRequests(host, fill)
	if err != nil {
		return err
	}
	// First only the hot sessions are in use: memory with N sessions
	// in the store and `hot` of them active.
	warm := &load{name: fmt.Sprintf("guarded (%d sessions), warm-up", hot), status: 200, reqs: reqs[:hot]}
	if sz.Warm, err = b.segment(srv, warm, 0); err != nil {
		return err
	}
	if sz.MemoryHot, err = procMemory(srv.pid()); err != nil {
		return err
	}
	if b.s.Profile {
		b.heapProfile(srv, name+"-hot")
	}
	// Then every one of the first `fill` sessions goes through the
	// guard once (a cache miss each), so the caches hold what a server
	// with that many active sessions holds, and the rounds run so.
	if fill > hot {
		pass, err := runPass(srv.addr, reqs[hot:], b.s.Concurrency, srv.pid())
		if err != nil {
			return err
		}
		sz.Fill = pass
		logf("%s: %d more sessions through the guard in %.1f s (%.0f req/s, each new to the server), %v", name, fill-hot,
			pass.Duration.Seconds(), pass.RPS, pass.Statuses)
		if pass.Statuses["200"] != fill-hot {
			return fmt.Errorf("%s: new sessions answered %v, want %d × 200", name, pass.Statuses, fill-hot)
		}
	}
	// The rounds measure the hot sessions cached, at every size: the
	// timed warm-up need not have reached each of them (a miss costs ten
	// hits, more on a busy machine), and the fill may have evicted some.
	// Without this pass the first rounds paid for loading them, so at the
	// sizes with a fill the guarded figure measured misses, not the guard.
	rewarm, err := runPass(srv.addr, reqs[:hot], b.s.Concurrency, srv.pid())
	if err != nil {
		return err
	}
	if rewarm.Statuses["200"] != hot {
		return fmt.Errorf("%s: hot sessions answered %v, want %d × 200", name, rewarm.Statuses, hot)
	}
	logf("%s: the %d hot sessions once more before the rounds in %.1f s (%.0f req/s)", name, hot, rewarm.Duration.Seconds(), rewarm.RPS)
	plain := &load{name: "plain", status: 200, reqs: [][]byte{buildRequest(requestOpts{host: host, path: "/plain/app", accept: "application/json", cookie: string(cookieOf(reqs[0]))})}}
	guarded := &load{name: fmt.Sprintf("guarded (%d sessions)", hot), status: 200, reqs: reqs[:hot]}
	sz.Hot = hot
	mark, err := markGC(srv)
	if err != nil {
		return err
	}
	touchesBefore, err := touchWrites(srv)
	if err != nil {
		return err
	}
	for r := 1; r <= b.s.ScaleRounds; r++ {
		order := []*load{plain, guarded}
		if r%2 == 0 {
			order[0], order[1] = guarded, plain
		}
		for _, l := range order {
			seg, err := b.segment(srv, l, r)
			if err != nil {
				return err
			}
			sz.Segments = append(sz.Segments, seg)
		}
	}
	gc, err := gcSince(srv, mark)
	if err != nil {
		return err
	}
	sz.GC = &gc
	touchesAfter, err := touchWrites(srv)
	if err != nil {
		return err
	}
	sz.TouchWrites = touchesAfter - touchesBefore
	if sz.Memory, err = procMemory(srv.pid()); err != nil {
		return err
	}
	if sz.HeapActive, err = liveHeap(srv); err != nil {
		return err
	}
	sz.Active = fill
	logf("%s: GC %.1f %% of server CPU over the rounds (%d cycles, %d idle-tracking writes); live heap %d MiB at start, %d MiB with %d sessions active (%.0f B each)",
		name, 100*gc.Share, gc.Cycles, sz.TouchWrites, sz.HeapStart>>20, sz.HeapActive>>20, fill, sz.heapPerSession())
	if b.s.Profile {
		b.heapProfile(srv, name)
		b.profile(srv, guarded, name+"-guarded")
	}
	logf("%s: server VmHWM %d MiB, VmRSS %d MiB (%d sessions in use: VmHWM %d MiB)", name, sz.Memory.HWMKiB>>10, sz.Memory.RSSKiB>>10,
		hot, sz.MemoryHot.HWMKiB>>10)
	if err := checkSegments(sz.Segments); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return b.stopServer(srv)
}

// plainOnly runs a Caddy with only the plain route, no wijgate app, under
// the load each scale size got, for its memory.
func (b *bench) plainOnly() error {
	b.clock.next("plain-only")
	srv, err := b.startServer("plain-only", "")
	if err != nil {
		return err
	}
	l := &load{name: "plain (plain-only server)", status: 200, reqs: [][]byte{
		buildRequest(requestOpts{host: srv.addr, path: "/plain/app", accept: "application/json", cookie: strings.Repeat("A", 180)}),
	}}
	p := &b.res.Scale.PlainOnly
	for r := 1; r <= b.s.ScaleRounds; r++ {
		for range 2 {
			seg, err := b.segment(srv, l, r)
			if err != nil {
				return err
			}
			p.Segments = append(p.Segments, seg)
		}
	}
	if p.Memory, err = procMemory(srv.pid()); err != nil {
		return err
	}
	logf("plain-only: VmHWM %d MiB, VmRSS %d MiB", p.Memory.HWMKiB>>10, p.Memory.RSSKiB>>10)
	return b.stopServer(srv)
}

// checkSegments fails when a load got answers it should not have (more
// than one in a thousand, or any connection errors beyond that): the
// figures would then not measure what they say.
func checkSegments(segs []*segment) error {
	for _, s := range segs {
		if s.Unexpected*1000 > s.Requests || s.Errors*1000 > s.Requests {
			return fmt.Errorf("%s round %d: %d of %d answers were not %s, %d errors (%s); statuses %v",
				s.Load, s.Round, s.Unexpected, s.Requests, "the expected status", s.Errors, s.FirstError, s.Statuses)
		}
	}
	return nil
}

// cookieOf pulls the session cookie's value out of a serialised request.
func cookieOf(req []byte) []byte {
	s := string(req)
	i := strings.Index(s, cookieName+"=")
	if i < 0 {
		return nil
	}
	v := s[i+len(cookieName)+1:]
	if j := strings.IndexAny(v, ";\r"); j >= 0 {
		v = v[:j]
	}
	return []byte(v)
}

// profile saves a 5-second CPU profile of the server under load l.
func (b *bench) profile(srv *server, l *load, name string) {
	secs := 5
	// The CPU and the allocations over the same seconds: the allocation
	// rate decides how often the collector runs.
	profiles := map[string]string{
		"cpu":    fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", srv.adminAddr, secs),
		"allocs": fmt.Sprintf("http://%s/debug/pprof/allocs?seconds=%d", srv.adminAddr, secs),
	}
	done := make(chan string, len(profiles))
	for kind, url := range profiles {
		go func() {
			path := filepath.Join(b.runDir, name+"-"+kind+".pprof")
			if err := fetchTo(url, path); err != nil {
				done <- fmt.Sprintf("profile %s (%s): %v", name, kind, err)
				return
			}
			done <- "saved " + path
		}()
	}
	_, _ = runLoad(srv.addr, l, b.s.Concurrency, 500*time.Millisecond, time.Duration(secs+1)*time.Second, srv.pid(), b.backend.pid())
	for range profiles {
		logf("%s", <-done)
	}
}

func (b *bench) heapProfile(srv *server, name string) {
	path := filepath.Join(b.runDir, name+"-heap.pprof")
	if err := fetchTo(fmt.Sprintf("http://%s/debug/pprof/heap?gc=1", srv.adminAddr), path); err != nil {
		logf("heap profile %s: %v", name, err)
		return
	}
	logf("saved %s", path)
}

func fetchTo(url, path string) error {
	resp, err := (&http.Client{Timeout: time.Minute}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// write saves the results as indented JSON.
func (r *results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
