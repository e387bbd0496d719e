package caddymodule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/engine"
	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// timedEngine measures the store calls on the login and guard paths, by
// operation (a fixed set), for either engine; the rest pass through.
type timedEngine struct {
	engine.Engine
	seconds *prometheus.HistogramVec
}

// newStoreLatency is timedEngine's histogram, registered before the store
// is opened so that nothing can fail between opening and releasing it.
func newStoreLatency(reg prometheus.Registerer) (*prometheus.HistogramVec, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wijgate_store_operation_seconds",
		Help:    "Latency of the store operations on the login and guard paths, by operation.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"operation"})
	return h, reg.Register(h)
}

func (t *timedEngine) since(operation string, start time.Time) {
	t.seconds.WithLabelValues(operation).Observe(time.Since(start).Seconds())
}

func (t *timedEngine) Account(id string) (storage.Account, error) {
	defer t.since("account", time.Now())
	return t.Engine.Account(id)
}

func (t *timedEngine) AccountByEmail(email string) (storage.Account, error) {
	defer t.since("account_by_email", time.Now())
	return t.Engine.AccountByEmail(email)
}

func (t *timedEngine) CreateAccount(a storage.Account) error {
	defer t.since("create_account", time.Now())
	return t.Engine.CreateAccount(a)
}

func (t *timedEngine) UpdateAccount(id string, change func(*storage.Account) error) (storage.Account, error) {
	defer t.since("update_account", time.Now())
	return t.Engine.UpdateAccount(id, change)
}

func (t *timedEngine) CreateSession(s storage.Session) error {
	defer t.since("create_session", time.Now())
	return t.Engine.CreateSession(s)
}

func (t *timedEngine) Session(key string) (storage.Session, error) {
	defer t.since("session", time.Now())
	return t.Engine.Session(key)
}

func (t *timedEngine) TouchSessions(touches []storage.Touch) error {
	defer t.since("touch_sessions", time.Now())
	return t.Engine.TouchSessions(touches)
}

func (t *timedEngine) DeleteSession(key string) error {
	defer t.since("delete_session", time.Now())
	return t.Engine.DeleteSession(key)
}

func (t *timedEngine) UpdateCounter(key string, expires time.Time, change func(*storage.Counter)) (storage.Counter, error) {
	defer t.since("update_counter", time.Now())
	return t.Engine.UpdateCounter(key, expires, change)
}

func (t *timedEngine) UseCode(purpose, email string, guessWindow time.Duration, check func(*storage.VerificationCode, *storage.Counter) (bool, error)) error {
	defer t.since("use_code", time.Now())
	return t.Engine.UseCode(purpose, email, guessWindow, check)
}

// The operations above are those of the stores the services define.
var (
	_ account.Store        = (*timedEngine)(nil)
	_ account.CounterStore = (*timedEngine)(nil)
	_ engine.Engine        = (*timedEngine)(nil)
)

// newInvalidationLag is the histogram of how long another replica's
// write took to reach this replica's caches, registered before the store
// at location is opened. Only a PostgreSQL engine has other replicas: on
// badger it is nil and the metric absent, rather than an empty histogram
// that suggests a change feed.
func newInvalidationLag(reg prometheus.Registerer, location string) (prometheus.Histogram, error) {
	if !isPostgres(location) {
		return nil, nil
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wijgate_cache_invalidation_lag_seconds",
		Help:    "Time from another replica's commit (its clock) until this replica's caches knew of the write (this clock); includes any difference between the clocks.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	return h, reg.Register(h)
}

// invalidationLag is one configuration's hold on the pooled PostgreSQL
// engine's lag observer. The engine outlives configurations and Caddy
// provisions a new one before it cleans up the old, so each configuration
// swaps its histogram in and, when cleaned up, puts back the one it
// displaced only if its own is still the engine's. After a reload that
// failed, that is the running configuration's again; after a reload that
// succeeded, the newer configuration's stays; when the last configuration
// goes, the engine closes with it.
type invalidationLag struct {
	feed           *pgstore.Store
	own, displaced *pgstore.LagObserver
}

// followInvalidationLag feeds h from st's change feed; nil when st has
// none (badger).
func followInvalidationLag(st engine.Engine, h prometheus.Histogram) *invalidationLag {
	feed, ok := st.(*pgstore.Store)
	if !ok {
		return nil
	}
	own := pgstore.LagObserver(func(d time.Duration) { h.Observe(d.Seconds()) })
	return &invalidationLag{feed: feed, own: &own, displaced: feed.SwapLagObserver(&own)}
}

// release ends this configuration's hold.
func (l *invalidationLag) release() {
	if l != nil {
		l.feed.CompareAndSwapLagObserver(l.own, l.displaced)
	}
}
