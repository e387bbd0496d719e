// Package caddymodule adapts wijgate to Caddy: the wijgate app (shared
// state), the wijgate handler (guard and portal) and their Caddyfile
// syntax. The rules live in the domain packages beneath it.
package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/engine"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/portal"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

func init() {
	caddy.RegisterModule(App{})
}

// clock is the time source of every rule with a deadline; tests replace it.
var clock = time.Now

func now() time.Time { return clock() }

// App is the wijgate app: the state every wijgate handler shares — the
// account store, the session cookie keys and settings, the password
// hasher and the portal. Configure it with the `wijgate` global option.
type App struct {
	// Storage is where every record lives: a badger directory (the
	// default: a `wijgate` folder in Caddy's data directory), or a
	// PostgreSQL URL (postgres://…), which several wijgate processes can
	// share. {env.*} and {file.*} placeholders are replaced.
	Storage string `json:"storage,omitempty"`

	// StorageReserve is the free space, in bytes, that the storage's
	// filesystem must keep: below it, new writes (logins, registrations)
	// are refused with a 503 page while known sessions go on working, and
	// they resume by themselves when space returns. Default 64 MiB.
	StorageReserve uint64 `json:"storage_reserve,omitempty"`

	// CookieName is the session cookie's name. Default `__Host-wijgate`,
	// or `wijgate_session` when CookieDomain is set (the `__Host-` prefix
	// forbids a Domain attribute).
	CookieName string `json:"cookie_name,omitempty"`

	// CookieDomain lets the session cookie reach sibling subdomains, for
	// apps on their own subdomains (e.g. `wij-techniek.nl`). Empty means
	// the cookie stays on the portal's host.
	CookieDomain string `json:"cookie_domain,omitempty"`

	// CookieKeys are cookie key pairs, `<hash key>:<block key>` in base64
	// (64- or 32-byte HMAC key, 32-byte AES key). The first encodes new
	// cookies; all of them decode, so add the new pair in front to rotate.
	// `{env.*}` and `{file.*}` placeholders work. Empty: a pair is
	// generated once and kept in the store.
	CookieKeys []string `json:"cookie_keys,omitempty"`

	// IdleTimeout ends a session that has not been used for this long.
	// Default 30m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// Lifetime ends a session this long after login, whatever its use.
	// Default 12h.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// PortalURL is the portal's external base URL, such as
	// `https://account.wij-techniek.nl`. Guards send people there to log
	// in. Empty: the portal is on the same site as the guarded app.
	PortalURL string `json:"portal_url,omitempty"`

	// ReturnHosts are the hosts, besides the portal's own, that a return
	// address after login may point to. `*.wij-techniek.nl` matches every
	// subdomain. Anything else falls back to the dashboard.
	ReturnHosts []string `json:"return_hosts,omitempty"`

	// StripHeaders are further request headers that carry identity to some
	// upstream, beyond the default set (`Remote-User`, `X-Forwarded-User`
	// and the others in defaultStrippedHeaders). Like `X-Wij-*`, they are
	// removed from every client request, in any spelling.
	StripHeaders []string `json:"strip_headers,omitempty"`

	// AuditRetention is how long an organisation's audit entries are
	// kept. Default 17520h (two years).
	AuditRetention caddy.Duration `json:"audit_retention,omitempty"`

	// ReverifyAfter is how long an eHerkenning verification holds before
	// the admin is asked to verify the company again. Default 8760h (365
	// days; `365d` works too).
	ReverifyAfter caddy.Duration `json:"reverify_after,omitempty"`

	// ReverifyGrace is how much longer a verification holds after
	// ReverifyAfter; then it lapses, and colleagues whose access rests on
	// it alone lose access until an admin verifies again. Default 720h
	// (30 days); shorter than ReverifyAfter.
	ReverifyGrace caddy.Duration `json:"reverify_grace,omitempty"`

	// Mail says how wijgate sends email (codes, notices): through an SMTP
	// server, or, for development, into an outbox directory that the
	// portal shows at /dev/mail. One of the two is required.
	Mail *MailConfig `json:"mail,omitempty"`

	// StorageOutageGrace is how long the guard keeps letting a logged-in
	// person through while the storage (PostgreSQL) cannot be reached,
	// counted from when the storage last confirmed their session and
	// account. Within it, a logout, a disabled account or a withdrawn
	// right on another replica is not seen; after it, guarded requests
	// answer 503 until the storage is back. Default 60s.
	StorageOutageGrace caddy.Duration `json:"storage_outage_grace,omitempty"`

	// EHerkenning configures verification of organisations through the
	// eHerkenning broker. Without it, organisations can only be joined by
	// invitation.
	EHerkenning *EHerkenningConfig `json:"eherkenning,omitempty"`

	// SecondFactor says who must have a second factor (authenticator app
	// or passkey): `admins` (default), `everyone` or `off`. Under admins
	// and everyone, an admin acts as one only from a session that passed
	// a second factor.
	SecondFactor string `json:"second_factor,omitempty"`

	// PasskeyRPID is the WebAuthn relying party ID passkeys are made for:
	// by default the portal's host. A parent domain (example.nl for
	// account.example.nl) lets passkeys outlive a move of the portal.
	PasskeyRPID string `json:"passkey_rp_id,omitempty"`

	engine   engine.Engine
	storeKey string
	sessions *session.Manager
	accounts *account.Service
	orgs     *org.Service
	privacy  *privacy.Service
	tokens   *token.Signer
	portal   *portal.Portal
	// apps are the guarded apps of this configuration, registered by the
	// handlers as they are provisioned.
	apps []AppInfo
	// portalServed is set by the portal handler; a second one is refused.
	portalServed bool
	stripper     *headerStripper
	// ownCookies are wijgate's cookies, which the guard removes before
	// a request goes on to an app.
	ownCookies []string
	identity   *identityCache
	logger     *zap.Logger
	// events counts security events and writes them to the audit stream.
	events *eventSink
	// certificates and relay feed /readyz and the metrics.
	certificates *certificates
	relay        *mailRelay
	// measured is engine with the latency of the calls on the login and
	// guard paths measured; the services use it, while engine stays the
	// engine itself for what needs its own methods (record streams).
	measured engine.Engine
	// lastIssuer is the issuer last built from a request, reused while
	// requests come to the same site: a reused token's claims then share
	// one string instead of each holding its own.
	lastIssuer *atomic.Pointer[string]
	// brokerWatch keeps the eHerkenning broker's metadata loaded.
	brokerWatch *brokerWatch
	// reverify reminds admins of verifications that need renewing.
	reverify *reverifyCheck
	// serviceProvider is the eHerkenning SP, for the key operator commands.
	serviceProvider *eherkenning.ServiceProvider
	// ready is set once what needs the store's secrets is built (serve);
	// until then waiting answers every request.
	ready   *atomic.Bool
	waiting *portal.Waiting
	// stopStarting ends keepServing, which closes starting when it has
	// returned; both nil when serve succeeded in Provision.
	stopStarting context.CancelFunc
	starting     chan struct{}
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wijgate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens the store and builds the shared services. What needs
// the store's secrets (the cookie keys unless configured, the code key,
// the service provider's and the identity token's keys) is built once the
// store answers: at once with badger or a reachable database; otherwise in
// the background, while every page answers 503 and /healthz says "not
// ready", so a replica starts while PostgreSQL is down and serves when it
// returns.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	events, err := newEventSink(ctx, a.logger)
	if err != nil {
		return err
	}
	a.events = events
	if a.certificates, err = newCertificates(ctx.GetMetricsRegistry(), a.logger); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	if err := a.checkFilePlaceholders(); err != nil {
		return err
	}
	if a.EHerkenning != nil && a.EHerkenning.BrokerMetadata != "" {
		if err := checkBrokerMetadataSource(repl.ReplaceAll(a.EHerkenning.BrokerMetadata, "")); err != nil {
			return err
		}
	}

	storeLatency, err := newStoreLatency(ctx.GetMetricsRegistry())
	if err != nil {
		return err
	}
	location, err := ResolveStorage(a.Storage)
	if err != nil {
		return err
	}
	// A running configuration holds the engine already: this is a reload.
	_, reloading := storePool.References(location)
	st, err := openPooledEngine(ctx, location, a.StorageReserve, a.logger)
	if err != nil {
		return err
	}
	a.measured = &timedEngine{Engine: st, seconds: storeLatency}
	a.engine, a.storeKey = st, location

	var s served
	if s.keys, err = a.configuredCookieKeys(repl); err != nil {
		return err
	}
	s.cookieName = a.CookieName
	if s.cookieName == "" {
		s.cookieName = contract.SessionCookie
		if a.CookieDomain != "" {
			s.cookieName = contract.DomainSessionCookie
		}
	}
	a.ownCookies = contract.Cookies(s.cookieName)

	// One core is always left to the guarded traffic: a login storm must
	// not make every proxied request wait behind password hashing.
	hashWait, err := newHashQueueWait(ctx.GetMetricsRegistry())
	if err != nil {
		return err
	}
	hasher, err := account.NewHasher(account.HasherOptions{Concurrency: max(1, runtime.GOMAXPROCS(0)-1),
		OnWait: func(d time.Duration) { hashWait.Observe(d.Seconds()) }})
	if err != nil {
		return err
	}
	a.accounts, a.orgs = domainServices(a.measured, hasher, time.Duration(a.AuditRetention))
	a.orgs.ReverifyAfter, a.orgs.ReverifyGrace = time.Duration(a.ReverifyAfter), time.Duration(a.ReverifyGrace)
	a.privacy = privacyService(st, a.accounts, a.orgs)
	if s.mailer, s.outbox, err = a.Mail.sender(repl, a.logger); err != nil {
		return err
	}
	a.relay = &mailRelay{next: s.mailer, events: a.events}
	s.mailer = a.relay
	if a.EHerkenning != nil {
		if a.brokerWatch, err = watchBroker(ctx); err != nil {
			return err
		}
		a.brokerWatch.afterCheck = a.certificates.warn
	}
	a.stripper = newHeaderStripper(a.StripHeaders)
	a.identity = newIdentityCache(a.outageGrace())
	a.lastIssuer = new(atomic.Pointer[string])
	a.ready = new(atomic.Bool)
	if err := ctx.GetMetricsRegistry().Register(cacheLookups{a}); err != nil {
		return err
	}
	if err := ctx.GetMetricsRegistry().Register(&activeSessions{app: a}); err != nil {
		return err
	}
	if s.returns, err = portal.NewReturnPolicy(a.PortalURL, a.ReturnHosts); err != nil {
		return err
	}
	if a.waiting, err = portal.NewWaiting(a.logger.Named("portal"), func() string {
		_, detail := st.Health()
		return detail
	}); err != nil {
		return err
	}

	err = a.serve(repl, &s)
	if !errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	if reloading {
		// The running configuration goes on serving cached sessions
		// through the outage; this one could serve nobody until it ends.
		return fmt.Errorf("storage %s cannot be reached; the running configuration stays: %w", RedactStorage(location), err)
	}
	a.logger.Warn("the storage does not answer: every page answers 503 until it does",
		zap.String("storage", RedactStorage(location)), zap.Error(err))
	starting, stop := context.WithCancel(context.Background())
	a.stopStarting, a.starting = stop, make(chan struct{})
	go a.keepServing(starting, repl, &s)
	return nil
}

