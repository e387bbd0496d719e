package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

// The guard's hot path in process, for `make bench` (go test -bench
// ^BenchmarkHotPath -benchmem). Each iteration starts from a fresh copy of
// a browser's request headers, as a real request would; HeaderClone is
// that copy alone, to subtract.

const hotPathCookie = "__Host-wijgate"

// hotPathHeaders are a browser's headers for an app page, with a forged
// identity header and other cookies next to wijgate's.
func hotPathHeaders(sessionValue string) http.Header {
	return http.Header{
		"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Accept-Language": {"nl-NL,nl;q=0.9,en;q=0.8"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"},
		"Sec-Fetch-Site":  {"same-origin"},
		"Sec-Fetch-Mode":  {"cors"},
		"Referer":         {"https://declaratie.wij-techniek.nl/overzicht"},
		"X-Wij-User-Id":   {"forged-by-client"},
		"Cookie":          {"_pk_id.1.1fff=5c8e4b2a1d3f6e7a.1700000000.; lang=nl; " + hotPathCookie + "=" + sessionValue + "; " + contract.CSRFCookie + "=ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
	}
}

// hotPathGuard is a guard for app "bench", sending the default headers,
// with everything it needs in memory and a real badger store, and a
// session of an eHerkenning-anchored admin.
func hotPathGuard(b *testing.B) (*Handler, string) {
	b.Helper()
	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	codec, err := session.NewCodec(hotPathCookie, session.NewKeyPair())
	if err != nil {
		b.Fatal(err)
	}
	sessions := session.NewManager(st, codec, session.Settings{})
	b.Cleanup(func() { sessions.Close(); st.Close() })
	tokens, err := token.NewSigner(st, token.Options{})
	if err != nil {
		b.Fatal(err)
	}
	accounts, orgs := domainServices(st, nil, 0)
	a := &App{engine: st, sessions: sessions, accounts: accounts, orgs: orgs, tokens: tokens,
		stripper: newHeaderStripper(nil), ownCookies: contract.Cookies(hotPathCookie), identity: newIdentityCache(DefaultStorageOutageGrace),
		lastIssuer: new(atomic.Pointer[string])}
	a.ready = new(atomic.Bool)
	a.ready.Store(true)
	a.registerApp(AppInfo{Name: "bench"}, nil)
	now := time.Now()
	acct := storage.Account{ID: "u-bench", Email: "jan@example.nl", Name: "Jan Jänssen",
		CreatedAt: now, PasswordChangedAt: now}
	if err := st.CreateAccount(acct); err != nil {
		b.Fatal(err)
	}
	if _, err := a.orgs.Link("u-bench", org.Verified{KvK: "12345678", Name: "Wij Techniek B.V.", Level: "loa3"}); err != nil {
		b.Fatal(err)
	}
	raw, _, err := sessions.Create(acct, session.Start{ActiveOrg: "12345678"})
	if err != nil {
		b.Fatal(err)
	}
	h := &Handler{App: "bench", app: a, logger: zap.NewNop(), minRank: assuranceRank["invited"]}
	for _, name := range contract.Defaults() {
		f, _ := contract.ByName(name)
		h.send = append(h.send, headerField{header: f.Header(), fact: f})
	}
	return h, raw
}

// withAssertion is the guard h on a route that also sends the signed token.
func withAssertion(h *Handler) *Handler {
	signed := *h
	signed.send = append(slices.Clip(h.send), headerField{header: contract.Assertion.Header(), fact: contract.Assertion})
	return &signed
}

func hotPathRequest(tmpl http.Header) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://gateway.example/g/app", nil)
	r.Header = tmpl.Clone()
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

var hotPathNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// BenchmarkHotPathHeaderClone is the baseline the header benchmarks
// include: copying the request headers.
func BenchmarkHotPathHeaderClone(b *testing.B) {
	tmpl := hotPathHeaders("MTcwMDAwMDAwMHxzZXNzaW9uLXZhbHVlLW9mLWFib3V0LTE4MC1ieXRlc3x0aGUtbWFjLWFuZC1ub25jZS1nby1oZXJl")
	b.ReportAllocs()
	for b.Loop() {
		_ = tmpl.Clone()
	}
}

// BenchmarkHotPathHeaderStripSet is the guard's header work: find the
// session cookie, strip client identity headers, set the nine identity
// headers, remove wijgate's cookies.
func BenchmarkHotPathHeaderStripSet(b *testing.B) {
	tmpl := hotPathHeaders("MTcwMDAwMDAwMHxzZXNzaW9uLXZhbHVlLW9mLWFib3V0LTE4MC1ieXRlc3x0aGUtbWFjLWFuZC1ub25jZS1nby1oZXJl")
	s := newHeaderStripper([]string{"Remote-User"})
	assertion := string(make([]byte, 700))
	values := []string{"u-j35px67hkgvtoxupnkeijz3v5y", "jan@example.nl", "Jan J%C3%A4nssen", "12345678",
		"Wij Techniek B.V.", "admin", "bench,declaratie", "eh3", assertion}
	var fields []headerField
	for _, f := range contract.All() {
		fields = append(fields, headerField{header: f.Header(), fact: f})
	}
	own := contract.Cookies(hotPathCookie)
	b.ReportAllocs()
	for b.Loop() {
		h := tmpl.Clone()
		if sessionCookie(h, hotPathCookie) == "" {
			b.Fatal("no session cookie")
		}
		s.strip(h)
		setHeaders(h, fields, slices.Clone(values))
		removeCookie(h, own)
	}
}

// BenchmarkHotPathIdentityHit is the cached account identity lookup.
func BenchmarkHotPathIdentityHit(b *testing.B) {
	h, _ := hotPathGuard(b)
	a := h.app
	at := time.Now()
	if _, err := a.identity.get(a.engine, a.accounts, a.orgs, a.appNames, "u-bench", at); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.identity.get(a.engine, a.accounts, a.orgs, a.appNames, "u-bench", at); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPathGuard is the guard's whole ServeHTTP for a logged-in
// request with warm caches (session, identity) on a route with the
// default headers, header copy included.
func BenchmarkHotPathGuard(b *testing.B) {
	h, raw := hotPathGuard(b)
	benchmarkGuard(b, h, raw)
}

// BenchmarkHotPathGuardAssertion is BenchmarkHotPathGuard on a route that
// also sends the signed token, reused from its cache.
func BenchmarkHotPathGuardAssertion(b *testing.B) {
	h, raw := hotPathGuard(b)
	benchmarkGuard(b, withAssertion(h), raw)
}

func benchmarkGuard(b *testing.B, h *Handler, raw string) {
	tmpl := hotPathHeaders(raw)
	w := httptest.NewRecorder()
	r := hotPathRequest(tmpl)
	if err := h.ServeHTTP(w, r, hotPathNext); err != nil || r.Header.Get(contract.OrgKvK.Header()) == "" {
		b.Fatalf("guard refused the bench session: %v, status %d", err, w.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Header = tmpl.Clone()
		if err := h.ServeHTTP(w, r, hotPathNext); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPathGuardParallel is BenchmarkHotPathGuard from every CPU
// at once, on one session.
func BenchmarkHotPathGuardParallel(b *testing.B) {
	h, raw := hotPathGuard(b)
	tmpl := hotPathHeaders(raw)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := httptest.NewRecorder()
		r := hotPathRequest(tmpl)
		for pb.Next() {
			r.Header = tmpl.Clone()
			if err := h.ServeHTTP(w, r, hotPathNext); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// activeSessionCount is how many sessions BenchmarkActiveSessionHeap
// makes active: enough that the caches' fixed costs vanish per session.
const activeSessionCount = 10_000

// BenchmarkActiveSessionHeap is the heap an active session costs the
// guard's caches, for `make bench` (go test -bench ^BenchmarkActiveSessionHeap
// -benchtime 3x): each round starts with empty caches, sends one request
// of every session through a route with the default headers and one with
// the assertion, and reports the live heap held per
// session by the session cache, the identity cache and the assertion
// cache (a route with the assertion); default-B is what a session costs
// on routes with the default headers.
func BenchmarkActiveSessionHeap(b *testing.B) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	codec, err := session.NewCodec(hotPathCookie, session.NewKeyPair())
	if err != nil {
		b.Fatal(err)
	}
	accounts, orgs := domainServices(st, nil, 0)
	creator := session.NewManager(st, codec, session.Settings{})
	now := time.Now()
	ua := hotPathHeaders("").Get("User-Agent")
	raws := make([]string, activeSessionCount)
	for i := range raws {
		acct := storage.Account{ID: fmt.Sprintf("u-heap%07d", i), Email: fmt.Sprintf("p%d@example.nl", i),
			Name: "Jan Jänssen", CreatedAt: now, PasswordChangedAt: now}
		if err := st.CreateAccount(acct); err != nil {
			b.Fatal(err)
		}
		kvk := fmt.Sprintf("%08d", 10_000_000+i)
		if _, err := orgs.Link(acct.ID, org.Verified{KvK: kvk, Name: "Wij Techniek B.V.", Level: "loa3"}); err != nil {
			b.Fatal(err)
		}
		if raws[i], _, err = creator.Create(acct, session.Start{ActiveOrg: kvk, AMR: []string{"pwd"}, UserAgent: ua, Address: "192.0.2.10"}); err != nil {
			b.Fatal(err)
		}
	}
	creator.Close()

	var sessionB, identityB, assertionB, defaultObjects float64
	for b.Loop() {
		tokens, err := token.NewSigner(st, token.Options{})
		if err != nil {
			b.Fatal(err)
		}
		a := &App{engine: st, sessions: session.NewManager(st, codec, session.Settings{}), accounts: accounts, orgs: orgs,
			tokens: tokens, stripper: newHeaderStripper(nil), ownCookies: contract.Cookies(hotPathCookie),
			identity: newIdentityCache(DefaultStorageOutageGrace), lastIssuer: new(atomic.Pointer[string])}
		a.ready = new(atomic.Bool)
		a.ready.Store(true)
		a.registerApp(AppInfo{Name: "bench"}, nil)
		plain := &Handler{App: "bench", app: a, logger: zap.NewNop(), minRank: assuranceRank["invited"]}
		for _, name := range contract.Defaults() {
			f, _ := contract.ByName(name)
			plain.send = append(plain.send, headerField{header: f.Header(), fact: f})
		}
		for _, raw := range raws {
			for _, h := range []*Handler{plain, withAssertion(plain)} {
				r := hotPathRequest(hotPathHeaders(raw))
				if err := h.ServeHTTP(httptest.NewRecorder(), r, hotPathNext); err != nil || r.Header.Get(contract.UserID.Header()) == "" {
					b.Fatalf("guard refused an active session: %v", err)
				}
			}
		}
		// Each cache's cost is the heap its release frees: measuring the
		// growth as it fills would count the store's own churn too.
		full, _ := liveHeap()
		a.tokens = nil
		withoutAssertions, defaultHeld := liveHeap()
		a.identity = nil
		withoutIdentities, _ := liveHeap()
		a.sessions.Close()
		a.sessions = nil
		empty, emptyHeld := liveHeap()
		assertionB += float64(full-withoutAssertions) / activeSessionCount
		identityB += float64(withoutAssertions-withoutIdentities) / activeSessionCount
		sessionB += float64(withoutIdentities-empty) / activeSessionCount
		defaultObjects += float64(defaultHeld-emptyHeld) / activeSessionCount
	}
	rounds := float64(b.N)
	b.ReportMetric(sessionB/rounds, "session-B/session")
	b.ReportMetric(identityB/rounds, "identity-B/session")
	b.ReportMetric(assertionB/rounds, "assertion-B/session")
	b.ReportMetric((sessionB+identityB)/rounds, "default-B/session")
	// The collector marks every live object: fewer per session, less
	// of its work with many sessions active.
	b.ReportMetric(defaultObjects/rounds, "default-objects/session")
	b.ReportMetric(0, "ns/op")
}

// liveHeap is the heap in use after a full collection, in bytes and
// objects.
func liveHeap() (bytes, objects int64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), int64(m.HeapObjects)
}