// served is what Provision hands on to serve, which builds the rest once
// the store answers.
type served struct {
	cookieName string
	// keys are the configured cookie keys; none means the stored pair.
	keys    []session.KeyPair
	mailer  mail.Sender
	outbox  *mail.Outbox
	returns *portal.ReturnPolicy
}

// serve builds what needs the store's secrets and starts serving. An
// error wrapping storage.ErrUnavailable means the store does not answer
// yet.
func (a *App) serve(repl *caddy.Replacer, s *served) error {
	note, err := a.engine.CopyMark()
	if err != nil {
		return err
	}
	if note != nil {
		return fmt.Errorf("storage %s holds an incomplete copy (%s): run the same `wijgate store copy` or `wijgate restore` again with --force before serving from it",
			RedactStorage(a.storeKey), note)
	}
	keys := s.keys
	if len(keys) == 0 {
		var err error
		if keys, err = a.storedCookieKeys(); err != nil {
			return err
		}
	}
	codec, err := session.NewCodec(s.cookieName, keys...)
	if err != nil {
		return err
	}
	codeKey, err := a.engine.Secret("code-key", func() ([]byte, error) { return randomBytes(32), nil })
	if err != nil {
		return fmt.Errorf("loading the code key: %w", err)
	}
	factorKey, err := a.engine.Secret("factor-key", func() ([]byte, error) { return randomBytes(32), nil })
	if err != nil {
		return fmt.Errorf("loading the second-factor key: %w", err)
	}
	sp, err := a.provisionEHerkenning(repl)
	if err != nil {
		return err
	}
	tokens, err := token.NewSigner(a.engine, token.Options{Now: now, OnError: func(err error) {
		a.logger.Error("reading or rotating the identity-token keys", zap.Error(err))
	}})
	if err != nil {
		return fmt.Errorf("identity-token keys: %w", err)
	}
	a.tokens = tokens
	a.sessions = session.NewManager(a.measured, codec, session.Settings{
		IdleTimeout: time.Duration(a.IdleTimeout),
		Lifetime:    time.Duration(a.Lifetime),
		OutageGrace: a.outageGrace(),
		Now:         now,
	})
	a.portal, err = portal.New(portal.Config{
		Accounts:    a.accounts,
		Sessions:    a.sessions,
		Orgs:        a.orgs,
		Privacy:     a.privacy,
		Apps:        a.appInfos,
		Codes:       &account.Codes{Store: a.measured, Key: codeKey, Now: now},
		Limits:      &account.Limits{Store: a.measured, Now: now},
		Mailer:      s.mailer,
		Outbox:      s.outbox,
		ShareOutbox: a.Mail.AllowRemote,
		ClientIP:    clientIP,
		Now:         now,
		EHerkenning: sp,
		JWKS:        a.tokens.JWKS(),
		Cookie: portal.CookieSettings{
			Name:   s.cookieName,
			Domain: a.CookieDomain,
		},
		Returns: s.returns,
		Logger:  a.logger.Named("portal"),
		Health:  []portal.HealthCheck{{Name: "storage", Check: a.engine.Health, Critical: true}},

		Factors:      &account.Factors{Store: a.engine, Key: factorKey, Issuer: "Wij Techniek", Now: now},
		SecondFactor: a.policy(),
		PasskeyRPID:  a.PasskeyRPID,
		Events:       a.events,
		RequestID:    requestID,
		Ready:        a.readyChecks(a.engine, sp),
	})
	if err != nil {
		a.sessions.Close()
		return err
	}
	if sp != nil {
		a.certificates.sp.Store(sp)
		a.brokerWatch.watch(sp)
	}
	a.reverify = a.startReverifyCheck(s.mailer)
	// The handlers read what serve built only after they see ready.
	a.ready.Store(true)
	return nil
}

// Waiting between attempts to serve doubles from the first to the last;
// the engine tries to connect on its own schedule and logs each attempt.
const (
	firstServeWait = 250 * time.Millisecond
	lastServeWait  = 2 * time.Second
)

// keepServing tries serve until it succeeds or ctx ends. An error other
// than an unreachable store (stored keys that do not decode) is logged at
// every attempt: it does not mend itself, but the replica must not pretend
// to serve.
func (a *App) keepServing(ctx context.Context, repl *caddy.Replacer, s *served) {
	defer close(a.starting)
	for wait := firstServeWait; ; wait = min(2*wait, lastServeWait) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := a.serve(repl, s)
		switch {
		case err == nil:
			a.logger.Info("the storage answers: serving")
			return
		case !errors.Is(err, storage.ErrUnavailable):
			a.logger.Error("the wijgate app cannot start serving; trying again", zap.Error(err))
		}
	}
}

// outageGrace is how long the guard keeps serving a cached session after
// the store last confirmed it, while the store cannot be reached.
func (a *App) outageGrace() time.Duration {
	if a.StorageOutageGrace == 0 {
		return DefaultStorageOutageGrace
	}
	return time.Duration(a.StorageOutageGrace)
}

// policy is the second-factor policy; Validate refused any value
// ParsePolicy does not read.
func (a *App) policy() account.Policy {
	p, _ := account.ParsePolicy(a.SecondFactor)
	return p
}

// DefaultStorageOutageGrace is storage_outage_grace's default.
const DefaultStorageOutageGrace = 60 * time.Second

// Validate checks the settings Provision takes as given. The rest are
// checked by Provision as it builds from them (cookie keys, files, mail,
// portal_url, return_hosts, the eHerkenning service provider): each rule
// once, for a Caddyfile and JSON alike.
func (a *App) Validate() error {
	if a.CookieDomain != "" && strings.HasPrefix(a.CookieName, "__Host-") {
		return errors.New("cookie_name: a __Host- cookie cannot have cookie_domain")
	}
	rules := []error{
		checkCookieName(a.CookieName),
		checkCookieDomain(a.CookieDomain),
		checkSessionDuration("idle_timeout", time.Duration(a.IdleTimeout)),
		checkSessionDuration("lifetime", time.Duration(a.Lifetime)),
		checkAuditRetention(time.Duration(a.AuditRetention)),
		checkOutageGrace(time.Duration(a.StorageOutageGrace)),
		checkReverify(time.Duration(a.ReverifyAfter), time.Duration(a.ReverifyGrace)),
		checkSecondFactor(a.SecondFactor),
		checkPasskeyRPID(a.PasskeyRPID, a.PortalURL),
	}
	for _, name := range a.StripHeaders {
		if err := checkHeaderName(name); err != nil {
			rules = append(rules, fmt.Errorf("strip_headers: %w", err))
		}
	}
	if c := a.EHerkenning; c != nil {
		rules = append(rules,
			checkServiceUUID(c.ServiceUUID),
			checkMetadataRefresh(time.Duration(c.MetadataRefresh)))
	}
	for _, err := range rules {
		if err != nil {
			return err
		}
	}
	return nil
}

// registerPortal records the portal handler; a configuration serves one
// portal, so that every login, code and invitation link lands on it.
func (a *App) registerPortal() error {
	if a.portalServed {
		return errors.New("wijgate portal: a second portal handler; serve the portal on one site only")
	}
	a.portalServed = true
	return nil
}

// configuredCookieKeys returns the configured key pairs; none means the
// pair kept in the store.
func (a *App) configuredCookieKeys(repl *caddy.Replacer) ([]session.KeyPair, error) {
	var keys []session.KeyPair
	for i, raw := range a.CookieKeys {
		kp, err := session.ParseKeyPair(strings.TrimSpace(repl.ReplaceAll(raw, "")))
		if err != nil {
			return nil, fmt.Errorf("cookie_keys[%d]: %w", i, err)
		}
		keys = append(keys, kp)
	}
	return keys, nil
}

// storedCookieKeys returns the key pair generated once and kept in the
// store, so a restart does not log everyone out.
func (a *App) storedCookieKeys() ([]session.KeyPair, error) {
	raw, err := a.engine.Secret("cookie-keys", func() ([]byte, error) {
		return json.Marshal([]string{session.NewKeyPair().String()})
	})
	if err != nil {
		return nil, fmt.Errorf("loading cookie keys: %w", err)
	}
	var stored []string
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, fmt.Errorf("stored cookie keys are corrupt: %w", err)
	}
	var keys []session.KeyPair
	for _, s := range stored {
		kp, err := session.ParseKeyPair(s)
		if err != nil {
			return nil, fmt.Errorf("stored cookie keys: %w", err)
		}
		keys = append(keys, kp)
	}
	return keys, nil
}

// AppInfo is a guarded application as people see it.
type AppInfo = portal.AppInfo

// registerApp records a guarded app (handlers call it while being
// provisioned) and makes its header aliases strippable.
func (a *App) registerApp(info AppInfo, aliases []string) {
	if info.Display == "" {
		info.Display = info.Name
	}
	if !slices.ContainsFunc(a.apps, func(i AppInfo) bool { return i.Name == info.Name }) {
		a.apps = append(a.apps, info)
		slices.SortFunc(a.apps, func(x, y AppInfo) int { return strings.Compare(x.Name, y.Name) })
	}
	for _, h := range aliases {
		a.stripper.add(h)
	}
}

// issuer is the identity token's iss: the portal's URL, or the site the
// request came to when the portal shares it.
func (a *App) issuer(r *http.Request) string {
	if a.PortalURL != "" {
		return strings.TrimSuffix(a.PortalURL, "/")
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	if last := a.lastIssuer.Load(); last != nil && len(*last) == len(scheme)+len(r.Host) &&
		strings.HasPrefix(*last, scheme) && strings.HasSuffix(*last, r.Host) {
		return *last
	}
	iss := scheme + r.Host
	a.lastIssuer.Store(&iss)
	return iss
}

// appNames lists the guarded apps' names.
func (a *App) appNames() []string {
	out := make([]string, len(a.apps))
	for i, info := range a.apps {
		out[i] = info.Name
	}
	return out
}

func (a *App) appInfos() []AppInfo { return a.apps }

// Now is the time the wijgate handlers go by; development modules that
// issue time-bound answers (the simulator) use it so tests can move it.
func (a *App) Now() time.Time { return now() }

// clientIP is the client address Caddy determined, honouring its
// trusted_proxies setting.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// Start is a no-op: the handlers serve through Caddy's HTTP app.
func (a *App) Start() error { return nil }

// Stop is a no-op; Cleanup releases resources.
func (a *App) Stop() error { return nil }

// Cleanup stops the session writer and releases this config's reference
// to the store; the store closes when no config holds it.
func (a *App) Cleanup() error {
	if a.stopStarting != nil {
		a.stopStarting()
		<-a.starting
	}
	a.brokerWatch.stop()
	a.reverify.stop()
	if a.sessions != nil {
		a.sessions.Close()
	}
	if a.storeKey != "" {
		_, err := storePool.Delete(a.storeKey)
		return err
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
